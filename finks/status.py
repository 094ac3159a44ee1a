"""Status is derived from the evidence, never set by hand.

complete        every criterion has a verdict the environment accepts (verified, or
                planned where its policy allows) and nothing changed since: its
                fingerprint (deliverables, plan entry, checks' code), and upstream
not_applicable  no criterion applies to this environment (criterion-level envs): done
stale           it was complete, but its fingerprint changed, or something upstream
                changed, failed or is no longer complete ("upstream s8 changed")
unverified      nothing failed, but some criterion has no evidence the environment accepts
failed          the latest run failed (an action or a check failed or could not run)
in_progress     a run of it is under way
interrupted     its latest run never finished (the process died)
ready           every predecessor is complete and its week's gate is open
blocked         otherwise, with the reason
optional        an optional session not yet run whose predecessors are complete

A live claim (finks.state) says who is on a session: a session that would be
ready (or optional) shows as in_progress, "claimed by alice, 2 h left"; any
other status stays as it is and its reason names the claim. When the lease
expires the session is what the evidence says again.

A run recorded by an older finks has no fingerprint: it shows as stale
("validated by an older finks") until it runs again, since nothing says
what it was judged on.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.clock import utcnow
from finks.claims import Claim
from finks.fingerprint import FileHashes, Fingerprint, deliverables_digest, fingerprint
from finks.loader import Plan
from finks.models import Gate, Session
from finks.outcomes import FAILING, GateState, SessionState
from finks.state import History, SessionRun, StateStore
from finks.verdicts import CriterionVerdict, SessionVerdict, judge, judge_checks

if TYPE_CHECKING:
    from finks.graph import Schedule

DONE = (SessionState.complete, SessionState.not_applicable)
# What 'finks next' offers: sessions that can run now, or should run again.
RUNNABLE = (SessionState.ready, SessionState.optional, SessionState.failed, SessionState.interrupted,
            SessionState.stale, SessionState.unverified)
# A session in one of these states has nothing in its way ('finks why' says so).
UNBLOCKED = (SessionState.ready, SessionState.complete, SessionState.optional, SessionState.not_applicable)
INDICATOR = {
    SessionState.blocked: "🔴",
    SessionState.ready: "🟡",
    SessionState.complete: "🟢",
    SessionState.not_applicable: "⚫",
    SessionState.in_progress: "🔵",
    SessionState.optional: "⚪",
    SessionState.stale: "🟠",
    SessionState.unverified: "🟤",
    SessionState.failed: "❌",
    SessionState.interrupted: "⚠️",
}
WHY_EXCERPT_CHARS = 600
HASH_CACHE = Path("cache") / "file-hashes.json"  # under the state directory


def deliverables_hash(root: Path, paths: tuple[str, ...]) -> str:
    """Content hash of every file under the session's deliverables (missing ones count)."""
    return deliverables_digest(root, paths, FileHashes())


@dataclass
class SessionStatus:
    sid: str
    status: SessionState
    reason: str = ""
    last_run: SessionRun | None = None
    blockers: list[str] = field(default_factory=list)
    verdict: SessionVerdict | None = None  # from its latest finished run
    upstream: dict[str, str] = field(default_factory=dict)  # stale: upstream session -> what it came to
    claim: Claim | None = None  # who is on it (a live claim), if anyone
    claim_left_s: float = 0.0  # the claim's remaining lease when the board was made
    unclaimed: SessionState | None = None  # the status a claim turned into in_progress

    def claim_doc(self) -> dict[str, Any] | None:
        """Its live claim as JSON (remaining time as of the board), or None."""
        if self.claim is None:
            return None
        return {**self.claim.to_dict(), "remaining_s": round(self.claim_left_s, 1)}

    @property
    def runnable(self) -> bool:
        """Whether 'finks next' offers it: it can run now or should run again (claimed or not)."""
        return (self.unclaimed or self.status) in RUNNABLE

    @property
    def summary(self) -> str:
        """``complete · 5 verified, 3 planned``: the status with its verdicts."""
        tail = self.verdict.summary() if self.verdict is not None else ""
        return f"{self.status.label} · {tail}" if tail else self.status.label

    def to_dict(self, session: Session) -> dict[str, Any]:
        run = self.last_run
        return {
            "id": self.sid,
            "title": session.title,
            "week": session.week,
            "area": session.area,
            "status": self.status,
            "reason": self.reason,
            "blocked_by": self.blockers,
            "upstream": self.upstream,
            "estimate_hours": [session.estimate_hours.low, session.estimate_hours.high],
            "optional": session.optional,
            "verdicts": None if self.verdict is None else self.verdict.to_dict(),
            "claim": self.claim_doc(),
            "last_run": None
            if run is None
            else {"run_id": run.run_id, "started_at": run.started_at, "outcome": run.outcome, "duration_s": run.duration_s},
        }


@dataclass
class GateStatus:
    gate: Gate
    status: GateState
    reason: str = ""
    record: dict[str, Any] | None = None
    verdict: CriterionVerdict | None = None  # its checks, judged (None: no checks, or not evaluated)

    @property
    def passed(self) -> bool:
        return self.status == GateState.passed

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.gate.id, "week": self.gate.week, "title": self.gate.title, "status": self.status,
                "reason": self.reason, "verdict": None if self.verdict is None else self.verdict.to_dict()}


@dataclass(frozen=True)
class BlockingEvidence:
    """A failing check or action of a session's latest run, as 'finks why' shows it."""

    check: str  # the check id (an action's record says "action")
    outcome: str
    message: str
    excerpt: str  # the end of the output excerpt


@dataclass(frozen=True)
class WhyLink:
    """One session or gate in the chain behind a status; depth 0 is the session asked about."""

    id: str
    status: SessionState | GateState
    reason: str
    depth: int
    evidence: tuple[BlockingEvidence, ...] | None = None  # only for a failed or interrupted run
    criteria: tuple[CriterionVerdict, ...] | None = None  # only for an unverified session: what is missing

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "status": self.status, "reason": self.reason, "depth": self.depth}
        if self.evidence is not None:
            out["evidence"] = [asdict(e) for e in self.evidence]
        if self.criteria is not None:
            out["criteria"] = [c.to_dict() for c in self.criteria]
        return out


@dataclass(frozen=True)
class Why:
    """Why a session has its status: its blockers, depth first, down to the root causes."""

    session: str
    chain: tuple[WhyLink, ...]

    @property
    def unblocked(self) -> bool:
        return self.chain[0].status in UNBLOCKED

    def to_dict(self) -> dict[str, Any]:
        return {"session": self.session, "chain": [link.to_dict() for link in self.chain]}


def hash_cache(store: StateStore) -> Path:
    """The file-hash cache of a state directory (shared by its environments)."""
    return Path(store.dir).parent.parent / HASH_CACHE


class StatusBoard:
    """Derives every session's and gate's status for one environment."""

    def __init__(self, plan: Plan, store: StateStore, root: Path, history: History | None = None,
                 hashes: FileHashes | None = None, now: dt.datetime | None = None) -> None:
        self.plan = plan
        self.store = store
        self.env = store.env
        self.root = root
        self.history = history if history is not None else store.history()
        self.hashes = hashes if hashes is not None else FileHashes.load(hash_cache(store))
        self.accept_planned = plan.accepts_planned(self.env)
        self.now = now or utcnow()  # what claims' leases are measured against
        self.claims = self.history.live_claims(self.now)
        self._cache: dict[str, SessionStatus] = {}
        self._gates: dict[str, GateStatus] = {}
        self._fingerprints: dict[str, Fingerprint] = {}
        self._combined: dict[str, str] = {}
        self._upstreams: dict[str, frozenset[str]] = {}

    # ---- evidence ----------------------------------------------------------
    def fingerprint(self, sid: str) -> Fingerprint:
        """The session's fingerprint now (deliverables, plan entry, checks' code)."""
        if sid not in self._fingerprints:
            self._fingerprints[sid] = fingerprint(self.root, self.plan.sessions[sid], self.hashes)
        return self._fingerprints[sid]

    def upstream_fingerprints(self, sid: str) -> dict[str, str]:
        """What a run of sid records of its upstream: each session's fingerprint now."""
        return {u: self._combined_of(u) for u in sorted(self._upstream(sid), key=self.plan.position)}

    def _combined_of(self, sid: str) -> str:
        if sid not in self._combined:
            self._combined[sid] = self.fingerprint(sid).combined
        return self._combined[sid]

    def _upstream(self, sid: str) -> frozenset[str]:
        """Every session sid depends on, transitively (graph.upstream, remembered per board:
        a plan of hundreds of sessions would walk the same chains again for each)."""
        todo = [sid]
        while todo:
            node = todo[-1]
            deps = self.plan.sessions[node].depends_on
            missing = [d for d in deps if d not in self._upstreams]
            if missing:
                todo.extend(missing)
                continue
            todo.pop()
            self._upstreams[node] = frozenset(deps).union(*(self._upstreams[d] for d in deps))
        return self._upstreams[sid]

    def verdict(self, sid: str, run: SessionRun | None = None) -> SessionVerdict:
        """The criteria of sid judged from a run's checks (default: its latest run)."""
        run = run if run is not None else self.history.latest(sid)
        return judge(self.plan.sessions[sid], run.checks if run else (), self.env, self.accept_planned)

    def _running(self, sid: str) -> bool:
        return self.store.session_running(sid)

    def _validated(self, sid: str) -> SessionStatus | None:
        """The status the latest run gives, else None (never run)."""
        run = self.history.latest(sid)
        if run is None:
            return None
        if not run.finished:
            if self._running(sid):
                return SessionStatus(sid, SessionState.in_progress, f"run {run.run_id} under way", run)
            return SessionStatus(sid, SessionState.interrupted, f"run {run.run_id} never finished (process died)", run)
        verdict = self.verdict(sid, run)
        failing = [a for a in run.actions if a.get("outcome") in FAILING]
        failing += [c for c in run.checks if c.get("outcome") in FAILING]
        state = SessionState.failed if failing else verdict.state
        if state == SessionState.failed:
            reason = "; ".join(f"{c.get('check') or c.get('task')}: {c.get('message')}" for c in failing[:2])
            return SessionStatus(sid, state, reason or f"run outcome {run.outcome}", run, verdict=verdict)
        if state == SessionState.unverified:
            pending = verdict.pending
            noun = "criterion" if len(pending) == 1 else "criteria"
            reason = f"{len(pending)} {noun} without accepted evidence on {self.env}: " + "; ".join(
                f"'{c.text}' ({c.label})" for c in pending[:2]) + ("; …" if len(pending) > 2 else "")
            return SessionStatus(sid, state, reason, run, verdict=verdict)
        if state == SessionState.not_applicable:
            return SessionStatus(sid, state, f"no criterion applies to {self.env}: counts as done", run,
                                 verdict=verdict)
        return self._fresh(sid, run, verdict)

    def _fresh(self, sid: str, run: SessionRun, verdict: SessionVerdict) -> SessionStatus:
        """complete, or stale naming what changed: its own fingerprint first, then upstream."""
        if run.fingerprint is None:
            return SessionStatus(sid, SessionState.stale, "validated by an older finks (no fingerprint): run it again",
                                 run, verdict=verdict)
        changes = self.fingerprint(sid).changes(run.fingerprint)
        if changes:
            return SessionStatus(sid, SessionState.stale, "; ".join(changes) + " since it was validated", run,
                                 verdict=verdict)
        roots: dict[str, str] = {}  # the upstream session at the root of it -> what it came to
        for dep in self.plan.sessions[sid].depends_on:
            st = self.session(dep)
            if st.status in DONE:
                continue
            own = {dep: "changed" if st.status == SessionState.stale else st.status.label}
            for root_id, word in (st.upstream or own).items():
                roots.setdefault(root_id, word)
        if not roots:
            recorded = run.upstream or {}
            for up, now in self.upstream_fingerprints(sid).items():
                if recorded.get(up) != now:
                    roots[up] = "changed since it was validated"
                    break
        if roots:
            reason = "; ".join(f"upstream {r} {w}" for r, w in roots.items())
            return SessionStatus(sid, SessionState.stale, reason, run, blockers=list(roots), verdict=verdict,
                                 upstream=roots)
        return SessionStatus(sid, SessionState.complete, "", run, verdict=verdict)

    # ---- sessions ----------------------------------------------------------
    def session(self, sid: str) -> SessionStatus:
        if sid in self._cache:
            return self._cache[sid]
        result = self._claimed(self._derived(sid))
        self._cache[sid] = result
        return result

    def _claimed(self, st: SessionStatus) -> SessionStatus:
        """A live claim on top of the derived status: ready → in_progress, otherwise named in the reason."""
        claim = self.claims.get(st.sid)
        if claim is None:
            return st
        st.claim, st.claim_left_s = claim, claim.remaining_s(self.now)
        words = claim.describe(self.now)
        if st.status in (SessionState.ready, SessionState.optional):
            st.unclaimed, st.status, st.reason = st.status, SessionState.in_progress, words
        else:
            st.reason = f"{st.reason} · {words}" if st.reason else words
        return st

    def _derived(self, sid: str) -> SessionStatus:
        """The status the evidence gives, claims aside."""
        validated = self._validated(sid)
        if validated is not None:
            return validated
        session = self.plan.sessions[sid]
        blockers, reasons = [], []
        for dep in session.depends_on:
            dep_status = self.session(dep)
            if dep_status.status not in DONE:
                blockers.append(dep)
                reasons.append(f"needs {dep} ({dep_status.status.label})")
        gate = self.gate_before(session)
        if gate is not None and self.plan.strict_gates and not self.gate(gate.id).passed:
            blockers.append(gate.id)
            reasons.append(f"gate {gate.id} has not passed")
        if blockers:
            return SessionStatus(sid, SessionState.blocked, "; ".join(reasons), None, blockers)
        return SessionStatus(sid, SessionState.optional if session.optional else SessionState.ready)

    def gate_before(self, session: Session) -> Gate | None:
        """The gate of the previous week, which must pass before this session runs."""
        return self.plan.gate_before(session)

    def gate_sessions(self, gate: Gate) -> list[str]:
        return self.plan.gate_members(gate)

    # ---- gates -------------------------------------------------------------
    def gate(self, gid: str) -> GateStatus:
        """A gate's status, derived like a session's: its sessions, then its checks' verdict.

        A gate with no checks passes when its sessions are complete. Otherwise it
        needs an evaluation ('finks gate', or a run that reaches it) whose checks
        give evidence the environment accepts: checks that all skipped do not.
        """
        if gid in self._gates:
            return self._gates[gid]
        gate = self.plan.gates[gid]
        record = self.history.gates.get(gid)
        incomplete = [s for s in self.gate_sessions(gate) if self.session(s).status not in DONE]
        was_passed = bool(record and record.get("outcome") == GateState.passed)
        evaluated = bool(record and (record.get("checks") or not gate.checks))
        verdict = judge_checks(gate.title, gate.checks, record.get("checks") if record else None, self.env,
                               self.accept_planned) if gate.checks and evaluated else None
        if incomplete:
            status = (GateStatus(gate, GateState.stale, f"passed, but {', '.join(incomplete)} no longer complete",
                                 record, verdict) if was_passed else
                      GateStatus(gate, GateState.pending, f"waiting for {', '.join(incomplete)}", record, verdict))
        elif not gate.checks:
            status = GateStatus(gate, GateState.passed, "its sessions are complete (the gate has no checks)", record)
        elif verdict is None:
            status = GateStatus(gate, GateState.ready, "sessions complete; run 'finks gate " + gid + "'", record)
        elif verdict.accepted:
            status = GateStatus(gate, GateState.passed, f"passed at {record['at'] if record else '?'} "
                                f"({verdict.label})", record, verdict)
        elif verdict.label in ("failed", "error"):
            status = GateStatus(gate, GateState.failed, (record or {}).get("reason", "gate checks failed"), record,
                                verdict)
        else:
            status = GateStatus(gate, GateState.unverified, f"its checks gave no accepted evidence on {self.env}: "
                                f"{verdict.remedy}", record, verdict)
        self._gates[gid] = status
        return status

    # ---- the whole board ---------------------------------------------------
    def all(self) -> list[SessionStatus]:
        rows = [self.session(sid) for sid in self.plan.sessions]
        self.hashes.save()
        return rows

    def all_complete(self) -> bool:
        return all(row.status in DONE for row in self.all())

    def can_run(self, sid: str) -> bool:
        """Its predecessors are complete (a failed, stale or unverified session may run again)."""
        return all(self.session(d).status in DONE for d in self.plan.sessions[sid].depends_on)

    def next_sessions(self, schedule: Schedule) -> list[SessionStatus]:
        """The sessions to run now: unclaimed ones first, then those someone has claimed;
        within each, critical path first (least slack), then plan order."""
        rows = [row for row in self.all() if row.runnable and self.can_run(row.sid)]
        return sorted(rows, key=lambda row: (row.claim is not None, schedule.slack[row.sid],
                                             self.plan.position(row.sid)))

    def why(self, sid: str) -> Why:
        """The chain behind a session's status, down to the failing check and its evidence.

        Blockers are walked depth first; a blocker shared by two paths appears under each.
        """
        chain: list[WhyLink] = []
        self._walk(sid, 0, chain)
        return Why(sid, tuple(chain))

    def _walk(self, sid: str, depth: int, chain: list[WhyLink]) -> None:
        st = self.session(sid)
        evidence = None
        if st.last_run is not None and st.status in (SessionState.failed, SessionState.interrupted):
            evidence = tuple(
                BlockingEvidence(c.get("check") or c.get("task") or "", c["outcome"], c["message"],
                                 c.get("excerpt", "")[-WHY_EXCERPT_CHARS:])
                for c in st.last_run.checks + st.last_run.actions if c["outcome"] in FAILING
            )
        criteria = None
        if st.status == SessionState.unverified and st.verdict is not None:
            criteria = tuple(st.verdict.pending)
        chain.append(WhyLink(sid, st.status, st.reason, depth, evidence, criteria))
        for blocker in st.blockers:
            if blocker in self.plan.sessions:
                self._walk(blocker, depth + 1, chain)
            else:
                gate = self.gate(blocker)
                chain.append(WhyLink(blocker, gate.status, gate.reason, depth + 1))
