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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finks.loader import Plan
from finks.models import Gate, Session
from finks.state import History, SessionRun, StateStore

DONE = ("complete",)
INDICATOR = {
    "blocked": "🔴",
    "ready": "🟡",
    "complete": "🟢",
    "in_progress": "🔵",
    "optional": "⚪",
    "stale": "🟠",
    "failed": "❌",
    "interrupted": "⚠️",
}
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
    status: str
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
    status: str  # passed | open-for-evaluation | pending | failed | stale
    reason: str = ""
    record: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        return self.status == "passed"


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
                return SessionStatus(sid, "in_progress", f"run {run.run_id} under way", run)
            return SessionStatus(sid, "interrupted", f"run {run.run_id} never finished (process died)", run)
        if run.outcome in ("passed", "not_applicable"):
            current = deliverables_hash(self.root, self.plan.sessions[sid].deliverables)
            if run.deliverables_hash and current != run.deliverables_hash:
                return SessionStatus(sid, "stale", "deliverables changed since it was validated", run)
            return SessionStatus(sid, "complete", "", run)
        failing = [c for c in run.checks if c.get("outcome") in ("failed", "error")]
        failing += [a for a in run.actions if a.get("outcome") in ("failed", "error")]
        reason = "; ".join(f"{c.get('check') or c.get('task')}: {c.get('message')}" for c in failing[:2])
        return SessionStatus(sid, "failed", reason or f"run outcome {run.outcome}", run)

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
                reasons.append(f"needs {dep} ({dep_status.status.replace('_', ' ')})")
        gate = self.gate_before(session)
        if gate is not None and self.plan.strict_gates and not self.gate(gate.id).passed:
            blockers.append(gate.id)
            reasons.append(f"gate {gate.id} has not passed")
        if blockers:
            result = SessionStatus(sid, "blocked", "; ".join(reasons), None, blockers)
        else:
            result = SessionStatus(sid, "optional" if session.optional else "ready")
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
                status = GateStatus(gate, "stale", f"passed, but {', '.join(incomplete)} no longer complete", record)
            else:
                status = GateStatus(gate, "passed", f"passed at {record['at']}", record)
        elif incomplete:
            status = GateStatus(gate, "pending", f"waiting for {', '.join(incomplete)}", record)
        elif record:
            status = GateStatus(gate, "failed", record.get("reason", "gate checks failed"), record)
        else:
            status = GateStatus(gate, "ready", "sessions complete; run 'finks gate " + gid + "'", None)
        self._gates[gid] = status
        return status

    def all(self) -> list[SessionStatus]:
        return [self.session(sid) for sid in self.plan.sessions]
