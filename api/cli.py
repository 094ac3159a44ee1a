"""``finks api``: serve the read API, export its OpenAPI document.

Imports stay light: uvicorn, FastAPI and DuckDB load inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="The read API over gold (FastAPI).", no_args_is_help=True, rich_markup_mode=None, add_completion=False)


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Interface to bind; non-loopback needs FINKS_API_KEY")
    ] = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option(help="Port (default: settings.api_port, FINKS_API_PORT)")
    ] = None,
    env: Annotated[str, typer.Option("--env", "-e", help="Environment whose gold to serve")] = "local",
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Serve the API with uvicorn."""
    from api.security import check_bind
    from core.settings import load_settings

    settings = load_settings(env=env)
    check_bind(host, settings)
    import uvicorn

    from api.app import create_app

    uvicorn.run(
        create_app(settings), host=host, port=port or settings.api_port, log_level=log_level
    )


@app.command()
def openapi(
    out: Annotated[
        Path | None, typer.Option(help="Where to write (default docs/api/openapi.json)")
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Only verify the file is up to date (exit 1 if not)")
    ] = False,
) -> None:
    """Write the OpenAPI document generated from the app."""
    from api import openapi as spec
    from core.settings import repo_root

    root = repo_root()
    if check:
        if not spec.is_current(root, out):
            typer.echo(f"{out or spec.SPEC_PATH} is out of date; run 'finks api openapi'", err=True)
            raise typer.Exit(1)
        typer.echo(f"{out or spec.SPEC_PATH} is up to date")
        return
    typer.echo(str(spec.export(root, out)))


def main() -> None:
    """Standalone entry (python -m api.cli): deliberate errors as one line, like finks."""
    from core.errors import FinksError

    try:
        app()
    except FinksError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(exc.exit_code) from None


if __name__ == "__main__":
    main()
