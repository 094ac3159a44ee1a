"""`finks transform`, `finks dbt …` and `finks testdata`: thin typer adapters.

Mount in finks/cli.py:
    app.command("transform")(jobs.cli.transform)
    app.add_typer(jobs.cli.dbt_app, name="dbt")
    app.command("testdata")(jobs.cli.testdata)

Only typer and the light core package are imported at module level; DuckDB,
Spark and dbt load inside the commands. Data goes to stdout (one JSON document
with --json); dbt's own log is relayed to stderr, uncoloured (to the run's log
file only with --json): see core.logsetup.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from core.settings import Settings

dbt_app = typer.Typer(help="Build, test and document the dbt project (silver → gold).",
                      no_args_is_help=True, rich_markup_mode=None, add_completion=False)


EnvOpt = typer.Option(None, "--env", "-e", envvar="FINKS_ENV", help="local | dev | staging | prod")


def _settings(ctx: typer.Context | None, env: str | None = None) -> Settings:
    """The CLI's settings when the root command made them, else from --env/FINKS_ENV."""
    obj: Any = ctx.find_root().obj if ctx is not None else None
    found = getattr(obj, "settings", None) or (obj.get("settings") if isinstance(obj, dict) else None)
    if found is not None and env is None:
        return found
    from core.settings import load_settings

    return load_settings(env=env or os.environ.get("FINKS_ENV"))


def _emit(kind: str, data: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    if as_json:
        from core.jsondoc import document

        typer.echo(document(kind, data))
    else:
        for line in lines:
            typer.echo(line)


def transform(
    ctx: typer.Context,
    date: str = typer.Option(..., "--date", "-d", help="Trading date to transform (YYYY-MM-DD)."),
    engine: str | None = typer.Option(None, "--engine",
                                         help="duckdb (local default) or spark."),
    dataset: list[str] | None = typer.Option(None, "--dataset",
                                                help="quotes, profiles, eod_prices (repeatable; default all)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    env: str | None = EnvOpt,
) -> None:
    """Bronze → silver for one date: type, validate, deduplicate, quarantine rejects."""
    from jobs.bronze_to_silver import run

    if engine not in (None, "duckdb", "spark"):
        from core.errors import UsageError

        raise UsageError(f"unknown engine {engine!r}", hint="use --engine duckdb or --engine spark")
    result = run(_settings(ctx, env), date, dataset or None, engine=engine)
    lines = [f"{result.date} on {result.engine}:"]
    for d in result.datasets:
        if d.status == "no_bronze":
            lines.append(f"  {d.dataset:<11} no bronze for this date (nothing replaced)")
            continue
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(d.reasons.items())) or "none"
        lines.append(f"  {d.dataset:<11} read {d.rows_read}, wrote {d.rows_written}, "
                     f"deduplicated {d.deduplicated}, quarantined {d.quarantined} ({reasons})")
    _emit("transform", result.to_dict(), as_json, lines)
    if not result.ok:
        raise typer.Exit(1)


def _dbt(ctx: typer.Context, command: str, target: str | None, select: list[str] | None,
         as_json: bool, env: str | None) -> None:
    from core.logsetup import command_console
    from jobs.dbt import run_dbt

    settings = _settings(ctx, env)
    with command_console(settings.home, f"dbt-{command}", verbose=not as_json):
        result = run_dbt(settings, command, select=select or None, target=target, quiet=as_json)
    lines = []
    for node in result.nodes:
        lines.append(f"  {node.status:<8} {node.resource_type:<9} {node.name} ({node.seconds}s)")
    if result.failed_tests:
        lines.append("failed tests: " + ", ".join(result.failed_tests))
    if result.freshness:
        lines.append("freshness: " + ", ".join(f"{k}={v}" for k, v in result.freshness.items()))
    if result.quality:
        q = result.quality
        lines.append(f"quality: {q['tests_passed']}/{q['tests_run']} tests passed, "
                     f"score {q['quality_score']}")
    if result.publish_note:
        lines.append(result.publish_note)
    if result.error:
        lines.append(f"error: {result.error}")
    lines.append(f"dbt {command}: {'ok' if result.ok else 'FAILED'} (run {result.run_id}, "
                 f"logs in {result.run_dir}/logs)")
    _emit("dbt", result.to_dict(), as_json, lines)
    if not result.ok:
        raise typer.Exit(1)


TargetOpt = typer.Option(None, "--target", "-t", help="local (dbt-duckdb) or athena (dbt-athena).")
SelectOpt = typer.Option(None, "--select", "-s", help="dbt node selection (repeatable).")
JsonOpt = typer.Option(False, "--json", help="Print the result as JSON (dbt's own log is quieted).")


@dbt_app.command("build")
def dbt_build(ctx: typer.Context, target: str | None = TargetOpt,
              select: list[str] | None = SelectOpt, as_json: bool = JsonOpt,
             env: str | None = EnvOpt) -> None:
    """Seed, run and test; publish gold only if every test passes."""
    _dbt(ctx, "build", target, select, as_json, env)


@dbt_app.command("test")
def dbt_test(ctx: typer.Context, target: str | None = TargetOpt,
             select: list[str] | None = SelectOpt, as_json: bool = JsonOpt,
             env: str | None = EnvOpt) -> None:
    """Run the data and unit tests against the published warehouse."""
    _dbt(ctx, "test", target, select, as_json, env)


@dbt_app.command("docs")
def dbt_docs(ctx: typer.Context, target: str | None = TargetOpt, as_json: bool = JsonOpt,
             env: str | None = EnvOpt) -> None:
    """Generate the dbt documentation site (offline) under .finks/dbt/docs."""
    _dbt(ctx, "docs", target, None, as_json, env)


def testdata(
    ctx: typer.Context,
    symbols: int = typer.Option(10, "--symbols", help="How many symbols (known large caps first)."),
    days: int = typer.Option(5, "--days", help="How many trading days."),
    end: str = typer.Option(..., "--end", help="Last trading date (YYYY-MM-DD)."),
    clean: bool = typer.Option(False, "--clean", help="No injected defects."),
    seed: int = typer.Option(7, "--seed"),
    env: str | None = EnvOpt,
) -> None:
    """Write realistic bronze with injected defects (duplicates, nulls, restatements, …)."""
    from jobs.bronze_to_silver import check_date
    from jobs.testdata import generate_bronze, synthetic_symbols, trading_days

    gen = generate_bronze(_settings(ctx, env), synthetic_symbols(symbols), trading_days(check_date(end), days),
                          "none" if clean else "all", seed=seed)
    _emit("testdata", gen.summary(), True, [])
