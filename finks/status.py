"""Status is derived from the evidence, never set by hand.

complete     the latest run passed and no deliverable changed since
stale        the latest run passed but a deliverable changed since
failed       the latest run failed (a check failed or could not run)
in_progress  a run of it is under way
interrupted  its latest run never finished (the process died)
ready        every predecessor is complete and its week's gate is open
blocked      otherwise, with the reason
optional     an optional session not yet run whose predecessors are complete
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finks.loader import Plan
from finks.models import Gate, Session
from finks.outcomes import FAILING, GateState, SessionState
from finks.state import History, SessionRun, StateStore

if TYPE_CHECKING:
    from finks.graph import Schedule

DONE = (SessionState.complete,)
# What 'finks next' offers: sessions that can run now, or should run again.
RUNNABLE = (SessionState.ready, SessionState.optional, SessionState.failed, SessionState.interrupted,
            SessionState.stale)
# A session in one of these states has nothing in its way ('finks why' says so).
UNBLOCKED = (SessionState.ready, SessionState.complete, SessionState.optional)
INDICATOR = {
    SessionState.blocked: "🔴",
    SessionState.ready: "🟡",
    SessionState.complete: "🟢",
    SessionState.in_progress: "🔵",
    SessionState.optional: "⚪",
    SessionState.stale: "🟠",
    SessionState.failed: "❌",
    SessionState.interrupted: "⚠️",
}
WHY_EXCERPT_CHARS = 600
_SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", "target", "logs", "dbt_packages", ".venv"}


def deliverables_hash(root: Path, paths: tuple[str, ...]) -> str:
    """Content hash of every file under the session's deliverables (missing ones count)."""
    digest = hashlib.sha256()
    for rel in sorted(paths):
        target = root / rel
        if target.is_file():
            files = [target]
        elif target.is_dir():
            files = []
            for dirpath, dirnames, filenames in os.walk(target):
                dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
                files.extend(Path(dirpath) / f for f in sorted(filenames) if not f.endswith((".pyc", ".pyo")))
        else:
            digest.update(f"missing:{rel}\n".encode())
            continue
        for file in files:
            digest.update(str(file.relative_to(root)).encode() + b"\0")
            try:
                digest.update(hashlib.sha256(file.read_bytes()).digest())
            except OSError:
                digest.update(b"unreadable")
    return digest.hexdigest()[:16]


@dataclass
class SessionStatus:
    sid: str
    status: SessionState
    reason: str = ""
    last_run: SessionRun | None = None
    blockers: list[str] = field(default_factory=list)

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
            "estimate_hours": [session.estimate_hours.low, session.estimate_hours.high],
            "optional": session.optional,
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

    @property
    def passed(self) -> bool:
        return self.status == GateState.passed

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.gate.id, "week": self.gate.week, "title": self.gate.title, "status": self.status,
                "reason": self.reason}


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

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "status": self.status, "reason": self.reason, "depth": self.depth}
        if self.evidence is not None:
            out["evidence"] = [asdict(e) for e in self.evidence]
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


class StatusBoard:
    """Derives every session's and gate's status for one environment."""

    def __init__(self, plan: Plan, store: StateStore, root: Path, history: History | None = None) -> None:
        self.plan = plan
        self.store = store
        self.root = root
        self.history = history if history is not None else store.history()
        self._running = store.run_in_progress()
        self._cache: dict[str, SessionStatus] = {}
        self._gates: dict[str, GateStatus] = {}

    def _validated(self, sid: str) -> SessionStatus | None:
        """complete / stale / failed / in_progress / interrupted from the latest run, else None."""
        run = self.history.latest(sid)
        if run is None:
            return None
        if not run.finished:
            if self._running:
                return SessionStatus(sid, SessionState.in_progress, f"run {run.run_id} under way", run)
            return SessionStatus(sid, SessionState.interrupted, f"run {run.run_id} never finished (process died)", run)
        if run.validated:
            current = deliverables_hash(self.root, self.plan.sessions[sid].deliverables)
            if run.deliverables_hash and current != run.deliverables_hash:
                return SessionStatus(sid, SessionState.stale, "deliverables changed since it was validated", run)
            return SessionStatus(sid, SessionState.complete, "", run)
        failing = [c for c in run.checks if c.get("outcome") in FAILING]
        failing += [a for a in run.actions if a.get("outcome") in FAILING]
        reason = "; ".join(f"{c.get('check') or c.get('task')}: {c.get('message')}" for c in failing[:2])
        return SessionStatus(sid, SessionState.failed, reason or f"run outcome {run.outcome}", run)

    def session(self, sid: str) -> SessionStatus:
        if sid in self._cache:
            return self._cache[sid]
        validated = self._validated(sid)
        if validated is not None:
            self._cache[sid] = validated
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
            result = SessionStatus(sid, SessionState.blocked, "; ".join(reasons), None, blockers)
        else:
            result = SessionStatus(sid, SessionState.optional if session.optional else SessionState.ready)
        self._cache[sid] = result
        return result

    def gate_before(self, session: Session) -> Gate | None:
        """The gate of the previous week, which must pass before this session runs."""
        return self.plan.gate_for_week(session.week - 1) if session.week > 0 else None

    def gate_sessions(self, gate: Gate) -> list[str]:
        return list(gate.sessions) or [sid for sid, s in self.plan.sessions.items() if s.week == gate.week]

    def gate(self, gid: str) -> GateStatus:
        if gid in self._gates:
            return self._gates[gid]
        gate = self.plan.gates[gid]
        record = self.history.gates.get(gid)
        members = self.gate_sessions(gate)
        incomplete = [s for s in members if self.session(s).status not in DONE]
        if record and record.get("outcome") == "passed":
            if incomplete:
                status = GateStatus(gate, GateState.stale, f"passed, but {', '.join(incomplete)} no longer complete",
                                    record)
            else:
                status = GateStatus(gate, GateState.passed, f"passed at {record['at']}", record)
        elif incomplete:
            status = GateStatus(gate, GateState.pending, f"waiting for {', '.join(incomplete)}", record)
        elif record:
            status = GateStatus(gate, GateState.failed, record.get("reason", "gate checks failed"), record)
        else:
            status = GateStatus(gate, GateState.ready, "sessions complete; run 'finks gate " + gid + "'", None)
        self._gates[gid] = status
        return status

    def all(self) -> list[SessionStatus]:
        return [self.session(sid) for sid in self.plan.sessions]

    def all_complete(self) -> bool:
        return all(row.status in DONE for row in self.all())

    def next_sessions(self, schedule: Schedule) -> list[SessionStatus]:
        """The sessions to run now, critical path first: least slack, then lowest number."""
        rows = [row for row in self.all() if row.status in RUNNABLE]
        return sorted(rows, key=lambda row: (schedule.slack[row.sid], self.plan.sessions[row.sid].number))

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
        chain.append(WhyLink(sid, st.status, st.reason, depth, evidence))
        for blocker in st.blockers:
            if blocker in self.plan.sessions:
                self._walk(blocker, depth + 1, chain)
            else:
                gate = self.gate(blocker)
                chain.append(WhyLink(blocker, gate.status, gate.reason, depth + 1))
