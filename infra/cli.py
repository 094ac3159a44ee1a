"""`finks infra`: dry plan, policy check, preview and up.

Light at import time: pulumi and boto3 are imported by the commands.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from core.settings import Settings

app = typer.Typer(help="Infrastructure (Pulumi, AWS): dry plan, policy check, preview, up.", no_args_is_help=True, rich_markup_mode=None, add_completion=False)


EnvOption = typer.Option("dev", "--env", "-e", help="Stack: dev, staging or prod ('local' plans dev).")
ProgramOption = typer.Option(
    None, "--program", help="Plan another Pulumi program file with the stack's config (default: infra/__main__.py).",
    hidden=True,
)


def _settings(env: str) -> Settings:
    """The settings of the environment; `local` says which stack it plans instead."""
    from core.environments import ENVIRONMENTS, infra_stack
    from core.errors import UsageError
    from core.settings import load_settings

    if env not in ENVIRONMENTS:
        raise UsageError(f"unknown environment {env!r}", hint="use dev, staging or prod")
    if infra_stack(env) != env:
        typer.echo(f"{env} has no AWS stack: planning the {infra_stack(env)} stack", err=True)
    return load_settings(env=env)


def _plan(settings: Settings, program: Path | None) -> Any:
    from core.environments import infra_stack
    from infra.plan import plan_for, plan_program

    return plan_for(settings) if program is None else plan_program(program, infra_stack(settings.env), settings)


@app.command("plan")
def plan_cmd(
    env: str = EnvOption,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    program: Path | None = ProgramOption,
) -> None:
    """List every resource the stack would create (Pulumi mocks: no CLI, no cloud)."""
    result = _plan(_settings(env), program)
    stack = result.stack
    if as_json:
        from core.jsondoc import document

        typer.echo(document("infra-plan", result.to_dict()))
        return
    for r in result.custom:
        inputs = " ".join(f"{k}={v}" for k, v in sorted(r.key_inputs().items()))
        typer.echo(f"+ {r.type:<60} {r.name}  {inputs}".rstrip())
    typer.echo(f"{len(result.custom)} resources planned for stack {stack} (Pulumi mocks)", err=True)


@app.command("check")
def check_cmd(
    env: str = EnvOption,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    program: Path | None = ProgramOption,
) -> None:
    """Policy rules over the dry plan; exit 1 listing the violations."""
    from infra.policies import RULES, check

    result = _plan(_settings(env), program)
    stack = result.stack
    violations = check(result)
    if as_json:
        from core.jsondoc import document

        typer.echo(document("infra-check", {"stack": stack, "rules": list(RULES), "resources": len(result.custom),
                                            "violations": [v.to_dict() for v in violations]}))
    else:
        for v in violations:
            typer.echo(str(v))
        verdict = "clean" if not violations else f"{len(violations)} violation(s)"
        typer.echo(f"{len(RULES)} rules over {len(result.custom)} resources of stack {stack}: {verdict}", err=True)
    if violations:
        raise typer.Exit(1)


def _deploy(operation: str, env: str) -> None:
    from core.environments import infra_stack
    from infra import deploy

    stack = infra_stack(_settings(env).env)
    fn = deploy.preview if operation == "preview" else deploy.up

    def progress(line: str) -> None:
        sys.stderr.write(line)

    result = fn(stack, on_output=progress)
    typer.echo(json.dumps(result.to_dict(), indent=2, default=str))


@app.command("preview")
def preview_cmd(env: str = EnvOption) -> None:
    """`pulumi preview` of the stack (needs the Pulumi CLI and AWS credentials)."""
    _deploy("preview", env)


@app.command("up")
def up_cmd(
    env: str = EnvOption,
    yes: bool = typer.Option(False, "--yes", help="Confirm the deployment."),
) -> None:
    """`pulumi up` of the stack (needs the Pulumi CLI and AWS credentials)."""
    if not yes:
        from core.errors import UsageError

        raise UsageError(f"`finks infra up --env {env}` changes real AWS resources", hint="add --yes to confirm")
    _deploy("up", env)
