"""Run sessions: task actions, then checks; record evidence; write handoffs.

The runner never prints: it emits typed events (:mod:`finks.events`) to a
reporter (:mod:`finks.reporters`). Independent sessions run in parallel up to
``jobs``; a session whose predecessor failed in this run is skipped with that
reason.
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.clock import new_run_id
from core.errors import BlockedError
from finks.checks import CheckContext, CheckResult, Outcome, run_check
from finks.events import (
    ActionFinished,
    ActionStarted,
    CheckFinished,
    CheckStarted,
    GateEvaluated,
    Reporter,
    SessionFinished,
    SessionSkipped,
    SessionStarted,
)
from finks.graph import Selection
from finks.loader import Plan
from finks.models import Action, CheckSpec, Session
from finks.outcomes import FAILING, NOT_OK, GateState, SessionOutcome, SessionState
from finks.state import StateStore
from finks.status import StatusBoard, deliverables_hash

# The outcomes a summary counts (its "counts" in JSON, its one line of text).
_COUNTED = (SessionOutcome.passed, SessionOutcome.failed, SessionOutcome.skipped_upstream, SessionOutcome.blocked,
            SessionOutcome.up_to_date)


def git_info(root: Path) -> dict[str, Any]:
    """Commit and dirty flag of the working tree (gitpython), or why unknown."""
    try:
        import git

        repo = git.Repo(root, search_parent_directories=True)
        commit = repo.head.commit.hexsha[:12] if repo.head.is_valid() else None
        return {"commit": commit, "dirty": repo.is_dirty(untracked_files=True)}
    except Exception as exc:  # noqa: BLE001 - git is evidence, never a reason to fail a run
        return {"commit": None, "dirty": None, "error": type(exc).__name__}


@dataclass
class RunSummary:
    env: str
    batch_id: str
    results: dict[str, SessionOutcome] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    gates: dict[str, GateState] = field(default_factory=dict)  # gates evaluated on the way: passed | failed

    def count(self, outcome: SessionOutcome) -> int:
        return sum(1 for o in self.results.values() if o == outcome)

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.results.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "batch_id": self.batch_id,
            "ok": self.ok,
            "sessions": [{"id": s, "outcome": o, "reason": self.reasons.get(s, "")} for s, o in self.results.items()],
            "gates": self.gates,
            "counts": {str(k): self.count(k) for k in _COUNTED},
        }


class Runner:
    def __init__(self, plan: Plan, env: str, root: Path, state_dir: Path, reporter: Reporter, jobs: int = 1) -> None:
        self.plan = plan
        self.env = env
        self.root = root
        self.state_dir = state_dir
        self.store = StateStore(state_dir, env)
        self.report = reporter.handle  # every event goes through here
        self.jobs = max(1, jobs)

    def board(self) -> StatusBoard:
        return StatusBoard(self.plan, self.store, self.root)

    # ---- checks and actions ----------------------------------------------
    def _ctx(self, sid: str, check_id: str) -> CheckContext:
        """A fresh scratch directory per check run: evidence must not lean on a previous run."""
        import shutil

        work = self.state_dir / "work" / self.env / sid / check_id
        shutil.rmtree(work, ignore_errors=True)
        return CheckContext(self.env, self.root, self.state_dir, work, sid, check_id)

    def _action(self, session: Session, title: str, action: Action, run_id: str) -> CheckResult:
        spec = CheckSpec(
            id="action",
            python=action.python,
            shell=action.shell,
            timeout=action.timeout,
            envs=action.envs,
        )
        self.report(ActionStarted(session.id, title))
        result = run_check(spec, self._ctx(session.id, "action"))
        self.store.append({"type": "action", "run_id": run_id, "session": session.id, "task": title, **result.to_dict()})
        self.report(ActionFinished(session.id, title, result))
        return result

    def run_session(self, session: Session) -> SessionOutcome:
        """Run one session's actions and checks; return passed | failed | not_applicable."""
        from finks.handoff import write_handoff

        run_id = new_run_id()
        started = time.monotonic()
        import os

        self.store.append(
            {"type": "run_started", "run_id": run_id, "session": session.id, "pid": os.getpid(), "git": git_info(self.root)}
        )
        self.report(SessionStarted(session.id, session.title, run_id))
        outcome = SessionOutcome.passed
        for task in session.tasks:
            if task.action is None or self.env not in task.action.envs:
                continue
            result = self._action(session, task.title, task.action, run_id)
            if result.outcome in FAILING:
                outcome = SessionOutcome.failed
                break
        results: list[tuple[str, CheckResult]] = []
        if outcome == SessionOutcome.passed:
            for criterion in session.criteria:
                for spec in criterion.checks:
                    self.report(CheckStarted(session.id, spec.id))
                    result = run_check(spec, self._ctx(session.id, spec.id))
                    results.append((criterion.text, result))
                    self.store.append(
                        {"type": "check", "run_id": run_id, "session": session.id, "criterion": criterion.text,
                         "kind": spec.kind, "target": spec.target, **result.to_dict()}
                    )
                    self.report(CheckFinished(session.id, criterion.text, result))
            outcomes = {r.outcome for _, r in results}
            if outcomes & FAILING:
                outcome = SessionOutcome.failed
            elif Outcome.passed not in outcomes:
                outcome = SessionOutcome.not_applicable
        duration = time.monotonic() - started
        self.store.append(
            {"type": "run_finished", "run_id": run_id, "session": session.id, "outcome": outcome,
             "duration_s": round(duration, 2),
             "deliverables_hash": deliverables_hash(self.root, session.deliverables)}
        )
        path = write_handoff(self.plan, self.env, self.root, self.store, session.id)
        self.report(SessionFinished(session.id, outcome, duration, path))
        return outcome

    # ---- gates ---------------------------------------------------------
    def evaluate_gate(self, gid: str) -> tuple[bool, str]:
        board = self.board()
        gate = self.plan.gates[gid]
        members = board.gate_sessions(gate)
        incomplete = {s: board.session(s).status for s in members if board.session(s).status != SessionState.complete}
        checks: list[dict[str, Any]] = []
        if incomplete:
            reason = "incomplete: " + ", ".join(f"{s} ({st})" for s, st in incomplete.items())
            passed = False
        else:
            for spec in gate.checks:
                result = run_check(spec, self._ctx(gid, spec.id))
                checks.append(result.to_dict())
                self.report(CheckFinished(gid, gate.title, result))
            bad = [c for c in checks if c["outcome"] in FAILING]
            passed = not bad
            reason = "; ".join(f"{c['check']}: {c['message']}" for c in bad) or "all sessions complete, gate checks passed"
        self.store.append({"type": "gate", "gate": gid, "outcome": GateState.passed if passed else GateState.failed,
                           "reason": reason, "checks": checks})
        self.report(GateEvaluated(gid, passed, reason))
        return passed, reason

    def gate(self, gate_id: str) -> tuple[bool, str]:
        """Evaluate one gate on its own ('finks gate'), holding the run lock."""
        gid = self.plan.gate(gate_id).id
        with self.store.run_lock():
            return self.evaluate_gate(gid)

    # ---- batches ---------------------------------------------------------
    def plan_batch(self, selection: Selection, *, force: bool) -> list[str]:
        """Drop sessions already complete unless named explicitly or forced."""
        board = self.board()
        return [s for s in selection.ids
                if force or s in selection.explicit or board.session(s).status != SessionState.complete]

    def run(self, selection: Selection, *, force: bool = False, dry_run: bool = False) -> RunSummary:
        summary = RunSummary(self.env, new_run_id())
        todo = self.plan_batch(selection, force=force)
        for sid in selection.ids:
            if sid not in todo:
                summary.results[sid] = SessionOutcome.up_to_date
        self._refuse_blocked(todo, summary)
        if dry_run:
            for sid in todo:
                if sid not in summary.results:
                    summary.results[sid] = SessionOutcome.would_run
            return summary
        with self.store.run_lock():
            self._execute(todo, summary)
            self.store.append({"type": "batch", "batch_id": summary.batch_id, "results": summary.results})
        return summary

    def _refuse_blocked(self, todo: list[str], summary: RunSummary) -> None:
        """A session blocked by something outside this batch is refused, naming the blocker."""
        board = self.board()
        in_batch = set(todo)
        for sid in todo:
            outside = []
            for dep in self.plan.sessions[sid].depends_on:
                if dep not in in_batch and board.session(dep).status != SessionState.complete:
                    outside.append(f"{dep} ({board.session(dep).status})")
            if outside:
                summary.results[sid] = SessionOutcome.blocked
                summary.reasons[sid] = "blocked by " + ", ".join(outside)
        if len(todo) == 1 and summary.results.get(todo[0]) == SessionOutcome.blocked:
            sid = todo[0]
            raise BlockedError(f"{sid} is {summary.reasons[sid]}", hint=f"run 'finks why {sid}' or 'finks run +{sid}'")

    def _gate_open(self, sid: str, summary: RunSummary) -> tuple[bool, str]:
        """Evaluate the previous week's gate when its sessions are complete (strict plans)."""
        if not self.plan.strict_gates:
            return True, ""
        board = self.board()
        gate = board.gate_before(self.plan.sessions[sid])
        if gate is None:
            return True, ""
        status = board.gate(gate.id)
        if status.passed:
            return True, ""
        if gate.id not in summary.gates and status.status in (GateState.ready, GateState.failed, GateState.stale):
            passed, reason = self.evaluate_gate(gate.id)
            summary.gates[gate.id] = GateState.passed if passed else GateState.failed
            return passed, "" if passed else f"gate {gate.id} failed: {reason}"
        return False, f"gate {gate.id} has not passed ({status.reason})"

    def _execute(self, todo: list[str], summary: RunSummary) -> None:
        pending = [s for s in todo if s not in summary.results]
        running: dict[Future[SessionOutcome], str] = {}
        done: set[str] = set()
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            while pending or running:
                progressed = False
                for sid in list(pending):
                    deps = [d for d in self.plan.sessions[sid].depends_on if d in todo]
                    failed_deps = [d for d in deps if summary.results.get(d) in NOT_OK]
                    if failed_deps:
                        summary.results[sid] = SessionOutcome.skipped_upstream
                        summary.reasons[sid] = "upstream did not pass: " + ", ".join(
                            f"{d} ({summary.results[d].replace('_', ' ')})" for d in failed_deps)
                        self.report(SessionSkipped(sid, SessionOutcome.skipped_upstream, summary.reasons[sid]))
                        pending.remove(sid)
                        progressed = True
                        continue
                    if not all(d in done for d in deps) or len(running) >= self.jobs:
                        continue
                    if running and self.plan.strict_gates and self._needs_gate(sid):
                        continue  # evaluate gates only when nothing else is running
                    ok, reason = self._gate_open(sid, summary)
                    pending.remove(sid)
                    progressed = True
                    if not ok:
                        summary.results[sid] = SessionOutcome.blocked
                        summary.reasons[sid] = reason
                        self.report(SessionSkipped(sid, SessionOutcome.blocked, reason))
                        continue
                    running[pool.submit(self.run_session, self.plan.sessions[sid])] = sid
                if running:
                    finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                    for fut in finished:
                        sid = running.pop(fut)
                        outcome = fut.result()
                        # not_applicable counts as passed in a batch: nothing applicable failed.
                        failed = outcome == SessionOutcome.failed
                        summary.results[sid] = SessionOutcome.failed if failed else SessionOutcome.passed
                        done.add(sid)
                elif not progressed and pending:
                    for sid in pending:
                        summary.results[sid] = SessionOutcome.blocked
                        summary.reasons[sid] = "predecessor not run"
                    pending.clear()

    def _needs_gate(self, sid: str) -> bool:
        board = self.board()
        gate = board.gate_before(self.plan.sessions[sid])
        return gate is not None and not board.gate(gate.id).passed

