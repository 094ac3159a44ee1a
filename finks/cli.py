"""The `finks` command line: a thin shell over the core.

Exit codes: 0 ok · 1 checks failed or blocked · 2 usage or configuration
error · 3 internal error or state locked. Data goes to stdout, progress to
stderr. Heavy libraries are imported only by the commands that need them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from core.errors import FinksError, UsageError
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


class _Ctx:
    sessions: Path | None = None


_G = _Ctx()


@app.callback()
def _global(
    sessions: Annotated[
        Path | None, typer.Option("--sessions", envvar="FINKS_SESSIONS", help="load the plan from another directory")
    ] = None,
) -> None:
    _G.sessions = sessions


# ---- helpers ---------------------------------------------------------------
def _root() -> Path:
    from core.paths import repo_root

    return repo_root()


def _state_dir() -> Path:
    from core.paths import state_dir

    return state_dir()


def _check_env(env: str) -> str:
    from core.environments import ENVIRONMENTS

    if env not in ENVIRONMENTS:
        raise UsageError(f"unknown environment {env!r}", hint=f"use one of {', '.join(ENVIRONMENTS)}")
    return env


def _plan() -> Plan:
    from finks.loader import load_plan

    return load_plan(_G.sessions)


def _store(env: str) -> StateStore:
    from finks.state import StateStore

    return StateStore(_state_dir(), _check_env(env))


def _board(env: str) -> tuple[Plan, StatusBoard]:
    from finks.status import StatusBoard

    plan = _plan()
    return plan, StatusBoard(plan, _store(env), _root())


def _echo_json(kind: str, payload: dict[str, Any]) -> None:
    from finks.reporters import envelope

    typer.echo(envelope(kind, payload))


def _indicator(status: SessionState, tty: bool) -> str:
    from finks.status import INDICATOR

    return f"{INDICATOR.get(status, ' ')} {status.label}" if tty else status.label


# ---- read commands ---------------------------------------------------------
@app.command()
def status(env: EnvOpt = "local", as_json: JsonOpt = False) -> None:
    """Every session's derived status, why it is blocked, last run, estimate; gates below."""
    plan, board = _board(env)
    rows = board.all()
    if as_json:
        _echo_json("status", {
            "env": env,
            "sessions": [r.to_dict(plan.sessions[r.sid]) for r in rows],
            "gates": [board.gate(g).to_dict() for g in plan.gates],
        })
        return
    from finks.reporters import paint, use_colour

    tty = sys.stdout.isatty()
    colour = use_colour(sys.stdout)
    typer.echo(f"finks status · env {env} · {len(rows)} sessions from {plan.directory}")
    for r in rows:
        s = plan.sessions[r.sid]
        word = _indicator(r.status, tty)
        last = f"last run {r.last_run.started_at} ({r.last_run.outcome or 'unfinished'})" if r.last_run else ""
        detail = r.reason or last
        typer.echo(f"  {r.sid:<4} {paint(word.ljust(14), r.status, colour)} w{s.week} {str(s.estimate_hours):>6}  "
                   f"{s.title[:44]:<44}  {detail}")
    if plan.gates:
        typer.echo("gates" + ("" if plan.strict_gates else " (advisory: strict: false)"))
        for gid in plan.gates:
            g = board.gate(gid)
            typer.echo(f"  {gid:<6} {paint(g.status.ljust(10), 'passed' if g.passed else 'blocked', colour)} "
                       f"{plan.gates[gid].title} — {g.reason}")


@app.command("next")
def next_(env: EnvOpt = "local", as_json: JsonOpt = False) -> None:
    """The sessions ready to run, critical path first, with the command for each."""
    from finks.graph import schedule

    plan, board = _board(env)
    sched = schedule(plan, "high")
    ready = board.next_sessions(sched)
    if as_json:
        _echo_json("next", {"env": env, "sessions": [
            {"id": r.sid, "status": r.status, "slack_hours": sched.slack[r.sid],
             "command": f"finks run {r.sid} --env {env}"} for r in ready]})
        return
    if not ready:
        if board.all_complete():
            typer.echo(f"every session is complete on {env}: nothing to do")
        else:
            typer.echo("nothing is ready: run 'finks status' to see what blocks the plan")
        return
    for r in ready:
        slack = sched.slack[r.sid]
        tag = "critical" if slack == 0 else f"slack {slack:g}h"
        typer.echo(f"{r.sid:<4} {plan.sessions[r.sid].title:<44} {r.status:<11} {tag:<12} "
                   f"finks run {r.sid} --env {env}")


@app.command("plan")
def plan_(as_json: JsonOpt = False) -> None:
    """Parallel waves, the critical path by estimates (low and high), slack, total duration."""
    from finks.graph import schedule, sum_of_estimates, waves

    plan = _plan()
    low, high = schedule(plan, "low"), schedule(plan, "high")
    wave_list = waves(plan)
    total_low, total_high = sum_of_estimates(plan, "low"), sum_of_estimates(plan, "high")
    if as_json:
        _echo_json("plan", {
            "waves": wave_list,
            "critical_path": {"low": low.critical_path, "high": high.critical_path},
            "total_hours": {"low": low.total_hours, "high": high.total_hours},
            "slack_hours": {s: {"low": low.slack[s], "high": high.slack[s]} for s in plan.sessions},
            "sum_of_estimates": {"low": total_low, "high": total_high},
        })
        return
    for i, wave in enumerate(wave_list, 1):
        typer.echo(f"wave {i}: " + "  ".join(f"{s}({plan.sessions[s].estimate_hours})" for s in wave))
    for sched in (low, high):
        typer.echo(f"critical path ({sched.basis}, {sched.total_hours:g}h): " + " -> ".join(sched.critical_path))
    typer.echo("slack (low/high hours): " + "  ".join(f"{s}={low.slack[s]:g}/{high.slack[s]:g}" for s in plan.sessions))
    typer.echo(f"total: {low.total_hours:g}-{high.total_hours:g}h elapsed with unlimited parallelism; "
               f"{total_low:g}-{total_high:g}h of work in sequence")


@app.command()
def graph(fmt: Annotated[str, typer.Option("--format", "-f", help="mermaid | dot | json")] = "mermaid") -> None:
    """The dependency graph as Mermaid, Graphviz dot or JSON."""
    from finks.graph import to_data, to_dot, to_mermaid

    plan = _plan()
    if fmt == "mermaid":
        typer.echo(to_mermaid(plan), nl=False)
    elif fmt == "dot":
        typer.echo(to_dot(plan), nl=False)
    elif fmt == "json":
        _echo_json("graph", to_data(plan))
    else:
        raise UsageError(f"unknown format {fmt!r}", hint="use mermaid, dot or json")


@app.command()
def show(sid: str, env: EnvOpt = "local", as_json: JsonOpt = False) -> None:
    """Everything about one session."""
    plan, board = _board(env)
    s = plan.session(sid)
    st = board.session(s.id)
    if as_json:
        _echo_json("session", {"session": s.model_dump(mode="json"), "status": st.to_dict(s),
                               "file": str(plan.files[s.id])})
        return
    typer.echo(f"{s.id}: {s.title}  [{st.status}{': ' + st.reason if st.reason else ''}]")
    typer.echo(f"week {s.week} · area {s.area} · estimate {s.estimate_hours} · depends on "
               f"{', '.join(s.depends_on) or 'nothing'}{' · optional' if s.optional else ''}")
    typer.echo(f"defined in {plan.files[s.id]}")
    if s.context_prime:
        typer.echo("\ncontext prime:\n  " + s.context_prime.strip().replace("\n", "\n  "))
    typer.echo("\ntasks:")
    for t in s.tasks:
        act = f"  [action: {t.action.python or t.action.shell}]" if t.action else ""
        typer.echo(f"  - {t.title}{f' ({t.minutes} min)' if t.minutes else ''}{act}")
    typer.echo("\nsuccess criteria:")
    for c in s.criteria:
        typer.echo(f"  - {c.text}")
        for chk in c.checks:
            typer.echo(f"      {chk.id}: {chk.kind} {chk.target} (timeout {chk.timeout:g}s, envs {','.join(chk.envs)})")
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
        _echo_json("why", {"env": env, **answer.to_dict()})
        return
    for link in answer.chain:
        indent = "  " * link.depth
        typer.echo(indent + f"{link.id}: {link.status}" + (f" — {link.reason}" if link.reason else ""))
        for ev in link.evidence or ():
            typer.echo(indent + f"    {ev.check} {ev.outcome}: {ev.message}")
            for ln in ev.excerpt.strip().splitlines()[-5:]:
                typer.echo(indent + "      | " + ln)
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
        _echo_json("handoff", {"env": env, "session": s.id, "path": str(handoff_path(_root(), env, plan, s.id)),
                               "markdown": text})
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
        _echo_json("prime", {"env": env, "session": s.id, "markdown": text})
        return
    typer.echo(text, nl=False)


# ---- commands that run things ----------------------------------------------
def _report_summary(summary: RunSummary, as_json: bool) -> None:
    if as_json:
        _echo_json("run", summary.to_dict())
    else:
        c = summary.to_dict()["counts"]
        parts = [f"{c['passed']} passed", f"{c['failed']} failed", f"{c['skipped_upstream']} skipped (upstream did not pass)"]
        if c["blocked"]:
            parts.append(f"{c['blocked']} blocked")
        if c["up_to_date"]:
            parts.append(f"{c['up_to_date']} already complete")
        typer.echo(", ".join(parts))
        for sid, reason in summary.reasons.items():
            typer.echo(f"  {sid}: {reason}", err=True)
    if not summary.ok:
        raise typer.Exit(1)


def _runner(env: str, jobs: int, as_json: bool, verbose: bool = False) -> Runner:
    from finks.reporters import QuietReporter, TextReporter
    from finks.runner import Runner

    reporter: Reporter = QuietReporter() if as_json else TextReporter(verbose=verbose)
    return Runner(_plan(), _check_env(env), _root(), _state_dir(), reporter, jobs=jobs)


@app.command()
def run(
    selector: Annotated[str | None, typer.Argument(help="s8, +s8, s8+, week3, area:NAME, lists (s1,s2)")] = None,
    env: EnvOpt = "local",
    all_: Annotated[bool, typer.Option("--all", help="the whole plan (sessions not yet complete)")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would run")] = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, max=16, help="sessions run in parallel")] = 1,
    force: Annotated[bool, typer.Option("--force", help="re-run sessions that are already complete")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="show output excerpts of failing checks")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run sessions: their task actions, then their checks; record evidence; write handoffs."""
    from finks.graph import resolve, whole_plan

    runner = _runner(env, jobs, as_json, verbose)
    if all_ == bool(selector):
        raise UsageError("give a selector or --all (not both)", hint="e.g. 'finks run s8' or 'finks run --all'")
    selection = whole_plan(runner.plan) if all_ else resolve(runner.plan, selector or "")
    summary = runner.run(selection, force=force, dry_run=dry_run)
    if dry_run and not as_json:
        for sid, outcome in summary.results.items():
            typer.echo(f"{sid:<4} {outcome:<11} {runner.plan.sessions[sid].title}  {summary.reasons.get(sid, '')}")
        return
    _report_summary(summary, as_json)


@app.command()
def retry(env: EnvOpt = "local", jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, max=16)] = 1,
          as_json: JsonOpt = False) -> None:
    """Re-run what failed or was skipped in the last run."""
    from finks.graph import named

    again = _store(env).history().to_retry()
    if again is None:
        raise UsageError(f"no earlier run recorded for env {env!r}", hint="use 'finks run SELECTOR'")
    if not again:
        typer.echo("the last run had no failures: nothing to retry")
        return
    runner = _runner(env, jobs, as_json)
    summary = runner.run(named(runner.plan, again))
    _report_summary(summary, as_json)


@app.command()
def gate(gate_id: str, env: EnvOpt = "local", as_json: JsonOpt = False) -> None:
    """Evaluate a weekly gate (its sessions complete, its own checks) and record it."""
    runner = _runner(env, 1, as_json)
    gid = runner.plan.gate(gate_id).id
    passed, reason = runner.gate(gid)
    if as_json:
        _echo_json("gate", {"env": env, "gate": gid, "passed": passed, "reason": reason})
    else:
        typer.echo(f"{gid}: {'passed' if passed else 'failed'} — {reason}")
    if not passed:
        raise typer.Exit(1)


@app.command()
def reset(sid: str, env: EnvOpt = "local",
          yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False) -> None:
    """Forget a session's runs (the history keeps a 'reset' event; nothing is deleted)."""
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
