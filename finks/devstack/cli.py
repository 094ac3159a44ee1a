"""`finks dev …` and `finks config show`: a thin typer shell over finks.devstack.

Only typer and the standard library at import time: the stack modules (psutil,
boto3, asyncpg) load inside the commands.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any

import typer

from core import lake
from core.errors import UsageError

if TYPE_CHECKING:
    from core.settings import Settings
    from finks.devstack.stack import StackStatus

app = typer.Typer(help="Run the local stack: Prefect server, moto (AWS emulator), worker.",
                  no_args_is_help=True, rich_markup_mode=None, add_completion=False)
config_app = typer.Typer(help="Inspect the effective settings.", no_args_is_help=True, rich_markup_mode=None, add_completion=False)



@config_app.callback()
def _config() -> None:
    """Inspect the effective settings."""


EnvOpt = typer.Option(None, "--env", "-e", help="local|dev|staging|prod (default: FINKS_ENV or local)")
JsonOpt = typer.Option(False, "--json", help="Machine-readable output on stdout.")


def _settings(env: str | None) -> Settings:
    from core.settings import load_settings

    return load_settings(env=env)


def _emit(kind: str, data: dict[str, Any]) -> None:
    from core.jsondoc import document

    typer.echo(document(kind, {k: v for k, v in data.items() if k != "schema"}))


def _fmt_uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{sec:02d}s"


def _table(st: StackStatus) -> str:
    rows = [("SERVICE", "STATE", "HEALTH", "URL", "PID", "UPTIME")]
    for s in st.services.values():
        label = f"{s.name} ({st.prefect_backend})" if s.name == "prefect" else s.name
        rows.append((label, s.action or s.state, "ok" if s.healthy else "-", s.url or "-",
                     str(s.pid or "-"), _fmt_uptime(s.uptime_s)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.append(f"state: {st.state_dir}   emulator: in memory (re-bootstrapped by 'finks dev up')")
    return "\n".join(lines)


@app.command()
def up(
    service: list[str] = typer.Option([], "--service", "-s",
                                      help="moto, prefect or worker (repeatable; default moto+prefect)."),
    worker: bool = typer.Option(False, "--worker", help="Also start the Prefect process worker."),
    env: str | None = EnvOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Start the stack in the background (idempotent) and bootstrap the emulator."""
    from finks.devstack.stack import up as stack_up

    settings = _settings(env)
    names = list(service) + (["worker"] if worker else [])
    if not as_json:
        typer.echo(f"starting local stack under {settings.dev_dir} …", err=True)
    st = stack_up(settings, names or None)
    if as_json:
        _emit("dev-status", st.to_dict())
        return
    typer.echo(_table(st))
    created = st.bootstrap.get("created", [])
    typer.echo(f"bootstrap: {len(lake.buckets(settings))} buckets, secret {settings.fmp_secret_name}, "
               f"glue database {settings.glue_database}"
               + (f" ({len(created)} created)" if created else ""))
    typer.echo(f"up in {st.elapsed_s:.1f}s")


@app.command()
def bootstrap(env: str | None = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Create the data-plane resources in the emulator at FINKS_S3_ENDPOINT_URL (e.g. LocalStack)."""
    from finks.devstack.bootstrap import bootstrap_data_plane as run_bootstrap

    report = run_bootstrap(_settings(env))
    if as_json:
        _emit("dev-bootstrap", report)
        return
    typer.echo(f"buckets: {', '.join(report['buckets'].values())}")
    typer.echo(f"secret: {report['secret']}   glue database: {report['glue_database']}")
    for item in report["created"]:
        typer.echo(f"created {item}")


@app.command()
def down(env: str | None = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Stop the processes `up` started (by PID) and wait for them to exit."""
    from finks.devstack.stack import down as stack_down

    outcome = stack_down(_settings(env))
    if as_json:
        _emit("dev-down", {"services": outcome})
        return
    for name, what in outcome.items():
        typer.echo(f"{name}: {what}")


@app.command()
def status(env: str | None = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Each service: state, health, URL, PID, uptime; the Prefect database backend."""
    from finks.devstack.stack import status as stack_status

    st = stack_status(_settings(env))
    if as_json:
        _emit("dev-status", st.to_dict())
    else:
        typer.echo(_table(st))


@app.command()
def reset(
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    env: str | None = EnvOpt,
) -> None:
    """Stop the stack and wipe local state: Prefect history, logs, the local lake."""
    from finks.devstack.stack import reset as stack_reset

    settings = _settings(env)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("reset wipes Prefect history and the local lake",
                             hint="confirm with 'finks dev reset --yes'")
        typer.confirm(f"Wipe Prefect history and the lake under {settings.home}?", abort=True)
    removed = stack_reset(settings)
    for item in removed:
        typer.echo(f"removed {item}")
    if not removed:
        typer.echo("nothing to remove")


@app.command()
def logs(
    service: str = typer.Argument(..., help="moto, prefect or worker"),
    lines: int = typer.Option(50, "--lines", "-n", help="How many lines from the end."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines."),
    env: str | None = EnvOpt,
) -> None:
    """Print the end of a service's log (.finks/dev/SERVICE.log)."""
    from finks.devstack.stack import log_path
    from finks.devstack.stack import logs as stack_logs

    settings = _settings(env)
    typer.echo(stack_logs(settings, service, lines))
    if follow:
        path = log_path(settings, service)
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            try:
                while True:
                    chunk = fh.read()
                    if chunk:
                        typer.echo(chunk.decode(errors="replace"), nl=False)
                    else:
                        time.sleep(0.5)
            except KeyboardInterrupt:
                pass


@config_app.command("show")
def config_show(env: str | None = EnvOpt, as_json: bool = JsonOpt) -> None:
    """Print the effective settings (derived values included, secrets redacted)."""
    from core import lake
    from core.settings import variable_name

    settings = _settings(env)
    data = {**settings.redacted(), **lake.describe(settings)}
    if as_json:
        _emit("config", {"settings": data})
        return
    width = max(len(k) for k in data)
    for key in sorted(data):
        value = data[key]
        shown = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
        source = variable_name(key) if key in _fields() else "(derived)"
        typer.echo(f"{key.ljust(width)}  {shown}    # {source}")


def _fields() -> set[str]:
    from core.settings import Settings

    return set(Settings.model_fields)
