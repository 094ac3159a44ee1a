"""`finks graph`: the dependency graph as Mermaid, dot, JSON, or drawn by Graphviz.

Loaded lazily by name (finks/cligroup.py): drawing needs graphviz, which
`finks status` never imports.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from core.errors import UsageError
from finks.cliopts import EnvOpt, echo_json, workspace


def graph(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", "-f", help="mermaid | dot | json | svg | png")] = "mermaid",
    env: EnvOpt = "local",
    out: Annotated[Path | None, typer.Option("--out", help="svg, png: write to this file")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the JSON graph document (the same as --format json)")] = False,
) -> None:
    """The dependency graph as Mermaid, Graphviz dot or JSON; drawn as svg or png with --env's statuses."""
    from finks.graph import to_data, to_dot, to_mermaid

    if as_json:
        if fmt not in ("mermaid", "json"):  # mermaid: the default, not asked for
            raise UsageError(f"--json is --format json, not {fmt!r}", hint="give one of them")
        fmt = "json"
    if fmt in ("svg", "png"):
        from finks.diagram import draw
        from finks.status import StatusBoard

        w = workspace(ctx)
        plan = w.plan()
        board = StatusBoard(plan, w.store(env), w.root())
        data = draw(plan, fmt, board)
        if out is not None:
            out.write_bytes(data)
        elif fmt == "png" and sys.stdout.isatty():
            raise UsageError("png is binary: not writing it to a terminal", hint="use --out FILE or redirect stdout")
        else:
            typer.echo(data, nl=False)
        return
    plan = workspace(ctx).plan()
    if fmt == "mermaid":
        typer.echo(to_mermaid(plan), nl=False)
    elif fmt == "dot":
        typer.echo(to_dot(plan), nl=False)
    elif fmt == "json":
        echo_json("graph", to_data(plan))
    else:
        raise UsageError(f"unknown format {fmt!r}", hint="use mermaid, dot, json, svg or png")
