"""`finks mcp`: the orchestrator's operations for coding agents, over MCP on stdio.

Every tool returns the document its CLI command prints with ``--json`` (the
same builder in :mod:`finks.payloads`, schema ``finks.<kind>/vN``) as
structured content, and a short text summary::

    tool     arguments                                     document kind
    status   env                                           status
    next     env                                           next
    why      session, env                                  why
    show     session, env                                  session
    plan                                                   plan
    prime    session, env                                  prime
    handoff  session, env, write                           handoff
    run      selector, env, dry_run, force, jobs, wait,    run (+ progress notifications)
             owner
    verify   selector, env, jobs, wait                     verify (+ progress notifications)
    gate     gate, env, wait                               gate
    claim    session, owner, lease, steal, env             claim
    release  session, owner, env                           claim

Resources (markdown): ``finks://handoff/{env}/{session}``,
``finks://prime/{session}`` (env from ``FINKS_ENV``, else local) and
``finks://prime/{env}/{session}``.

A FinksError becomes a tool error whose text is the CLI's one line
(``finks: error: …``); its structured content (``finks.error/v1``) adds the
exit code the CLI would use. Read tools take no lock. ``run`` and ``gate``
call the synchronous runner in a worker thread: each event it emits reaches
the client as a progress notification whose message is the line the console
reporter prints, sent through the event loop (:class:`ProgressReporter`).

``claim`` says an agent is on a session (status: "claimed by NAME, 2 h
left"; ``next`` offers it after the unclaimed ones; another owner's ``run``
of it warns in a progress notification); ``release`` gives it up. A live
claim of another owner is refused (exit code 1 in the error) unless
``steal``. ``owner`` defaults to FINKS_OWNER, else the user name.

Adding a tool is one function under :func:`build_server`: build its document
in :mod:`finks.payloads`, return ``_result(kind, payload, text)`` from inside
``_guard``.
"""

from __future__ import annotations

import functools
import io
import os
import threading
from collections.abc import Callable
from typing import Annotated, Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp_types import CallToolResult, Completion, TextContent, ToolAnnotations
from pydantic import Field

from core.errors import FinksError, UsageError
from finks import payloads
from finks.events import Event
from finks.mcp_text import next_text, run_text, status_text, why_text

# A tool's result: the document as structured content (an object), the summary as text.
Doc = Annotated[CallToolResult, dict[str, Any]]
Env = Annotated[str | None, Field(description="local | dev | staging | prod (default: FINKS_ENV, else local)")]
Sid = Annotated[str, Field(description="a session id, e.g. s16")]
READ = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)
CLAIM = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
Owner = Annotated[str | None, Field(description="who is on it (default: FINKS_OWNER, else the user name)")]

INSTRUCTIONS = """finks builds and proves a data platform session by session (a plan of sessions s0…s22 with
weekly gates). Typical loop: `next` (what is ready) → `prime` (the context to start a session) → work →
`run` (its actions and checks; evidence and a handoff note) → `why` when something is blocked or failed.
Results carry the same JSON documents as `finks <command> --json`."""


def _env(env: str | None) -> str:
    return env or os.environ.get("FINKS_ENV") or "local"


def _result(kind: str, payload: dict[str, Any], text: str | Callable[[dict[str, Any]], str]) -> CallToolResult:
    """The document as structured content; the text is given, or summarised from the document."""
    doc = payloads.document(kind, payload)
    return CallToolResult(content=[TextContent(type="text", text=text if isinstance(text, str) else text(doc))],
                          structured_content=doc)


def _guard(build: Callable[[], CallToolResult]) -> CallToolResult:
    """A FinksError is the caller's to fix: a tool error with the CLI's line, never a traceback."""
    try:
        return build()
    except FinksError as exc:
        return CallToolResult(
            content=[TextContent(type="text", text=f"finks: error: {exc}")], is_error=True,
            structured_content={"schema": "finks.error/v1", "error": exc.message, "hint": exc.hint,
                                "exit_code": exc.exit_code})


class ProgressReporter:
    """A :class:`finks.events.Reporter` that sends each event as an MCP progress notification.

    The message is what the console reporter prints for the event (events it
    does not print send nothing). ``send(progress, total, message)`` is called
    from the runner's threads, one at a time, with ``progress`` rising by one
    per notification; ``total`` is the expected count, raised if exceeded.
    """

    def __init__(self, send: Callable[[float, float | None, str], None], total: int | None = None) -> None:
        from finks.reporters import TextReporter

        self._send = send
        self._buffer = io.StringIO()
        self._console = TextReporter(stream=self._buffer)
        self._lock = threading.Lock()
        self.count = 0
        self.total = total
        self.broken = False  # the client went away: the run goes on, silently

    def handle(self, event: Event) -> None:
        with self._lock:
            self._console.handle(event)
            text = self._buffer.getvalue().rstrip("\n")
            self._buffer.seek(0)
            self._buffer.truncate()
            if text:
                self._notify(text)

    def note(self, line: str) -> None:
        """A line that is no event (waiting for a lock another run holds)."""
        with self._lock:
            self._notify(line)

    def finish(self, line: str) -> None:
        """The last notification: progress reaches the total."""
        with self._lock:
            self.total = max(self.total or 0, self.count + 1)
            self.count = self.total - 1
            self._notify(line)

    def _notify(self, text: str) -> None:
        self.count += 1
        if self.total is not None and self.count > self.total:
            self.total = self.count
        if self.broken:
            return
        try:
            self._send(self.count, self.total, text)
        except Exception:  # noqa: BLE001 - a reporter must not stop the run (finks.events.Reporter)
            self.broken = True


def expected_notifications(runner: Any, would_run: list[str], *, with_actions: bool = True) -> int:
    """How many lines the console reporter prints for these sessions, gates aside."""
    total = 0
    for sid in would_run:
        s = runner.plan.sessions[sid]
        actions = sum(1 for t in s.tasks if t.action is not None and runner.env in t.action.envs) if with_actions else 0
        total += 2 + 2 * actions + len(s.checks)  # started, finished; action started/finished; each check
    return total


# ---- text summaries ------------------------------------------------------------
def build_server(ws: payloads.Workspace) -> MCPServer:
    server: MCPServer = MCPServer("finks", instructions=INSTRUCTIONS, log_level="WARNING")

    @server.tool(annotations=READ)
    def status(env: Env = None) -> Doc:
        """Every session's derived status (complete, stale, failed, in_progress, interrupted, ready, blocked) and the gates."""
        def build() -> CallToolResult:
            plan, board = ws.board(_env(env))
            return _result("status", payloads.status(_env(env), plan, board), status_text)
        return _guard(build)

    @server.tool(name="next", annotations=READ)
    def next_(env: Env = None) -> Doc:
        """The sessions to run now, critical path first, each with its command."""
        def build() -> CallToolResult:
            plan, board = ws.board(_env(env))
            return _result("next", payloads.next_(_env(env), plan, board), next_text)
        return _guard(build)

    @server.tool(annotations=READ)
    def why(session: Sid, env: Env = None) -> Doc:
        """The chain behind a session's status, down to the failing check and its evidence."""
        def build() -> CallToolResult:
            plan, board = ws.board(_env(env))
            return _result("why", payloads.why(_env(env), board.why(plan.session(session).id)), why_text)
        return _guard(build)

    @server.tool(annotations=READ)
    def show(session: Sid, env: Env = None) -> Doc:
        """Everything about one session: tasks, criteria and their checks, deliverables, status."""
        def build() -> CallToolResult:
            plan, board = ws.board(_env(env))
            s = plan.session(session)
            st = board.session(s.id)
            text = (f"{s.id}: {s.title} [{st.status}{': ' + st.reason if st.reason else ''}] · week {s.week} · "
                    f"depends on {', '.join(s.depends_on) or 'nothing'} · {len(s.checks)} checks")
            return _result("session", payloads.session(plan, board, s.id), text)
        return _guard(build)

    @server.tool(annotations=READ)
    def plan() -> Doc:
        """Parallel waves, the critical path (low and high estimates), slack and totals."""
        def build() -> CallToolResult:
            doc = payloads.plan_(ws.plan())
            text = (f"{len(doc['waves'])} waves; critical path (high, {doc['total_hours']['high']:g}h): "
                    + " -> ".join(doc["critical_path"]["high"]))
            return _result("plan", doc, text)
        return _guard(build)

    @server.tool(annotations=READ)
    def prime(session: Sid, env: Env = None) -> Doc:
        """What a new working session needs to start this session (markdown): context, tasks, criteria,
        the handoffs of its predecessors, the commands that validate it."""
        def build() -> CallToolResult:
            from finks.handoff import render_prime

            plan, board = ws.board(_env(env))
            sid = plan.session(session).id
            text = render_prime(plan, _env(env), ws.root(), board.store, sid)
            return _result("prime", payloads.prime(_env(env), sid, text, board.verdict(sid).to_dict()), text)
        return _guard(build)

    @server.tool(annotations=READ)
    def handoff(session: Sid, env: Env = None,
                write: Annotated[bool, Field(description="also (re)write the handoff file")] = False) -> Doc:
        """A session's handoff note from its latest run (markdown), and the file it lives in."""
        def build() -> CallToolResult:
            from finks.handoff import handoff_path, render_handoff, write_handoff

            plan, store = ws.plan(), ws.store(_env(env))
            sid = plan.session(session).id
            if write:
                write_handoff(plan, _env(env), ws.root(), store, sid)
            text = render_handoff(plan, _env(env), ws.root(), store, sid)
            path = handoff_path(ws.root(), _env(env), plan, sid)
            verdicts = ws.board(_env(env))[1].verdict(sid).to_dict()
            return _result("handoff", payloads.handoff(_env(env), sid, path, text, verdicts), text)
        return _guard(build)

    @server.tool(annotations=WRITE)
    async def run(
        selector: Annotated[str, Field(description="s8, +s8 (with upstream), s8+ (with downstream), week3, "
                                                   "area:NAME, lists (s1,s2); 'all' for the whole plan")],
        ctx: Context,
        env: Env = None,
        dry_run: Annotated[bool, Field(description="only say what would run")] = False,
        force: Annotated[bool, Field(description="re-run sessions already complete")] = False,
        jobs: Annotated[int, Field(ge=1, le=16, description="sessions run in parallel")] = 1,
        wait: Annotated[bool, Field(description="wait for a session another run holds (else an error)")] = True,
        owner: Owner = None,
    ) -> Doc:
        """Run sessions: their task actions, then their checks; record evidence; write handoff notes.

        Streams progress notifications (the console's lines); returns the run summary and handoff paths."""
        token = anyio.lowlevel.current_token()

        def send(progress: float, total: float | None, message: str) -> None:
            anyio.from_thread.run(functools.partial(ctx.report_progress, progress, total, message), token=token)

        return await anyio.to_thread.run_sync(
            lambda: _guard(lambda: _run(ws, selector, _env(env), dry_run, force, jobs, wait, send, owner)))

    @server.tool(annotations=WRITE)
    async def verify(
        selector: Annotated[str, Field(description="s8, +s8, s8+, week3, area:NAME, lists (s1,s2); "
                                                   "'all' for the whole plan")],
        ctx: Context,
        env: Env = None,
        jobs: Annotated[int, Field(ge=1, le=16, description="sessions checked in parallel")] = 1,
        wait: Annotated[bool, Field(description="wait for a session another run holds (else an error)")] = True,
    ) -> Doc:
        """Check an existing environment: every selected session's checks, no task actions, no deploys.

        Records verdicts as a run does (drift shows as failed); ok is false when any criterion failed or
        has no accepted evidence. Streams progress notifications; returns the summary."""
        token = anyio.lowlevel.current_token()

        def send(progress: float, total: float | None, message: str) -> None:
            anyio.from_thread.run(functools.partial(ctx.report_progress, progress, total, message), token=token)

        return await anyio.to_thread.run_sync(lambda: _guard(lambda: _verify(ws, selector, _env(env), jobs, wait, send)))

    @server.tool(annotations=WRITE)
    async def gate(gate: Annotated[str, Field(description="a gate id, e.g. week1")], ctx: Context,
                   env: Env = None,
                   wait: Annotated[bool, Field(description="wait if another run evaluates it")] = True) -> Doc:
        """Evaluate a weekly gate (its sessions complete, its own checks) and record the verdict."""
        token = anyio.lowlevel.current_token()

        def send(progress: float, total: float | None, message: str) -> None:
            anyio.from_thread.run(functools.partial(ctx.report_progress, progress, total, message), token=token)

        def build() -> CallToolResult:
            reporter = ProgressReporter(send)
            runner = _runner(ws, _env(env), reporter, 1, wait)
            gid = runner.plan.gate(gate).id
            passed, reason = runner.gate(gid)
            verdict = runner.board().gate(gid).verdict
            doc = payloads.gate(_env(env), gid, passed, reason, runner.gate_states.get(gid),
                                verdict.to_dict() if verdict else None)
            return _result("gate", doc, f"{gid}: {'passed' if passed else 'failed'} — {reason}")

        return await anyio.to_thread.run_sync(lambda: _guard(build))

    @server.tool(annotations=CLAIM)
    def claim(session: Sid, owner: Owner = None,
              lease: Annotated[str, Field(description="how long it holds unless renewed: 30m, 4h, 1d")] = "4h",
              steal: Annotated[bool, Field(description="take over another owner's live claim")] = False,
              env: Env = None) -> Doc:
        """Say who is on a session, for a lease: status shows it claimed, `next` offers it after the
        unclaimed ones, another owner's run warns. Claiming your own claim again renews it."""
        def build() -> CallToolResult:
            from finks.claims import default_owner, parse_lease

            seconds = parse_lease(lease)
            plan, store = ws.plan(), ws.store(_env(env))
            sid = plan.session(session).id
            took, replaced = store.claim(sid, owner or default_owner(), seconds, steal=steal)
            text = f"{sid} claimed by {took.owner} on {_env(env)} until {took.expires_at}" + (
                "" if replaced is None or replaced.owner == took.owner else f" (taken over from {replaced.owner})")
            return _result("claim", payloads.claim_(_env(env), took, replaced), text)
        return _guard(build)

    @server.tool(annotations=CLAIM)
    def release(session: Sid, owner: Owner = None, env: Env = None) -> Doc:
        """Give up your claim on a session (an error if another owner holds it)."""
        def build() -> CallToolResult:
            from finks.claims import default_owner

            plan, store = ws.plan(), ws.store(_env(env))
            sid = plan.session(session).id
            who = owner or default_owner()
            released = store.release(sid, who)
            text = (f"{sid} released by {who} on {_env(env)}" if released else
                    f"{sid} is not claimed on {_env(env)}: nothing to release")
            return _result("claim", payloads.release(_env(env), sid, who, released), text)
        return _guard(build)

    _resources(server, ws)
    return server


def _runner(ws: payloads.Workspace, env: str, reporter: ProgressReporter, jobs: int, wait: bool,
            owner: str | None = None) -> Any:
    from finks.runner import Runner

    return Runner(ws.plan(), ws.check_env(env), ws.root(), ws.state_dir(), reporter, jobs=jobs, wait=wait,
                  on_wait=reporter.note, owner=owner)


def _run(ws: payloads.Workspace, selector: str, env: str, dry_run: bool, force: bool, jobs: int, wait: bool,
         send: Callable[[float, float | None, str], None], owner: str | None = None) -> CallToolResult:
    """The `run` tool's work, in a worker thread: the same steps as `finks run`."""
    from finks.graph import resolve, whole_plan
    from finks.outcomes import SessionOutcome

    reporter = ProgressReporter(send)
    runner = _runner(ws, env, reporter, jobs, wait, owner)
    selection = whole_plan(runner.plan) if selector.strip().lower() == "all" else resolve(runner.plan, selector)
    warn, runner.on_warn = runner.on_warn, (runner.on_warn if dry_run else None)  # claims: said once, by the run
    preview = runner.run(selection, force=force, dry_run=True)
    runner.on_warn = warn
    if not dry_run:
        would_run = [sid for sid, o in preview.results.items() if o == SessionOutcome.would_run]
        reporter.total = expected_notifications(runner, would_run) + 1  # and the summary line
        summary = runner.run(selection, force=force)
    else:
        summary = preview
    result = _result("run", payloads.run(summary, runner.plan, runner.root), run_text)
    if not dry_run:
        first = result.content[0]
        reporter.finish(first.text.splitlines()[0] if isinstance(first, TextContent) else "done")
    return result


def _verify(ws: payloads.Workspace, selector: str, env: str, jobs: int, wait: bool,
            send: Callable[[float, float | None, str], None]) -> CallToolResult:
    """The `verify` tool's work, in a worker thread: the same steps as `finks verify`."""
    from finks.graph import resolve, whole_plan

    reporter = ProgressReporter(send)
    runner = _runner(ws, env, reporter, jobs, wait)
    selection = whole_plan(runner.plan) if selector.strip().lower() == "all" else resolve(runner.plan, selector)
    reporter.total = expected_notifications(runner, list(selection.ids), with_actions=False) + 1  # and the summary
    summary = runner.run(selection, verify=True)
    result = _result("verify", payloads.run(summary, runner.plan, runner.root), run_text)
    first = result.content[0]
    reporter.finish(first.text.splitlines()[0] if isinstance(first, TextContent) else "done")
    return result


def _resources(server: MCPServer, ws: payloads.Workspace) -> None:
    def read(render: Callable[[], str]) -> str:
        try:
            return render()
        except UsageError as exc:
            raise ResourceNotFoundError(f"finks: error: {exc}") from None
        except FinksError as exc:
            raise ResourceError(f"finks: error: {exc}") from None

    def handoff_md(env: str, session: str) -> str:
        from finks.handoff import render_handoff

        plan = ws.plan()
        return render_handoff(plan, ws.check_env(env), ws.root(), ws.store(env), plan.session(session).id)

    def prime_md(env: str, session: str) -> str:
        from finks.handoff import render_prime

        plan = ws.plan()
        return render_prime(plan, ws.check_env(env), ws.root(), ws.store(env), plan.session(session).id)

    @server.resource("finks://handoff/{env}/{session}", mime_type="text/markdown",
                     description="A session's handoff note on an environment, from its latest run")
    def handoff_resource(env: str, session: str) -> str:
        return read(lambda: handoff_md(env, session))

    @server.resource("finks://prime/{session}", mime_type="text/markdown",
                     description="A session's context prime (environment: FINKS_ENV, else local)")
    def prime_resource(session: str) -> str:
        return read(lambda: prime_md(_env(None), session))

    @server.resource("finks://prime/{env}/{session}", mime_type="text/markdown",
                     description="A session's context prime on an environment")
    def prime_env_resource(env: str, session: str) -> str:
        return read(lambda: prime_md(env, session))

    @server.completion()
    async def complete(ref: Any, argument: Any, context: Any) -> Completion | None:
        from core.environments import ENVIRONMENTS

        if argument.name == "env":
            values = list(ENVIRONMENTS)
        elif argument.name == "session":
            values = await anyio.to_thread.run_sync(lambda: list(ws.plan().sessions))
        else:
            return None
        return Completion(values=[v for v in values if v.startswith(argument.value)][:100])


def serve(ws: payloads.Workspace) -> None:
    """Serve on stdin/stdout until the client closes them."""
    build_server(ws).run("stdio")
