"""Verdicts: what the recorded evidence says of each criterion, under an environment's policy.

Pure functions: a plan entry, the check records of a run and the policy in,
verdicts out. For one criterion on one environment::

    failed      a check failed, or could not run (its label is then "error")
    verified    else: an applicable check passed with verified evidence
    planned     else: only checks with planned evidence (Pulumi mocks) passed
    unverified  else: no applicable check ran, or every one was skipped

A criterion whose ``envs`` leave this environment out is no criterion here.
A session is

    complete        every criterion verified, or planned where the policy accepts planned
    failed          some criterion failed
    unverified      nothing failed, but some criterion is unverified (or planned where
                    the policy wants verified evidence)
    not_applicable  no criterion applies to this environment (counts as done)

Gates follow the same rule over their own checks (:func:`judge_checks`); a
gate with no checks at all has nothing to judge.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from finks.outcomes import Grade, Outcome, SessionState, Verdict

if TYPE_CHECKING:
    from finks.models import CheckSpec, Session

# How each verdict shows in handoffs, status and the run summary.
MARK = {Verdict.verified: "✅", Verdict.planned: "📐", Verdict.unverified: "⚠️", Verdict.failed: "❌"}
LEGEND = ("✅ verified (exercised the real thing) · 📐 planned (asserted on the Pulumi program under mocks) · "
          "⚠️ unverified (no applicable check passed) · ❌ failed")
ORDER = (Verdict.verified, Verdict.planned, Verdict.unverified, Verdict.failed)


@dataclass(frozen=True)
class CheckEvidence:
    """One check of a criterion as the verdict saw it."""

    id: str
    envs: tuple[str, ...]
    grade: str
    outcome: str | None  # None: it did not run in the latest run
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "grade": self.grade, "outcome": self.outcome, "envs": list(self.envs),
                "message": self.message}


@dataclass(frozen=True)
class CriterionVerdict:
    text: str
    verdict: Verdict
    label: str  # the verdict, or "error" for a check that could not run
    accepted: bool  # the environment's policy counts it as done
    checks: tuple[CheckEvidence, ...]
    remedy: str = ""  # what would verify it, when it is not accepted

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "verdict": self.verdict, "label": self.label, "accepted": self.accepted,
                "checks": [c.to_dict() for c in self.checks], "remedy": self.remedy}


@dataclass(frozen=True)
class SessionVerdict:
    env: str
    accept_planned: bool
    criteria: tuple[CriterionVerdict, ...]
    excluded: int = 0  # criteria that are not criteria on this environment

    @property
    def state(self) -> SessionState:
        if not self.criteria:
            return SessionState.not_applicable
        if any(c.verdict == Verdict.failed for c in self.criteria):
            return SessionState.failed
        if not all(c.accepted for c in self.criteria):
            return SessionState.unverified
        return SessionState.complete

    @property
    def counts(self) -> dict[str, int]:
        found = Counter(c.verdict for c in self.criteria)
        return {str(v): found.get(v, 0) for v in ORDER}

    @property
    def pending(self) -> list[CriterionVerdict]:
        """The criteria that keep the session from complete (failed ones excepted)."""
        return [c for c in self.criteria if not c.accepted and c.verdict != Verdict.failed]

    def summary(self) -> str:
        """``5 verified, 3 planned`` (zeros left out); on an environment where nothing applies, says so."""
        if not self.criteria:
            return f"no criterion applies to {self.env}"
        return ", ".join(f"{n} {v}" for v, n in self.counts.items() if n)

    def to_dict(self) -> dict[str, Any]:
        return {"env": self.env, "accept_planned": self.accept_planned, "state": self.state,
                "counts": self.counts, "excluded": self.excluded,
                "criteria": [c.to_dict() for c in self.criteria]}


def _records_by_check(records: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {str(r.get("check")): r for r in records if r.get("check")}


def _grade(record: Mapping[str, Any] | None, spec: CheckSpec) -> str:
    """The grade the check ran with; an older record has none: the plan's word for it."""
    if record is not None and record.get("grade"):
        return str(record["grade"])
    return str(spec.evidence_grade)


def judge_checks(text: str, specs: Sequence[CheckSpec], records: Iterable[Mapping[str, Any]] | None,
                 env: str, accept_planned: bool) -> CriterionVerdict:
    """The verdict of one criterion (or a gate) from its checks' latest records."""
    by_id = _records_by_check(records or ())
    seen: list[CheckEvidence] = []
    for spec in specs:
        record = by_id.get(spec.id)
        outcome = str(record["outcome"]) if record is not None and record.get("outcome") else None
        seen.append(CheckEvidence(spec.id, tuple(spec.envs), _grade(record, spec), outcome,
                                  str(record.get("message", "")) if record is not None else ""))
    passed = {c.grade for c in seen if c.outcome == Outcome.passed}
    if any(c.outcome in (Outcome.failed, Outcome.error) for c in seen):
        label = "failed" if any(c.outcome == Outcome.failed for c in seen) else "error"
        return CriterionVerdict(text, Verdict.failed, label, False, tuple(seen))
    if Grade.verified in passed:
        return CriterionVerdict(text, Verdict.verified, "verified", True, tuple(seen))
    if Grade.planned in passed:
        remedy = "" if accept_planned else _remedy_planned(specs, env)
        return CriterionVerdict(text, Verdict.planned, "planned", accept_planned, tuple(seen), remedy)
    return CriterionVerdict(text, Verdict.unverified, "unverified", False, tuple(seen), _remedy(seen, env))


def _remedy(seen: Sequence[CheckEvidence], env: str) -> str:
    here = [c for c in seen if env in c.envs]
    if not here:
        where = "; ".join(f"{c.id} ({', '.join(c.envs)})" for c in seen)
        return f"no check applies on {env}: add one, or verify it where its checks apply: {where}"
    skipped = [c for c in here if c.outcome == Outcome.skipped]
    if skipped:
        return "its checks skipped: " + "; ".join(f"{c.id}: {c.message}" for c in skipped) + \
            f"; run again where they can run ({', '.join(c.id for c in here)})"
    return "not run yet: " + ", ".join(f"{c.id}" for c in here) + f" would verify it on {env}"


def _remedy_planned(specs: Sequence[CheckSpec], env: str) -> str:
    real = [s for s in specs if s.evidence_grade == Grade.verified and env in s.envs]
    if real:
        return f"planned only; {env} needs verified evidence: " + ", ".join(s.id for s in real) + " must pass"
    return f"planned only; {env} needs verified evidence: add a check that exercises the real thing on {env}"


def judge(session: Session, records: Iterable[Mapping[str, Any]] | None, env: str,
          accept_planned: bool) -> SessionVerdict:
    """Every criterion of a session that applies to ``env``, judged from a run's check records."""
    records = list(records or ())
    criteria, excluded = [], 0
    for criterion in session.criteria:
        if not criterion.applies(env):
            excluded += 1
            continue
        criteria.append(judge_checks(criterion.text, criterion.checks, records, env, accept_planned))
    return SessionVerdict(env, accept_planned, tuple(criteria), excluded)


def count_all(verdicts: Iterable[SessionVerdict]) -> dict[str, int]:
    """Criteria by verdict over several sessions (a run's summary)."""
    total = Counter[str]()
    for v in verdicts:
        total.update(v.counts)
    return {str(v): total.get(str(v), 0) for v in ORDER}
