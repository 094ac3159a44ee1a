"""The click group behind `finks`: one-line errors, and platform commands loaded by name.

The platform's commands live in their own packages (`finks.devstack.cli`,
`connectors.fmp.cli`, `jobs.cli`, `flows.cli`, `infra.cli`, `api.cli`). They
import typer only at module level; still, building 30 click commands on every
`finks status` costs time, so they are resolved lazily by name.
"""

from __future__ import annotations

import importlib

import typer
import typer.core

from core.errors import FinksError


class FinksGroup(typer.core.TyperGroup):
    """Turns a FinksError into one line on stderr and its exit code (CliRunner included)."""

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except FinksError as exc:
            typer.echo(f"finks: error: {exc}", err=True)
            ctx.exit(exc.exit_code)


_LAZY: dict[str, tuple[str, str, str]] = {
    "dev": ("finks.devstack.cli", "app", "Local stack: Prefect server, AWS emulator, lake (S1)"),
    "config": ("finks.devstack.cli", "config_app", "Effective settings, secrets redacted"),
    "ingest": ("connectors.fmp.cli", "ingest", "Ingest FMP data for a date into bronze (S15)"),
    "fmp-sim": ("connectors.fmp.cli", "fmp_sim", "Run the FMP-compatible simulator"),
    "transform": ("jobs.cli", "transform", "bronze→silver for a date (DuckDB or Spark)"),
    "testdata": ("jobs.cli", "testdata", "Write realistic bronze with injected defects (S17)"),
    "dbt": ("jobs.cli", "dbt_app", "dbt build | test | docs with write-audit-publish"),
    "pipeline": ("flows.cli", "pipeline_app", "The daily pipeline on Prefect (S16)"),
    "backfill": ("flows.cli", "backfill", "Backfill a date range (S18)"),
    "deploy": ("flows.cli", "deploy", "Deployments and schedules on the Prefect server"),
    "blocks": ("flows.cli", "blocks_app", "Prefect blocks as code (S10)"),
    "infra": ("infra.cli", "app", "Pulumi program: dry plan, policy checks, preview/up"),
    "api": ("api.cli", "app", "The read API (S19)"),
    "mcp": ("finks.mcp_cli", "mcp", "Serve finks to coding agents over MCP (stdio)"),
    "graph": ("finks.graph_cli", "graph", "The dependency graph: mermaid, dot, json; drawn as svg or png"),
    "claim": ("finks.claims_cli", "claim", "Say you are on a session, with a lease"),
    "release": ("finks.claims_cli", "release", "Give up your claim on a session"),
    "report": ("finks.report_cli", "report", "The plan as one HTML page: graph, evidence, gates, runs"),
}


def _load_lazy(name: str):  # type: ignore[no-untyped-def]
    import typer.main

    module, attr, help_text = _LAZY[name]
    # One help style (plain) and completion offered once, by the top-level group.
    holder = typer.Typer(rich_markup_mode=None, add_completion=False)
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        error = exc

        def unavailable(ctx: typer.Context) -> None:
            raise FinksError(f"'finks {name}' is unavailable: {error}", hint="run 'make install' for every extra")

        holder.command(name, help=f"{help_text} (unavailable: {error})",
                       context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(unavailable)
        return typer.main.get_command(holder)
    if isinstance(obj, typer.Typer):
        if obj.info.help is None:
            obj.info.help = help_text
        # The same plain help for every group, whatever its module asked for: rich's
        # boxes and `<bool>` after flags are not finks' style.
        obj.rich_markup_mode = None
        group = typer.main.get_group(obj)
        group.name = name
        return group
    holder.command(name)(obj)
    command = typer.main.get_command(holder)
    command.name = name
    return command


class LazyGroup(FinksGroup):
    def list_commands(self, ctx):  # type: ignore[no-untyped-def]
        return [*super().list_commands(ctx), *_LAZY]

    def get_command(self, ctx, name):  # type: ignore[no-untyped-def]
        command = super().get_command(ctx, name)
        if command is None and name in _LAZY:
            command = _load_lazy(name)
        return command

    def format_commands(self, ctx, formatter):  # type: ignore[no-untyped-def]
        # Help lists the lazy commands from their table: no imports for --help.
        own = {n: super(LazyGroup, self).get_command(ctx, n) for n in super().list_commands(ctx)}
        rows = [(n, command.get_short_help_str(60)) for n, command in own.items() if command is not None]
        rows += [(n, help_text) for n, (_, _, help_text) in _LAZY.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)
