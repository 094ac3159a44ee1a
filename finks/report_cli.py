"""`finks report`: the thin shell that gathers the evidence and writes the page.

The page itself is :func:`finks.report.render_report`; this module only finds
the environments that have a history, the handoff files and the primes, and
writes ``index.html`` (to a temporary name first, so a reader never sees half
of it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from core.errors import UsageError


def _href(target: Path, base: Path) -> str:
    """A link from the page's directory to a file: relative, so the tree can move as a whole."""
    return Path(os.path.relpath(target.resolve(), base.resolve())).as_posix()


def report(
    ctx: typer.Context,
    env: Annotated[str, typer.Option("--env", "-e", help="local | dev | staging | prod", envvar="FINKS_ENV")] = "local",
    out: Annotated[Path | None, typer.Option("--out", help="directory for index.html (default: <state dir>/report)")]
    = None,
    open_: Annotated[bool, typer.Option("--open", help="open the page in the default browser")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output on stdout")] = False,
) -> None:
    """Write the plan as one self-contained HTML page: graph by week, evidence, gates, runs."""
    from core.clock import now_iso
    from core.environments import ENVIRONMENTS
    from core.paths import repo_root, state_dir
    from finks.handoff import handoff_path, render_prime
    from finks.loader import load_plan
    from finks.report import EnvView, render_report
    from finks.state import StateStore
    from finks.status import StatusBoard

    if env not in ENVIRONMENTS:
        raise UsageError(f"unknown environment {env!r}", hint=f"use one of {', '.join(ENVIRONMENTS)}")
    sessions = ctx.find_root().params.get("sessions")
    plan = load_plan(sessions)
    root, state = repo_root(), state_dir()
    directory = (out or state / "report").resolve()
    directory.mkdir(parents=True, exist_ok=True)
    recorded = [e for e in ENVIRONMENTS if e != env and StateStore(state, e).path.exists()]
    views = []
    for name in (env, *recorded):
        store = StateStore(state, name)
        links = {sid: _href(path, directory) for sid in plan.sessions
                 if (path := handoff_path(root, name, plan, sid)).is_file()}
        views.append(EnvView(name, StatusBoard(plan, store, root), links))
    primary = StateStore(state, env)
    primes = {sid: render_prime(plan, env, root, primary, sid) for sid in plan.sessions}
    sources = {sid: _href(path, directory) for sid, path in plan.files.items() if sid in plan.sessions}
    page = render_report(plan, views, primes=primes, sources=sources, generated_at=now_iso())
    target = directory / "index.html"
    tmp = target.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(target)
    if as_json:
        from finks.reporters import envelope

        typer.echo(envelope("report", {"env": env, "path": str(target),
                                       "environments": [v.env for v in views if v.has_history]}))
    else:
        typer.echo(str(target))
    if open_:
        typer.launch(target.as_uri())
