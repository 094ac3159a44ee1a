"""Run sessions: task actions, then checks; record evidence; write handoffs.

The runner never prints: it emits events to a reporter (see
:mod:`finks.reporters`). Independent sessions run in parallel up to ``jobs``;
a session whose predecessor failed in this run is skipped with that reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.clock import new_run_id
from core.errors import BlockedError
from finks.checks import CheckContext, CheckResult, Evidence, Outcome, run_check
from finks.loader import Plan
from finks.models import Action, CheckSpec, Session
from finks.state import StateStore
from finks.status import StatusBoard, deliverables_hash

Emit = Callable[[str, dict[str, Any]], None]


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
    results: dict[str, str] = field(default_factory=dict)  # sid -> passed|failed|skipped_upstream|blocked|up_to_date
    reasons: dict[str, str] = field(default_factory=dict)
    gates: dict[str, str] = field(default_factory=dict)

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.results.values() if o == outcome)

    @property
    def ok(self) -> bool:
        bad = ("failed", "skipped_upstream", "blocked")
        return not any(o in bad for o in self.results.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "batch_id": self.batch_id,
            "ok": self.ok,
            "sessions": [{"id": s, "outcome": o, "reason": self.reasons.get(s, "")} for s, o in self.results.items()],
            "gates": self.gates,
            "counts": {k: self.count(k) for k in ("passed", "failed", "skipped_upstream", "blocked", "up_to_date")},
        }


class Runner:
    def __init__(self, plan: Plan, env: str, root: Path, state_dir: Path, emit: Emit, jobs: int = 1) -> None:
        self.plan = plan
        self.env = env
        self.root = root
        self.state_dir = state_dir
        self.store = StateStore(state_dir, env)
        self.emit = emit
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
        self.emit("action_started", {"session": session.id, "task": title})
        result = run_check(spec, self._ctx(session.id, "action"))
        self.store.append({"type": "action", "run_id": run_id, "session": session.id, "task": title, **result.to_dict()})
        self.emit("action_finished", {"session": session.id, "task": title, "result": result})
        return result

    def run_session(self, session: Session) -> str:
        """Run one session's actions and checks; return passed | failed | not_applicable."""
        from finks.handoff import write_handoff

        run_id = new_run_id()
        started = time.monotonic()
        import os

        self.store.append(
            {"type": "run_started", "run_id": run_id, "session": session.id, "pid": os.getpid(), "git": git_info(self.root)}
        )
        self.emit("session_started", {"session": session.id, "title": session.title, "run_id": run_id})
        outcome = "passed"
        for task in session.tasks:
            if task.action is None or self.env not in task.action.envs:
                continue
            result = self._action(session, task.title, task.action, run_id)
            if result.outcome in (Outcome.failed, Outcome.error):
                outcome = "failed"
                break
        results: list[tuple[str, CheckResult]] = []
        if outcome == "passed":
            for criterion in session.criteria:
                for spec in criterion.checks:
                    self.emit("check_started", {"session": session.id, "check": spec.id})
                    result = run_check(spec, self._ctx(session.id, spec.id))
                    results.append((criterion.text, result))
                    self.store.append(
                        {"type": "check", "run_id": run_id, "session": session.id, "criterion": criterion.text,
                         "kind": spec.kind, "target": spec.target, **result.to_dict()}
                    )
                    self.emit("check_finished", {"session": session.id, "criterion": criterion.text, "result": result})
            outcomes = {r.outcome for _, r in results}
            if outcomes & {Outcome.failed, Outcome.error}:
                outcome = "failed"
            elif Outcome.passed not in outcomes:
                outcome = "not_applicable"
        duration = time.monotonic() - started
        self.store.append(
            {"type": "run_finished", "run_id": run_id, "session": session.id, "outcome": outcome,
             "duration_s": round(duration, 2),
             "deliverables_hash": deliverables_hash(self.root, session.deliverables)}
        )
        path = write_handoff(self.plan, self.env, self.root, self.store, session.id)
        self.emit("session_finished", {"session": session.id, "outcome": outcome, "duration_s": duration, "handoff": path})
        return outcome

    # ---- gates ---------------------------------------------------------
    def evaluate_gate(self, gid: str) -> tuple[bool, str]:
        board = self.board()
        gate = self.plan.gates[gid]
        members = board.gate_sessions(gate)
        incomplete = {s: board.session(s).status for s in members if board.session(s).status != "complete"}
        checks: list[dict[str, Any]] = []
        if incomplete:
            reason = "incomplete: " + ", ".join(f"{s} ({st})" for s, st in incomplete.items())
            passed = False
        else:
            for spec in gate.checks:
                result = run_check(spec, self._ctx(gid, spec.id))
                checks.append(result.to_dict())
                self.emit("check_finished", {"session": gid, "criterion": gate.title, "result": result})
            bad = [c for c in checks if c["outcome"] in ("failed", "error")]
            passed = not bad
            reason = "; ".join(f"{c['check']}: {c['message']}" for c in bad) or "all sessions complete, gate checks passed"
        self.store.append({"type": "gate", "gate": gid, "outcome": "passed" if passed else "failed",
                           "reason": reason, "checks": checks})
        self.emit("gate_evaluated", {"gate": gid, "passed": passed, "reason": reason})
        return passed, reason

    # ---- batches ---------------------------------------------------------
    def plan_batch(self, selected: list[str], *, explicit: set[str], force: bool) -> list[str]:
        """Drop sessions already complete unless named explicitly or forced."""
        board = self.board()
        return [s for s in selected if force or s in explicit or board.session(s).status != "complete"]

    def run(self, selected: list[str], *, explicit: set[str] | None = None, force: bool = False,
            dry_run: bool = False) -> RunSummary:
        explicit = explicit or set()
        summary = RunSummary(self.env, new_run_id())
        todo = self.plan_batch(selected, explicit=explicit, force=force)
        for sid in selected:
            if sid not in todo:
                summary.results[sid] = "up_to_date"
        self._refuse_blocked(todo, summary)
        if dry_run:
            for sid in todo:
                if sid not in summary.results:
                    summary.results[sid] = "would_run"
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
                if dep not in in_batch and board.session(dep).status != "complete":
                    outside.append(f"{dep} ({board.session(dep).status})")
            if outside:
                summary.results[sid] = "blocked"
                summary.reasons[sid] = "blocked by " + ", ".join(outside)
        if len(todo) == 1 and summary.results.get(todo[0]) == "blocked":
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
        if gate.id not in summary.gates and status.status in ("ready", "failed", "stale"):
            passed, reason = self.evaluate_gate(gate.id)
            summary.gates[gate.id] = "passed" if passed else "failed"
            return passed, "" if passed else f"gate {gate.id} failed: {reason}"
        return False, f"gate {gate.id} has not passed ({status.reason})"

    def _execute(self, todo: list[str], summary: RunSummary) -> None:
        pending = [s for s in todo if s not in summary.results]
        running: dict[Future[str], str] = {}
        done: set[str] = set()
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            while pending or running:
                progressed = False
                for sid in list(pending):
                    deps = [d for d in self.plan.sessions[sid].depends_on if d in todo]
                    failed_deps = [d for d in deps if summary.results.get(d) in ("failed", "skipped_upstream", "blocked")]
                    if failed_deps:
                        summary.results[sid] = "skipped_upstream"
                        summary.reasons[sid] = "upstream did not pass: " + ", ".join(
                            f"{d} ({summary.results[d].replace('_', ' ')})" for d in failed_deps)
                        self.emit("session_skipped", {"session": sid, "reason": summary.reasons[sid]})
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
                        summary.results[sid] = "blocked"
                        summary.reasons[sid] = reason
                        self.emit("session_skipped", {"session": sid, "reason": reason})
                        continue
                    running[pool.submit(self.run_session, self.plan.sessions[sid])] = sid
                if running:
                    finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                    for fut in finished:
                        sid = running.pop(fut)
                        outcome = fut.result()
                        summary.results[sid] = "failed" if outcome == "failed" else "passed"
                        done.add(sid)
                elif not progressed and pending:
                    for sid in pending:
                        summary.results[sid] = "blocked"
                        summary.reasons[sid] = "predecessor not run"
                    pending.clear()

    def _needs_gate(self, sid: str) -> bool:
        board = self.board()
        gate = board.gate_before(self.plan.sessions[sid])
        return gate is not None and not board.gate(gate.id).passed


def evidence_line(result: CheckResult) -> str:
    ev: Evidence = result.evidence
    figures = ", ".join(f"{k}={v}" for k, v in list(ev.figures.items())[:6])
    return ev.message + (f" ({figures})" if figures else "")
