"""The options and helpers the lazily loaded orchestrator commands share
(`finks claim`, `release`, `graph`): the same words as finks/cli.py's."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from finks import payloads

EnvOpt = Annotated[str, typer.Option("--env", "-e", help="local | dev | staging | prod", envvar="FINKS_ENV")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output on stdout")]
OwnerOpt = Annotated[str | None, typer.Option("--owner", help="who is on it (default: FINKS_OWNER, else your user name)")]


def workspace(ctx: typer.Context) -> payloads.Workspace:
    workspace = payloads.Workspace()
    sessions = ctx.find_root().params.get("sessions")
    workspace.sessions = Path(sessions) if sessions else None
    return workspace


def echo_json(kind: str, payload: dict[str, Any]) -> None:
    from finks.reporters import envelope

    typer.echo(envelope(kind, payload))
