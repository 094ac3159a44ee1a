"""The `finks` command line: a thin shell over the core.

Exit codes: 0 ok · 1 checks failed or blocked · 2 usage or configuration
error · 3 internal error or state locked. Data goes to stdout, progress to
stderr. Heavy libraries are imported only by the commands that need them.
"""

from __future__ import annotations

# First, before typer loads: a plain `finks status` may be answered from its memo.
import finks.quick  # noqa: F401

# isort: split
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from core.errors import FinksError, UsageError
from finks import payloads
from finks.cligroup import LazyGroup

if TYPE_CHECKING:
    from finks.events import Reporter
    from finks.loader import Plan
    from finks.outcomes import SessionState
    from finks.runner import Runner, RunSummary
    from finks.state import StateStore
    from finks.status import StatusBoard

app = typer.Typer(
    name="finks",
    cls=LazyGroup,
    help="Build and prove the Finks data platform, session by session (S0–S22).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

EnvOpt = Annotated[str, typer.Option("--env", "-e", help="local | dev | staging | prod", envvar="FINKS_ENV")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output on stdout")]
NoWaitOpt = Annotated[bool, typer.Option("--no-wait", help="exit 3 at once if another run holds a lock it needs")]
OwnerOpt = Annotated[str | None, typer.Option("--owner", help="who is on it (default: FINKS_OWNER, else your user name)")]

_W = payloads.Workspace()


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("finks")
        except PackageNotFoundError:  # a checkout that was never installed
            number = "unknown"
        typer.echo(f"finks {number}")
        raise typer.Exit()


@app.callback()
def _global(
    sessions: Annotated[
        Path | None, typer.Option("--sessions", envvar="FINKS_SESSIONS", help="load the plan from another directory")
    ] = None,
    _show_version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    _W.sessions = sessions


# ---- helpers ---------------------------------------------------------------
def _root() -> Path:
    return _W.root()


def _plan() -> Plan:
    return _W.plan()


def _store(env: str) -> StateStore:
    return _W.store(env)


def _board(env: str) -> tuple[Plan, StatusBoard]:
    return _W.board(env)


def _echo_json(kind: str, payload: dict[str, Any]) -> None:
    from finks.reporters import envelope

    typer.echo(envelope(kind, payload))


def _indicator(status: SessionState, tty: bool) -> str:
    from finks.status import INDICATOR

    return f"{INDICATOR.get(status, ' ')} {status.label}" if tty else status.label


# ---- read commands ---------------------------------------------------------
@app.command()
def status(env: EnvOpt = "local", as_json: JsonOpt = False) -> None:
    """Every session's derived status with its verdicts, why it is not complete, last run, estimate; gates below."""
    from finks import quick
    from finks.reporters import envelope, render_status, use_colour

    before = quick.before_status(_W.sessions, _store(env))
    plan, board = _board(env)
    if as_json:
        text = envelope("status", payloads.status(env, plan, board))
    else:
        text = render_status(plan, board, env, sys.stdout.isatty(), use_colour(sys.stdout))
    typer.echo(text)
    quick.remember_status(before, board, text, _W.sessions, env, as_json, sys.stdout)


@app.command("next")
def next_(env: EnvOpt = "local", as_json: JsonOpt = False) -> None:
    """The sessions ready to run, critical path first, with the command for each."""
    plan, board = _board(env)
    doc = payloads.next_(env, plan, board)
    if as_json:
        _echo_json("next", doc)
        return
    if not doc["sessions"]:
        if doc["all_complete"]:
            typer.echo(f"every session is complete on {env}: nothing to do")
        else:
            typer.echo("nothing is ready: run 'finks status' to see what blocks the plan")
        return
    for r in doc["sessions"]:
        slack = r["slack_hours"]
        tag = "critical" if slack == 0 else f"slack {slack:g}h"
        typer.echo(f"{r['id']:<4} {plan.sessions[r['id']].title:<44} {r['status']:<11} {tag:<12} {r['command']}"
                   + (f"  ({r['note']})" if r.get("note") else ""))


@app.command("plan")
def plan_(as_json: JsonOpt = False) -> None:
    """Parallel waves, the critical path by estimates (low and high), slack, total duration.

    With strict gates (the default) the waves and the critical path are the ones
    finks enforces: a week's sessions, then its gate, then the next week's. The
    diagram's critical path (dependencies only) is shown beside them.
    """
    plan = _plan()
    doc = payloads.plan_(plan)
    if as_json:
        _echo_json("plan", doc)
        return
    from finks.reporters import render_plan

    typer.echo(render_plan(plan, doc))


@app.command()
def show(sid: str, env: EnvOpt = "local", as_json: JsonOpt = False) -> None:
    """Everything about one session."""
    plan, board = _board(env)
    s = plan.session(sid)
    st = board.session(s.id)
    if as_json:
        _echo_json("session", payloads.session(plan, board, s.id))
        return
    typer.echo(f"{s.id}: {s.title}  [{st.summary}{': ' + st.reason if st.reason else ''}]")
    typer.echo(f"week {s.week} · area {s.area} · estimate {s.estimate_hours} · depends on "
               f"{', '.join(s.depends_on) or 'nothing'}{' · optional' if s.optional else ''}")
    typer.echo(f"defined in {plan.files[s.id]}")
    if s.context_prime:
        typer.echo("\ncontext prime:\n  " + s.context_prime.strip().replace("\n", "\n  "))
    typer.echo("\ntasks:")
    for t in s.tasks:
        act = f"  [action: {t.action.python or t.action.shell}]" if t.action else ""
        typer.echo(f"  - {t.title}{f' ({t.minutes} min)' if t.minutes else ''}{act}")
    from finks.verdicts import LEGEND, MARK

    judged = {c.text: c for c in board.verdict(s.id).criteria}
    typer.echo(f"\nsuccess criteria on {env} ({LEGEND}):")
    for c in s.criteria:
        cv = judged.get(c.text)
        head = f"{MARK[cv.verdict]} {cv.label}" if cv else f"➖ not a criterion on {env} (envs {','.join(c.envs)})"
        typer.echo(f"  - {head}: {c.text}" + (f" — {cv.remedy}" if cv and cv.remedy else ""))
        for chk in c.checks:
            typer.echo(f"      {chk.id}: {chk.kind} {chk.target}{' ' + repr(list(chk.args)) if chk.args else ''}"
                       f"{' stack ' + chk.stack if chk.stack else ''} ({chk.evidence_grade}, timeout "
                       f"{chk.timeout:g}s, envs {','.join(chk.envs)})")
    for title, items in (("deliverables", s.deliverables), ("pitfalls", s.pitfalls), ("known issues", s.known_issues)):
        if items:
            typer.echo(f"\n{title}:\n" + "\n".join(f"  - {i}" for i in items))
    if s.recovery:
        typer.echo("\nrecovery:\n  " + s.recovery.strip().replace("\n", "\n  "))


@app.command()
def why(sid: str, env: EnvOpt = "local", as_json: JsonOpt = False) -> None:
    """The chain that blocks a session, down to the failing check and its evidence."""
    plan, board = _board(env)
    s = plan.session(sid)
    answer = board.why(s.id)
    if as_json:
        _echo_json("why", payloads.why(env, answer))
        return
    for link in answer.chain:
        indent = "  " * link.depth
        typer.echo(indent + f"{link.id}: {link.status}" + (f" — {link.reason}" if link.reason else ""))
        for ev in link.evidence or ():
            typer.echo(indent + f"    {ev.check} {ev.outcome}: {ev.message}")
            for ln in ev.excerpt.strip().splitlines()[-5:]:
                typer.echo(indent + "      | " + ln)
        for cv in link.criteria or ():
            typer.echo(indent + f"    {cv.label}: {cv.text} — {cv.remedy}")
            for chk in cv.checks:
                typer.echo(indent + f"      {chk.id} ({chk.grade}; envs {', '.join(chk.envs)}): "
                           + (f"{chk.outcome}: {chk.message}" if chk.outcome else "not run"))
    if answer.unblocked:
        typer.echo(f"{s.id} is not blocked: 'finks run {s.id} --env {env}'")


@app.command()
def handoff(sid: str, env: EnvOpt = "local", write: Annotated[bool, typer.Option(help="also (re)write the file")] = False,
            as_json: JsonOpt = False) -> None:
    """Print a session's handoff note (from its latest run)."""
    from finks.handoff import handoff_path, render_handoff, write_handoff

    plan = _plan()
    s = plan.session(sid)
    store = _store(env)
    if write:
        write_handoff(plan, env, _root(), store, s.id)
    text = render_handoff(plan, env, _root(), store, s.id)
    if as_json:
        verdicts = _board(env)[1].verdict(s.id).to_dict()
        _echo_json("handoff", payloads.handoff(env, s.id, handoff_path(_root(), env, plan, s.id), text, verdicts))
        return
    typer.echo(text, nl=False)


@app.command()
def prime(sid: str, env: EnvOpt = "local", as_json: JsonOpt = False) -> None:
    """What a new working session needs to start this session."""
    from finks.handoff import render_prime

    plan = _plan()
    s = plan.session(sid)
    text = render_prime(plan, env, _root(), _store(env), s.id)
    if as_json:
        _echo_json("prime", payloads.prime(env, s.id, text, _board(env)[1].verdict(s.id).to_dict()))
        return
    typer.echo(text, nl=False)


# ---- commands that run things ----------------------------------------------
def _report_summary(summary: RunSummary, runner: Runner, as_json: bool, kind: str = "run") -> None:
    if as_json:
        _echo_json(kind, payloads.run(summary, runner.plan, runner.root))
    else:
        doc = summary.to_dict()
        c = doc["counts"]
        parts = [f"{c['passed']} passed", f"{c['failed']} failed"]
        parts += [f"{c['unverified']} unverified"] if c["unverified"] else []
        parts += [f"{c['skipped_upstream']} skipped (upstream did not pass)"]
        if c["not_applicable"]:
            parts.append(f"{c['not_applicable']} not applicable on {summary.env}")
        if c["blocked"]:
            parts.append(f"{c['blocked']} blocked")
        if c["up_to_date"]:
            parts.append(f"{c['up_to_date']} already complete")
        if summary.verdicts:
            parts.append("criteria: " + ", ".join(f"{n} {v}" for v, n in doc["verdicts"].items() if n))
        if summary.gates:
            parts.append("gates: " + ", ".join(f"{g} {st}" for g, st in summary.gates.items()))
        typer.echo(", ".join(parts))
        for sid, reason in summary.reasons.items():
            typer.echo(f"  {sid}: {reason}", err=True)
    if not summary.ok:
        raise typer.Exit(1)


def _runner(env: str, jobs: int, as_json: bool, verbose: bool = False, no_wait: bool = False,
            owner: str | None = None) -> Runner:
    from finks.reporters import QuietReporter, TextReporter
    from finks.runner import Runner

    reporter: Reporter = QuietReporter() if as_json else TextReporter(verbose=verbose)
    return Runner(_plan(), _W.check_env(env), _root(), _W.state_dir(), reporter, jobs=jobs, wait=not no_wait,
                  on_wait=lambda line: typer.echo(line, err=True), owner=owner)


@app.command()
def run(
    selector: Annotated[str | None, typer.Argument(help="s8, +s8, s8+, week3, area:NAME, lists (s1,s2)")] = None,
    env: EnvOpt = "local",
    all_: Annotated[bool, typer.Option("--all", help="the whole plan (sessions not yet complete)")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what the run would do, in its order: "
                                                         "sessions, and the gates it would evaluate")] = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, max=16,
                                      help="sessions run at once, and isolated checks of a session")] = 1,
    force: Annotated[bool, typer.Option("--force", help="re-run sessions that are already complete")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="show output excerpts of failing checks")] = False,
    no_wait: NoWaitOpt = False,
    owner: OwnerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run sessions: their task actions, then their checks; record evidence; write handoffs.

    Runs of other sessions may go on at the same time; a session another run
    holds is waited for (or, with --no-wait, exit 3). A session claimed by
    another owner runs, with a warning on stderr.
    """
    from finks.graph import resolve, whole_plan

    runner = _runner(env, jobs, as_json, verbose, no_wait, owner)
    if all_ == bool(selector):
        raise UsageError("give a selector or --all (not both)", hint="e.g. 'finks run s8' or 'finks run --all'")
    selection = whole_plan(runner.plan) if all_ else resolve(runner.plan, selector or "")
    summary = runner.run(selection, force=force, dry_run=dry_run)
    if dry_run and not as_json:
        plan = runner.plan
        shown = [*summary.steps, *(sid for sid in summary.results if sid not in summary.steps)]
        for node in shown:
            if node in plan.gates:
                typer.echo(f"{node:<6} {summary.gates[node]:<14} gate: {plan.gates[node].title} "
                           f"(after {', '.join(plan.gate_members(plan.gates[node]))})")
            else:
                typer.echo(f"{node:<6} {summary.results[node]:<14} {plan.sessions[node].title}  "
                           f"{summary.reasons.get(node, '')}".rstrip())
        if not summary.ok:
            raise typer.Exit(1)  # as the run would: something in it is blocked
        return
    _report_summary(summary, runner, as_json)


@app.command()
def verify(
    selector: Annotated[str | None, typer.Argument(help="s8, +s8, s8+, week3, area:NAME, lists (s1,s2)")] = None,
    env: EnvOpt = "local",
    all_: Annotated[bool, typer.Option("--all", help="the whole plan")] = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, max=16,
                                      help="sessions checked at once, and isolated checks of a session")] = 1,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="show output excerpts of failing checks")] = False,
    no_wait: NoWaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Run sessions' checks only (no task actions, no deploys) and record their verdicts.

    How an existing environment is graded and drift is caught: every selected
    session is checked, complete or not, blocked or not. Exit 1 when any
    criterion failed or has no accepted evidence (unverified).
    """
    from finks.graph import resolve, whole_plan

    runner = _runner(env, jobs, as_json, verbose, no_wait)
    if all_ == bool(selector):
        raise UsageError("give a selector or --all (not both)", hint="e.g. 'finks verify s3 --env dev' or 'finks verify --all'")
    selection = whole_plan(runner.plan) if all_ else resolve(runner.plan, selector or "")
    summary = runner.run(selection, verify=True)
    _report_summary(summary, runner, as_json, kind="verify")


@app.command()
def retry(env: EnvOpt = "local", jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, max=16)] = 1,
          no_wait: NoWaitOpt = False, as_json: JsonOpt = False) -> None:
    """Re-run what failed or was skipped in the last run."""
    from finks.graph import named

    again = _store(env).history().to_retry()
    if again is None:
        raise UsageError(f"no earlier run recorded for env {env!r}", hint="use 'finks run SELECTOR'")
    if not again:
        typer.echo("the last run had no failures: nothing to retry")
        return
    runner = _runner(env, jobs, as_json, no_wait=no_wait)
    summary = runner.run(named(runner.plan, again))
    _report_summary(summary, runner, as_json)


@app.command()
def gate(gate_id: str, env: EnvOpt = "local", no_wait: NoWaitOpt = False, as_json: JsonOpt = False) -> None:
    """Evaluate a weekly gate (its sessions complete, its own checks) and record it."""
    runner = _runner(env, 1, as_json, no_wait=no_wait)
    gid = runner.plan.gate(gate_id).id
    passed, reason = runner.gate(gid)
    if as_json:
        verdict = runner.board().gate(gid).verdict
        _echo_json("gate", payloads.gate(env, gid, passed, reason, runner.gate_states.get(gid),
                                         verdict.to_dict() if verdict else None))
    else:
        typer.echo(f"{gid}: {runner.gate_states.get(gid) or ('passed' if passed else 'failed')} — {reason}")
    if not passed:
        raise typer.Exit(1)


@app.command()
def reset(sid: str, env: EnvOpt = "local",
          yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False) -> None:
    """Forget a session's runs (the history keeps a 'reset' event; nothing is deleted).

    A session that is being run is not reset (exit 3): forgetting it mid-run would orphan its evidence.
    """
    plan = _plan()
    s = plan.session(sid)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"resetting {s.id} needs confirmation", hint="pass --yes")
        typer.confirm(f"forget every run of {s.id} on {env}?", abort=True)
    _store(env).reset(s.id)
    typer.echo(f"{s.id} reset on {env}: it is now {_board(env)[1].session(s.id).status}")


def main() -> None:
    """Entry point: FinksError → one line on stderr and its exit code."""
    try:
        from core.envfile import load_env_file

        load_env_file()
        app(prog_name="finks")
    except FinksError as exc:
        typer.echo(f"finks: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("finks: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
