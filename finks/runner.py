"""Run sessions: task actions, then checks; record evidence; write handoffs.

The runner never prints: it emits typed events (:mod:`finks.events`) to a
reporter (:mod:`finks.reporters`). Independent sessions run in parallel up to
``jobs``; a session whose predecessor failed in this run is skipped with that
reason. A session's ``isolated`` checks run up to ``jobs`` at a time, longest
first, beside its others, which keep plan order; all are judged in plan order.

A session's outcome follows its verdicts (:mod:`finks.verdicts`): passed only
when every criterion that applies has evidence the environment accepts;
unverified when nothing failed but something lacks such evidence. With strict
gates a batch runs in the order finks enforces: a session of week N+1 waits
for the sessions of gate week N in the same batch, and the gate is evaluated
between them; the gates the batch completes are evaluated at its end. A dry
run walks the same steps without running anything.

A verify run (``run(..., verify=True)``, `finks verify`) runs the checks
only: no task action (no deploy, no bootstrap) runs, every selected session is
checked whether or not it is complete, blocked or downstream of a failure,
and its records carry ``"mode": "verify"``. It grades an environment as it
is, and catches drift.

Locks (:mod:`finks.state`): a run of a session holds that session's lock and
those of the shared resources it needs, so runs of independent sessions, in
this process or others, proceed together while runs of the same session
serialize. A gate's evaluation holds the gate's lock. With ``wait`` a run
waits for a held lock (``on_wait`` says so); without, it raises
StateLockedError naming the holder, before anything has run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.clock import new_run_id
from core.errors import BlockedError
from finks.batch import RunSummary, batch_needs, gates_reached, simulate
from finks.checks import CheckContext, CheckResult, run_check
from finks.claims import default_owner
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
from finks.gitinfo import git_info
from finks.graph import Selection
from finks.loader import Plan
from finks.models import Action, CheckSpec, Criterion, Gate, Session
from finks.outcomes import FAILING, NOT_OK, GateState, SessionOutcome, SessionState
from finks.state import StateStore, gate_lock, resource_lock, session_lock
from finks.status import DONE, StatusBoard
from finks.verdicts import SessionVerdict, judge, judge_checks

if TYPE_CHECKING:
    from finks.zygote import Zygote

# The outcome of a session's run from its verdicts (an action that failed makes it failed).
_BY_STATE = {SessionState.complete: SessionOutcome.passed, SessionState.failed: SessionOutcome.failed,
             SessionState.unverified: SessionOutcome.unverified,
             SessionState.not_applicable: SessionOutcome.not_applicable}


def session_locks(session: Session) -> list[str]:
    """The locks a run of a session holds: its own, and one per shared resource it names
    (``resources:`` in its YAML, sorted, so two runs take them in the same order)."""
    return [session_lock(session.id), *(resource_lock(r) for r in session.resources)]


class Runner:
    def __init__(self, plan: Plan, env: str, root: Path, state_dir: Path, reporter: Reporter, jobs: int = 1, *,
                 wait: bool = True, on_wait: Callable[[str], None] | None = None, owner: str | None = None,
                 on_warn: Callable[[str], None] | None = None) -> None:
        self.plan = plan
        self.env = env
        self.root = root
        self.state_dir = state_dir
        self.store = StateStore(state_dir, env)
        self.report = reporter.handle  # every event goes through here
        self.jobs = max(1, jobs)
        self.wait = wait  # for a lock another run holds; else StateLockedError
        self.on_wait = on_wait  # told, in one line, what a run waits for
        self.owner = owner or default_owner()  # who runs: a session claimed by someone else is warned about
        self.on_warn = on_warn or on_wait  # told, in one line, of a claim by another owner
        self._rerun: frozenset[str] = frozenset()  # sessions this batch runs even if complete
        self.verify = False  # this batch runs checks only (see the module docstring)
        self.verdicts: dict[str, SessionVerdict] = {}  # of each session this runner ran
        self.gate_states: dict[str, GateState] = {}  # of each gate this runner evaluated
        self._zygote: Zygote | None = None  # the preloaded parent of this batch's check processes

    def _waiting(self, who: str) -> Callable[[str, str], None]:
        def tell(name: str, holder: str) -> None:
            if self.on_wait is not None:
                self.on_wait(f"{who}: waiting for the {name.replace(':', ' ')} lock on env {self.env!r}, "
                             f"held by another finks run ({holder})")
        return tell

    def board(self) -> StatusBoard:
        return StatusBoard(self.plan, self.store, self.root)

    def _git(self) -> dict[str, Any]:
        """The tree this run sees, this plan's handoff notes aside (finks wrote them)."""
        from finks.handoff import handoffs_dir

        return git_info(self.root, ignore=[handoffs_dir(self.root, self.plan)])

    def _warn_claimed(self, todo: list[str]) -> None:
        """A session someone else has claimed still runs; the runner says whose it is."""
        if self.on_warn is None:
            return
        from core.clock import utcnow

        now, history = utcnow(), self.store.history()
        for sid in todo:
            claim = history.claim(sid, now)
            if claim is not None and claim.owner != self.owner:
                self.on_warn(f"warning: {sid} is {claim.describe(now)} (until {claim.expires_at}); "
                             f"running it as {self.owner} anyway")

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
        result = run_check(spec, self._ctx(session.id, "action"), self._zygote)
        self.store.append({"type": "action", "run_id": run_id, "session": session.id, "task": title, **result.to_dict()})
        self.report(ActionFinished(session.id, title, result))
        return result

    def run_session(self, session: Session) -> SessionOutcome:
        """Run one session under its locks; return passed | failed | not_applicable | up_to_date.

        up_to_date: it waited for another run of the session, which left it
        complete, and this batch did not name it.
        """
        with self.store.lock(session_locks(session), wait=self.wait, on_wait=self._waiting(session.id)) as waited:
            if waited and session.id not in self._rerun and self.board().session(session.id).status in DONE:
                reason = "completed by another run while this one waited"
                self.report(SessionSkipped(session.id, SessionOutcome.up_to_date, reason))
                return SessionOutcome.up_to_date
            return self._run_session(session)

    def _run_session(self, session: Session) -> SessionOutcome:
        from finks.handoff import write_handoff

        run_id = new_run_id()
        started = time.monotonic()
        self.store.append(
            {"type": "run_started", "run_id": run_id, "session": session.id, "pid": os.getpid(), "git": self._git(),
             **self._mode()}
        )
        checks = sum(len(c.checks) for c in session.criteria if c.applies(self.env))
        self.report(SessionStarted(session.id, session.title, run_id, checks))
        action_failed = False
        for task in session.tasks if not self.verify else ():
            if task.action is None or self.env not in task.action.envs:
                continue
            result = self._action(session, task.title, task.action, run_id)
            if result.outcome in FAILING:
                action_failed = True
                break
        todo = [(c, spec) for c in session.criteria if c.applies(self.env) for spec in c.checks]
        records = [r.to_dict() for r in self._run_checks(session, todo if not action_failed else [], run_id)]
        verdict = judge(session, records, self.env, self.plan.accepts_planned(self.env))
        self.verdicts[session.id] = verdict
        outcome = SessionOutcome.failed if action_failed else _BY_STATE[verdict.state]
        duration = time.monotonic() - started
        board = self.board()
        fingerprint = board.fingerprint(session.id)
        self.store.append(
            {"type": "run_finished", "run_id": run_id, "session": session.id, "outcome": outcome,
             "duration_s": round(duration, 2), "verdicts": verdict.counts,
             "fingerprint": fingerprint.to_dict(), "upstream": board.upstream_fingerprints(session.id),
             "deliverables_hash": fingerprint.deliverables, **self._mode()}
        )
        board.hashes.save()
        path = write_handoff(self.plan, self.env, self.root, self.store, session.id)
        self.report(SessionFinished(session.id, outcome, duration, path, verdict.summary()))
        return outcome

    def _check(self, session: Session, criterion: Criterion, spec: CheckSpec, run_id: str) -> CheckResult:
        self.report(CheckStarted(session.id, spec.id))
        result = run_check(spec, self._ctx(session.id, spec.id), self._zygote)
        self.store.append(
            {"type": "check", "run_id": run_id, "session": session.id, "criterion": criterion.text,
             "kind": spec.kind, "target": spec.target, **result.to_dict()}
        )
        self.report(CheckFinished(session.id, criterion.text, result))
        return result

    def _run_checks(self, session: Session, checks: list[tuple[Criterion, CheckSpec]],
                    run_id: str) -> list[CheckResult]:
        """The session's checks, results in plan order (isolated ones beside the rest under --jobs)."""
        isolated = [i for i, (_, spec) in enumerate(checks) if spec.isolated] if self.jobs > 1 else []
        if not isolated:
            return [self._check(session, c, spec, run_id) for c, spec in checks]
        isolated.sort(key=self._expected_seconds(session, [spec for _, spec in checks]))
        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix=f"{session.id}-check") as pool:
            started = {i: pool.submit(self._check, session, *checks[i], run_id) for i in isolated}
            inline = {i: self._check(session, c, spec, run_id)
                      for i, (c, spec) in enumerate(checks) if i not in started}
            return [started[i].result() if i in started else inline[i] for i in range(len(checks))]

    def _expected_seconds(self, session: Session, specs: list[CheckSpec]) -> Callable[[int], float]:
        """Longest first: a check's last recorded duration, else its timeout (the plan's bound on it)."""
        runs = self.store.history().runs.get(session.id, [])
        last = {c["check"]: float(c.get("duration_s") or 0) for run in runs for c in run.checks}
        return lambda i: -last.get(specs[i].id, specs[i].timeout)

    # ---- gates ---------------------------------------------------------
    def evaluate_gate(self, gid: str) -> tuple[bool, str]:
        """Evaluate a gate under its lock: it reads every member session's status."""
        with self.store.lock([gate_lock(gid)], wait=self.wait, on_wait=self._waiting(gid)):
            return self._evaluate_gate(gid)

    def _evaluate_gate(self, gid: str) -> tuple[bool, str]:
        """Its sessions complete, then its checks, judged like a criterion's; a gate without
        checks passes on its sessions. An evaluation that finds sessions incomplete is not recorded."""
        board = self.board()
        gate = self.plan.gates[gid]
        incomplete = {s: board.session(s).status for s in board.gate_sessions(gate)
                      if board.session(s).status not in DONE}
        if incomplete:
            reason = "incomplete: " + ", ".join(f"{s} ({st})" for s, st in incomplete.items())
            self.gate_states[gid] = GateState.pending
            self.report(GateEvaluated(gid, False, reason, GateState.pending))
            return False, reason
        checks: list[dict[str, Any]] = []
        for spec in gate.checks:
            result = run_check(spec, self._ctx(gid, spec.id), self._zygote)
            checks.append(result.to_dict())
            self.report(CheckFinished(gid, gate.title, result))
        verdict = judge_checks(gate.title, gate.checks, checks, self.env, self.plan.accepts_planned(self.env)) \
            if gate.checks else None
        if verdict is None or verdict.accepted:
            state = GateState.passed
            reason = "all sessions complete" + (f", gate checks passed ({verdict.label})" if verdict else
                                                "; the gate has no checks")
        elif verdict.label in ("failed", "error"):
            state = GateState.failed
            reason = "; ".join(f"{c['check']}: {c['message']}" for c in checks if c["outcome"] in FAILING)
        else:
            state, reason = GateState.unverified, f"no accepted evidence on {self.env}: {verdict.remedy}"
        self.store.append({"type": "gate", "gate": gid, "outcome": state, "reason": reason, "checks": checks})
        self.gate_states[gid] = state
        self.report(GateEvaluated(gid, state == GateState.passed, reason, state))
        return state == GateState.passed, reason

    def gate(self, gate_id: str) -> tuple[bool, str]:
        """Evaluate one gate on its own ('finks gate')."""
        return self.evaluate_gate(self.plan.gate(gate_id).id)

    # ---- batches ---------------------------------------------------------
    def plan_batch(self, selection: Selection, *, force: bool) -> list[str]:
        """Drop sessions already complete unless named explicitly or forced."""
        board = self.board()
        return [s for s in selection.ids
                if force or s in selection.explicit or board.session(s).status not in DONE]

    def _mode(self) -> dict[str, str]:
        """What a verify run adds to its records."""
        return {"mode": "verify"} if self.verify else {}

    def run(self, selection: Selection, *, force: bool = False, dry_run: bool = False,
            verify: bool = False) -> RunSummary:
        """Run a batch; with ``verify``, its checks only, for every selected session (see the module docstring)."""
        self.verify = verify
        summary = RunSummary(self.env, new_run_id())
        todo = list(selection.ids) if verify else self.plan_batch(selection, force=force)
        for sid in selection.ids:
            if sid not in todo:
                summary.results[sid] = SessionOutcome.up_to_date
        if not verify:
            self._refuse_blocked(todo, summary)
        self._warn_claimed([sid for sid in todo if sid not in summary.results])
        if dry_run:
            simulate(self.plan, self.board(), todo, summary)
            return summary
        self._rerun = frozenset(todo) if force or verify else frozenset(selection.explicit)
        if not self.wait:
            self._refuse_locked(todo, summary)
        self._zygote = self._preloaded()
        try:
            self._execute(todo, summary)
            self._final_gates(todo, summary)
        finally:
            if self._zygote is not None:
                self._zygote.close()
            self._zygote = None
        self.store.append({"type": "batch", "batch_id": summary.batch_id, "results": summary.results, **self._mode()})
        return summary

    def _preloaded(self) -> Zygote | None:
        """One preloaded parent per batch: check processes skip the heavy imports (finks.zygote)."""
        from finks import zygote
        from finks.checks import child_env

        if not zygote.enabled():
            return None
        env = child_env(CheckContext(self.env, self.root, self.state_dir, self.state_dir / "work" / self.env))
        env.pop("FINKS_CHECK_CONTEXT", None)
        return zygote.Zygote(self.root, env)

    def _refuse_locked(self, todo: list[str], summary: RunSummary) -> None:
        """Without waiting, refuse at once, before anything runs, when another run holds a lock."""
        for sid in todo:
            if sid in summary.results:
                continue
            for name in session_locks(self.plan.sessions[sid]):
                holder = self.store.holder(name)
                if holder is not None:
                    raise self.store.locked_error(name, holder)

    def _refuse_blocked(self, todo: list[str], summary: RunSummary) -> None:
        """A session blocked by something outside this batch is refused, naming the blocker."""
        board = self.board()
        in_batch = set(todo)
        for sid in todo:
            outside = []
            for dep in self.plan.sessions[sid].depends_on:
                if dep not in in_batch and board.session(dep).status not in DONE:
                    outside.append(f"{dep} ({board.session(dep).status})")
            gate = self._gate_needed(sid, board)
            if gate is not None and not outside and board.gate(gate.id).status != GateState.passed:
                waiting = [m for m in board.gate_sessions(gate) if m not in in_batch
                           and board.session(m).status not in DONE]
                if waiting:
                    outside.append(f"gate {gate.id}, which waits for "
                                   + ", ".join(f"{m} ({board.session(m).status})" for m in waiting))
            if outside:
                summary.results[sid] = SessionOutcome.blocked
                summary.reasons[sid] = "blocked by " + ", ".join(outside)
        if len(todo) == 1 and summary.results.get(todo[0]) == SessionOutcome.blocked:
            sid = todo[0]
            raise BlockedError(f"{sid} is {summary.reasons[sid]}", hint=f"run 'finks why {sid}' or 'finks run +{sid}'")

    def _gate_needed(self, sid: str, board: StatusBoard) -> Gate | None:
        """The gate before sid when gates are strict (whether or not it has passed)."""
        return board.gate_before(self.plan.sessions[sid]) if self.plan.strict_gates else None

    def _skip_upstream(self, sid: str, todo: list[str], summary: RunSummary) -> bool:
        needs = batch_needs(self.plan, sid, todo)
        failed = [d for d in needs if summary.results.get(d) in NOT_OK]
        if not failed:
            return False
        summary.results[sid] = SessionOutcome.skipped_upstream
        summary.reasons[sid] = "upstream did not pass: " + ", ".join(
            f"{d} ({summary.results[d].replace('_', ' ')}){needs[d]}" for d in failed)
        self.report(SessionSkipped(sid, SessionOutcome.skipped_upstream, summary.reasons[sid]))
        return True

    def _gate_open(self, sid: str, summary: RunSummary) -> tuple[bool, str]:
        """Evaluate the previous week's gate when its sessions are complete (strict plans)."""
        board = self.board()
        gate = self._gate_needed(sid, board)
        if gate is None:
            return True, ""
        status = board.gate(gate.id)
        if status.passed:
            return True, ""
        if gate.id not in summary.gates and status.status in (GateState.ready, GateState.failed,
                                                               GateState.unverified):
            passed, reason = self.evaluate_gate(gate.id)
            summary.gates[gate.id] = self.gate_states[gate.id]
            summary.steps.append(gate.id)
            return passed, "" if passed else f"gate {gate.id} {self.gate_states[gate.id]}: {reason}"
        return False, f"gate {gate.id} has not passed ({status.reason})"

    def _final_gates(self, todo: list[str], summary: RunSummary) -> None:
        """At the end of a batch, evaluate the gates it completed (the last week's too)."""
        for gid in gates_reached(self.plan, todo, summary):
            if self.board().gate(gid).status in (GateState.ready, GateState.failed, GateState.unverified):
                self.evaluate_gate(gid)
                summary.gates[gid] = self.gate_states[gid]
                summary.steps.append(gid)

    def _execute(self, todo: list[str], summary: RunSummary) -> None:
        pending = [s for s in todo if s not in summary.results]
        running: dict[Future[SessionOutcome], str] = {}
        done: set[str] = set()
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            while pending or running:
                progressed = False
                for sid in list(pending):
                    if not self.verify and self._skip_upstream(sid, todo, summary):
                        pending.remove(sid)
                        progressed = True
                        continue
                    if not all(d in done for d in batch_needs(self.plan, sid, todo)) or len(running) >= self.jobs:
                        continue
                    if self._shares_with(sid, running.values()):
                        continue  # it would only wait for the other's lock: start something else
                    if running and self.plan.strict_gates and not self.verify and self._needs_gate(sid):
                        continue  # evaluate gates only when nothing else is running
                    ok, reason = (True, "") if self.verify else self._gate_open(sid, summary)
                    pending.remove(sid)
                    progressed = True
                    if not ok:
                        summary.results[sid] = SessionOutcome.blocked
                        summary.reasons[sid] = reason
                        self.report(SessionSkipped(sid, SessionOutcome.blocked, reason))
                        continue
                    summary.steps.append(sid)
                    running[pool.submit(self.run_session, self.plan.sessions[sid])] = sid
                if running:
                    finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                    for fut in finished:
                        sid = running.pop(fut)
                        summary.results[sid] = fut.result()
                        if sid in self.verdicts and summary.results[sid] != SessionOutcome.up_to_date:
                            summary.verdicts[sid] = self.verdicts[sid]
                        done.add(sid)
                elif not progressed and pending:
                    for sid in pending:
                        summary.results[sid] = SessionOutcome.blocked
                        summary.reasons[sid] = "predecessor not run"
                    pending.clear()

    def _shares_with(self, sid: str, running: Any) -> bool:
        """Whether a running session of this batch holds a resource ``sid`` needs."""
        mine = set(self.plan.sessions[sid].resources)
        return bool(mine) and any(mine & set(self.plan.sessions[r].resources) for r in running)

    def _needs_gate(self, sid: str) -> bool:
        board = self.board()
        gate = self._gate_needed(sid, board)
        return gate is not None and not board.gate(gate.id).passed
