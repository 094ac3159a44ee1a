"""A batch of sessions: what it needs, in which order, and what it came to.

Pure helpers the runner (:mod:`finks.runner`) schedules with, and the
:class:`RunSummary` it returns. With strict gates a session waits, in a
batch, for its dependencies and for the sessions of the gate before it; a
dry run (:func:`simulate`) walks those steps without running anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from finks.outcomes import GateState, SessionOutcome
from finks.verdicts import SessionVerdict, count_all

if TYPE_CHECKING:
    from finks.loader import Plan
    from finks.status import StatusBoard

# The outcomes a summary counts (its "counts" in JSON, its one line of text).
COUNTED = (SessionOutcome.passed, SessionOutcome.failed, SessionOutcome.unverified, SessionOutcome.not_applicable,
           SessionOutcome.skipped_upstream, SessionOutcome.blocked, SessionOutcome.up_to_date)
WOULD_EVALUATE = "would_evaluate"  # a dry run's answer for a gate


@dataclass
class RunSummary:
    env: str
    batch_id: str
    results: dict[str, SessionOutcome] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    # Gates evaluated on the way (passed | failed | unverified), or that a dry run would evaluate.
    gates: dict[str, str] = field(default_factory=dict)
    verdicts: dict[str, SessionVerdict] = field(default_factory=dict)  # of each session that ran
    steps: list[str] = field(default_factory=list)  # sessions and gates, in the order they ran (or would)

    def count(self, outcome: SessionOutcome) -> int:
        return sum(1 for o in self.results.values() if o == outcome)

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.results.values()) and \
            all(g in (GateState.passed, WOULD_EVALUATE) for g in self.gates.values())

    def verdict_counts(self) -> dict[str, int]:
        """Criteria by verdict over every session that ran."""
        return count_all(self.verdicts.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "batch_id": self.batch_id,
            "ok": self.ok,
            "sessions": [{"id": s, "outcome": o, "reason": self.reasons.get(s, ""),
                          "verdicts": self.verdicts[s].counts if s in self.verdicts else None}
                         for s, o in self.results.items()],
            "gates": self.gates,
            "steps": self.steps,
            "counts": {str(k): self.count(k) for k in COUNTED},
            "verdicts": self.verdict_counts(),
        }



def batch_needs(plan: Plan, sid: str, todo: list[str]) -> dict[str, str]:
    """What sid waits for in this batch: its dependencies, and with strict gates the
    sessions of the gate before it; each with the words that say why."""
    in_batch = set(todo)
    out = {d: "" for d in plan.sessions[sid].depends_on if d in in_batch}
    gate = plan.gate_before(plan.sessions[sid]) if plan.strict_gates else None
    if gate is not None:
        for member in plan.gate_members(gate):
            if member in in_batch and member != sid:
                out.setdefault(member, f" for gate {gate.id}")
    return out


def gates_reached(plan: Plan, todo: list[str], summary: RunSummary) -> list[str]:
    """Gates with a session in this batch that it has not evaluated yet, by week."""
    in_batch = set(todo)
    return [gid for gid, g in sorted(plan.gates.items(), key=lambda kv: kv[1].week)
            if gid not in summary.gates and in_batch & set(plan.gate_members(g))]


def simulate(plan: Plan, board: StatusBoard, todo: list[str], summary: RunSummary) -> None:
    """A dry run: the steps a run would take, in its order, as if each session passed."""
    from finks.status import DONE

    done = {s for s in plan.sessions if board.session(s).status in DONE}
    opened = {g for g in plan.gates if board.gate(g).passed}
    for sid in todo:
        if sid in summary.results:
            continue
        needs = batch_needs(plan, sid, todo)
        failed = [d for d in needs if summary.results.get(d) not in (None, SessionOutcome.would_run)]
        if failed:
            summary.results[sid] = SessionOutcome.skipped_upstream
            summary.reasons[sid] = "upstream would not run: " + ", ".join(f"{d}{needs[d]}" for d in failed)
            continue
        gate = plan.gate_before(plan.sessions[sid]) if plan.strict_gates else None
        if gate is not None and gate.id not in opened:
            waiting = [m for m in plan.gate_members(gate) if m not in done]
            if waiting:
                summary.results[sid] = SessionOutcome.blocked
                summary.reasons[sid] = f"gate {gate.id} would wait for {', '.join(waiting)}"
                continue
            summary.gates[gate.id] = WOULD_EVALUATE
            summary.steps.append(gate.id)
            opened.add(gate.id)
        summary.results[sid] = SessionOutcome.would_run
        summary.steps.append(sid)
        done.add(sid)
    for gid in gates_reached(plan, todo, summary):
        g = plan.gates[gid]
        if gid not in opened and g.checks and all(m in done for m in plan.gate_members(g)):
            summary.gates[gid] = WOULD_EVALUATE
            summary.steps.append(gid)
