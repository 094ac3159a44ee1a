"""The documents behind `--json` and the MCP tools: one builder per kind.

`finks status --json` and the MCP tool ``status`` return the same document,
because both shells (:mod:`finks.cli`, :mod:`finks.mcp`) call the builder
here. A builder takes core objects and returns the payload; :func:`document`
adds the versioned schema (``finks.<kind>/vN``) and makes it JSON-ready.

    kind      built from                     CLI                 MCP tool
    status    the status board               finks status        status
    next      the board and the schedule     finks next          next
    plan      the plan's schedules           finks plan          plan
    session   one session and its status     finks show          show
    why       the chain behind a status      finks why           why
    handoff   a handoff note                 finks handoff       handoff
    prime     a context prime                finks prime         prime
    run       a run summary                  finks run, retry    run
    gate      a gate's evaluation            finks gate          gate
    claim     a claim taken or released      finks claim, release  claim, release

:class:`Workspace` says where the plan, the repository and the state are, so
that both shells load them the same way. Nothing here prints or exits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import UsageError

if TYPE_CHECKING:
    from finks.claims import Claim
    from finks.loader import Plan
    from finks.runner import RunSummary
    from finks.state import StateStore
    from finks.status import StatusBoard, Why


@dataclass
class Workspace:
    """The plan directory (None: the repository's sessions/), the repository and the state."""

    sessions: Path | None = None

    def root(self) -> Path:
        from core.paths import repo_root

        return repo_root()

    def state_dir(self) -> Path:
        from core.paths import state_dir

        return state_dir()

    def check_env(self, env: str) -> str:
        from core.environments import ENVIRONMENTS

        if env not in ENVIRONMENTS:
            raise UsageError(f"unknown environment {env!r}", hint=f"use one of {', '.join(ENVIRONMENTS)}")
        return env

    def plan(self) -> Plan:
        """Loaded afresh each time: a long-lived MCP server sees edits to the plan."""
        from finks.loader import load_plan

        return load_plan(self.sessions)

    def store(self, env: str) -> StateStore:
        from finks.state import StateStore

        return StateStore(self.state_dir(), self.check_env(env))

    def board(self, env: str) -> tuple[Plan, StatusBoard]:
        from finks.status import StatusBoard

        plan = self.plan()
        return plan, StatusBoard(plan, self.store(env), self.root())


def document(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The payload in its envelope, as plain JSON values (what `--json` prints)."""
    from finks.reporters import envelope

    return json.loads(envelope(kind, payload))  # type: ignore[no-any-return]


# ---- builders ------------------------------------------------------------------
def status(env: str, plan: Plan, board: StatusBoard) -> dict[str, Any]:
    return {
        "env": env,
        "sessions": [row.to_dict(plan.sessions[row.sid]) for row in board.all()],
        "gates": [board.gate(g).to_dict() for g in plan.gates],
    }


def next_(env: str, plan: Plan, board: StatusBoard) -> dict[str, Any]:
    """The sessions to run now, critical path first (by the high estimates)."""
    from finks.graph import schedule

    sched = schedule(plan, "high", gates=True)
    return {"env": env, "all_complete": board.all_complete(), "sessions": [
        {"id": r.sid, "status": r.status, "slack_hours": sched.slack[r.sid],
         "command": f"finks run {r.sid} --env {env}",
         "claim": r.claim_doc(),
         "note": r.claim.describe(board.now) if r.claim is not None else ""} for r in board.next_sessions(sched)]}


def plan_(plan: Plan) -> dict[str, Any]:
    """Waves and critical path as finks enforces them (strict gates), and as the diagram draws them."""
    from finks.graph import plan_data

    return plan_data(plan)


def session(plan: Plan, board: StatusBoard, sid: str) -> dict[str, Any]:
    s = plan.sessions[sid]
    return {"session": s.model_dump(mode="json"), "status": board.session(sid).to_dict(s), "file": str(plan.files[sid])}


def why(env: str, answer: Why) -> dict[str, Any]:
    return {"env": env, **answer.to_dict()}


def handoff(env: str, sid: str, path: Path, markdown: str, verdicts: dict[str, Any] | None = None) -> dict[str, Any]:
    """``verdicts``: the session's criterion-level verdicts (StatusBoard.verdict(sid).to_dict())."""
    return {"env": env, "session": sid, "path": str(path), "markdown": markdown, "verdicts": verdicts}


def prime(env: str, sid: str, markdown: str, verdicts: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"env": env, "session": sid, "markdown": markdown, "verdicts": verdicts}


def run(summary: RunSummary, plan: Plan, root: Path) -> dict[str, Any]:
    """The run summary, plus the handoff note each session that ran has just written."""
    from finks.handoff import handoff_path
    from finks.outcomes import SessionOutcome

    ran = (SessionOutcome.passed, SessionOutcome.failed, SessionOutcome.unverified, SessionOutcome.not_applicable)
    return {**summary.to_dict(), "handoffs": {
        sid: str(handoff_path(root, summary.env, plan, sid)) for sid, o in summary.results.items() if o in ran}}


def claim_(env: str, claim: Claim, replaced: Claim | None) -> dict[str, Any]:
    """A claim taken (or renewed, or taken over: ``replaced`` is the claim it replaced)."""
    return {"env": env, "action": "claim", "session": claim.session, "owner": claim.owner,
            "claim": claim.to_dict(), "replaced": None if replaced is None else replaced.to_dict()}


def release(env: str, sid: str, owner: str, released: Claim | None) -> dict[str, Any]:
    """``released``: the claim given up, None when the session was not claimed."""
    return {"env": env, "action": "release", "session": sid, "owner": owner, "released": released is not None,
            "claim": None if released is None else released.to_dict()}


def gate(env: str, gid: str, passed: bool, reason: str, status: str | None = None,
         verdict: dict[str, Any] | None = None) -> dict[str, Any]:
    """``status``: passed | failed | unverified | pending; ``verdict``: its checks, judged."""
    return {"env": env, "gate": gid, "passed": passed, "reason": reason, "status": status, "verdict": verdict}
