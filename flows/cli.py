"""Pipeline commands: `finks pipeline run`, `finks backfill`, `finks deploy`, `finks blocks apply`.

Imports stay light: Prefect, the connector and the engines load inside the
commands. Each command prints per-step outcomes on stdout (or one JSON
document with --json) and exits 0 when everything succeeded, 1 when a step
failed (FinksError). While a run lasts, its progress is drawn on stderr and
Prefect's and dbt's logs go to the run's log file (and to stderr with -v):
see core.logsetup.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from core.settings import Settings

pipeline_app = typer.Typer(help="Run the daily pipeline.", no_args_is_help=True)
blocks_app = typer.Typer(help="Prefect blocks as code (S3 zones, AWS credentials, ECS task, FMP key).",
                         no_args_is_help=True)

EnvOpt = Annotated[str | None, typer.Option("--env", "-e", help="local, dev, staging or prod.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's and dbt's logs on stderr too.")]


def _settings(env: str | None) -> Settings:
    """The command's settings, built once; Prefect pointed at the environment's server."""
    from core.settings import load_settings
    from flows.common import use_prefect_server

    settings = load_settings(env=env)
    api = use_prefect_server(settings)
    _require_server(api)
    return settings


def _require_server(api: str) -> None:
    """Fail in one line instead of a Prefect traceback when the server is down."""
    import httpx

    from core.errors import ServiceError

    try:
        httpx.get(f"{api}/health", timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        raise ServiceError(f"Prefect server not answering at {api} ({type(exc).__name__})",
                           hint="start it with 'finks dev up' (or set PREFECT_API_URL)") from None


def _print_steps(title: str, steps: list[dict[str, Any]]) -> None:
    typer.echo(title)
    for s in steps:
        secs = f" ({s['seconds']:.1f}s)" if s.get("seconds") else ""
        typer.echo(f"  {s['step']:<15} {s['status']:<8}{secs}  {s.get('detail', '')}".rstrip())


@pipeline_app.command("run")
def pipeline_run(
    date: Annotated[str | None, typer.Option(help="Trading date YYYY-MM-DD (default: previous trading day).")] = None,
    force: Annotated[bool, typer.Option(help="Re-ingest even if bronze is complete.")] = False,
    runner: Annotated[str, typer.Option(help="auto (by environment), local, or aws (ECS + Glue).")] = "auto",
    wait: Annotated[float, typer.Option(help="Seconds to wait for another run of the same date.")] = 0,
    env: EnvOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Ingest → bronze→silver → dbt build with tests → publish gold, for one date."""
    from core.jsondoc import document
    from core.logsetup import command_console
    from flows.calendar import parse_date

    day = parse_date(date).isoformat()
    settings = _settings(env)
    from flows.master_flow import STEPS, PipelineFailed, daily_pipeline

    failed: PipelineFailed | None = None
    with command_console(settings.home, "pipeline-run", verbose=verbose, prefect=True) as display, \
            _watch_steps(display, STEPS):
        display.start(f"pipeline {day}", total=len(STEPS), unit="steps")
        display.info(STEPS[0])
        try:
            result = daily_pipeline(date=day, force=force, runner=runner, lock_wait_s=wait, settings=settings)
        except PipelineFailed as exc:
            failed = exc
    if failed is not None:
        if as_json:
            typer.echo(document("pipeline-run", {"date": day, "status": "failed", "error": failed.message,
                                                 "steps": failed.steps}))
        else:
            _print_steps(f"pipeline {day}: FAILED", failed.steps)
        raise failed
    if as_json:
        typer.echo(document("pipeline-run", {k: v for k, v in result.items() if k != "results"}))
    else:
        _print_steps(f"pipeline {day}: ok in {result['seconds']:.1f}s (run {result['run_id']})", result["steps"])


class _StepWatcher(logging.Handler):
    """Advances the display as the pipeline's sub-flows end.

    The master flow reports its steps only in its result; Prefect logs the end
    of every flow run ("Finished in state Completed()") with the flow's name,
    and each step is a sub-flow of the step's name.
    """

    def __init__(self, display: Any, steps: tuple[str, ...]) -> None:
        super().__init__(logging.INFO)
        self.display, self.steps = display, steps

    def emit(self, record: logging.LogRecord) -> None:
        name = getattr(record, "flow_name", None)
        message = record.getMessage()
        if name not in self.steps or not message.startswith("Finished in state "):
            return
        state = message.removeprefix("Finished in state ").split("(", 1)[0]
        self.display.advance(name, state.lower())
        later = self.steps[self.steps.index(name) + 1:]
        self.display.info(later[0] if later and state == "Completed" else "")


@contextlib.contextmanager
def _watch_steps(display: Any, steps: tuple[str, ...]) -> Iterator[None]:
    flow_runs, handler = logging.getLogger("prefect.flow_runs"), _StepWatcher(display, steps)
    flow_runs.addHandler(handler)
    try:
        yield
    finally:
        flow_runs.removeHandler(handler)


def backfill(
    start: Annotated[str, typer.Option(help="First date, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option(help="Last date, YYYY-MM-DD (inclusive).")],
    concurrency: Annotated[int, typer.Option(min=1, max=32, help="Dates processed at once.")] = 4,
    force: Annotated[bool, typer.Option(help="Redo dates that are already complete.")] = False,
    bulk: Annotated[bool | None, typer.Option("--bulk/--no-bulk", help="Bulk EOD endpoint (default: for ranges > 5 days).")] = None,
    env: EnvOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Backfill a date range in parallel; completed dates are skipped, so a rerun resumes."""
    from core.logsetup import command_console
    from flows.calendar import parse_date

    first, last = parse_date(start, what="--start"), parse_date(end, what="--end")
    settings = _settings(env)
    from flows.backfill import BackfillIncomplete, backfill_flow

    incomplete: BackfillIncomplete | None = None
    with command_console(settings.home, "backfill", verbose=verbose, prefect=True):
        try:
            report = backfill_flow(start=first.isoformat(), end=last.isoformat(), concurrency=concurrency,
                                   force=force, bulk=bulk, settings=settings)
        except BackfillIncomplete as exc:
            incomplete, report = exc, exc.report
    _print_backfill(report, as_json)
    if incomplete is not None:
        raise incomplete


def _print_backfill(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        from core.jsondoc import document

        typer.echo(document("backfill", report))
        return
    typer.echo(f"backfill {report['start']}..{report['end']}: {report['dates']} trading days, {report['ran']} ran, "
               f"{report['skipped']} skipped, {len(report['failed'])} failed, gold {report['gold']} "
               f"({report['seconds']:.1f}s, concurrency {report['concurrency']})")
    for r in report["results"]:
        typer.echo(f"  {r['date']}  {r['status']:<8} {r.get('error', '')}".rstrip())


def deploy(
    name: Annotated[list[str] | None, typer.Option("--name", help="Only these deployments (repeatable).")] = None,
    env: EnvOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create or update the deployments of prefect.yaml (daily at 02:00 UTC) on the Prefect server."""
    settings = _settings(env)
    from flows.deploy import apply_deployments

    report = apply_deployments(settings, name)
    if as_json:
        from core.jsondoc import document

        typer.echo(document("deploy", {"deployments": report}))
        return
    for key, info in report.items():
        extra = f"  schedule {info['schedule']}" if info.get("schedule") else ""
        typer.echo(f"  {key:<32} {info.get('status') or 'applied'}  pool {info.get('pool') or info.get('name')}{extra}")


@blocks_app.command("apply")
def blocks_apply(env: EnvOpt = None, as_json: JsonOpt = False) -> None:
    """Create or update the blocks of this environment; unchanged ones are left alone."""
    settings = _settings(env)
    from flows.blocks import apply_blocks

    outcome = apply_blocks(settings)
    if as_json:
        from core.jsondoc import document

        typer.echo(document("blocks", {"blocks": outcome}))
        return
    for name, status in outcome.items():
        typer.echo(f"  {name:<28} {status}")


def register(app: typer.Typer) -> None:
    """Mount the commands on the finks CLI."""
    app.add_typer(pipeline_app, name="pipeline")
    app.add_typer(blocks_app, name="blocks")
    app.command("backfill")(backfill)
    app.command("deploy")(deploy)


__all__ = ["backfill", "blocks_app", "deploy", "pipeline_app", "register"]
