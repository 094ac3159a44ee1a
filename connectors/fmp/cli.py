"""``finks ingest`` and ``finks fmp-sim`` (also ``python -m connectors.fmp``).

Light at import time: typer and the standard library only; the connector,
httpx and boto3 load when a command runs. Data (the summary, or one JSON
document with --json) goes to stdout; progress goes to stderr, as a bar on a
terminal (symbols done of total, calls/min against the plan's limit) and not at
all otherwise: the summary is the dataset's one line.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

app = typer.Typer(help="FMP market data: ingest into bronze, or serve the simulator.", no_args_is_help=True, rich_markup_mode=None, add_completion=False)


def ingest(
    date: Annotated[str, typer.Option("--date", help="Trading date to ingest (YYYY-MM-DD).")],
    symbols: Annotated[str | None, typer.Option("--symbols", help="Tickers, comma-separated.")] = None,
    universe: Annotated[str | None, typer.Option("--universe", help="Named universe or a file of tickers.")] = None,
    dataset: Annotated[str, typer.Option("--dataset", help="quotes | profiles | eod.")] = "quotes",
    force: Annotated[bool, typer.Option("--force", help="Ingest again even if the date is already in bronze.")] = False,
    bulk: Annotated[bool, typer.Option("--bulk", help="eod only: one bulk call for the whole market.")] = False,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="quotes only: symbols per batch-quote call.")] = None,
    env: Annotated[str | None, typer.Option("--env", "-e", help="local | dev | staging | prod (default FINKS_ENV).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the libraries' log records on stderr.")] = False,
) -> None:
    """Fetch one dataset for one date from FMP (or the simulator) into the bronze zone."""
    from connectors.fmp.errors import FmpError
    from connectors.fmp.ingest import run_ingest
    from connectors.fmp.universe import parse_symbols
    from core.errors import UsageError
    from core.jsondoc import document
    from core.logsetup import command_console
    from core.settings import load_settings

    if symbols and universe:
        raise UsageError("give --symbols or --universe, not both")
    settings = load_settings(env=env)
    stopped: FmpError | None = None
    with command_console(settings.home, "ingest", verbose=verbose) as display:
        on_event = _Progress(display, f"ingest {dataset} {date}") if display.tty else None
        try:
            result = run_ingest(settings, date, dataset, parse_symbols(symbols) if symbols else None, universe,
                                force, bulk=bulk, batch_size=batch_size, on_event=on_event)
        except FmpError as exc:
            stopped = exc
    if stopped is not None:
        if stopped.result is not None and as_json:
            typer.echo(document("ingest", {**stopped.result.to_dict(), "error": str(stopped)}))
        raise stopped
    typer.echo(document("ingest", result.to_dict()) if as_json else _summary(result))
    if not result.ok:
        raise typer.Exit(1)


def fmp_sim(
    port: Annotated[int | None, typer.Option("--port", help="Port (default FMP_SIM_PORT, 8765; 0 = any).")] = None,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    limit: Annotated[int | None, typer.Option("--calls-per-minute", help="Answer 429 above this (default: the plan's).")] = None,
    no_limit: Annotated[bool, typer.Option("--no-limit", help="No calls-per-minute limit.")] = False,
    seed: Annotated[int, typer.Option("--seed")] = 7,
    latency_ms: Annotated[float, typer.Option("--latency-ms")] = 0.0,
    error_rate: Annotated[float, typer.Option("--error-rate", help="Share of calls answered 5xx.")] = 0.0,
    error_status: Annotated[int, typer.Option("--error-status")] = 500,
    malformed_rate: Annotated[float, typer.Option("--malformed-rate")] = 0.0,
    error_200_rate: Annotated[float, typer.Option("--error-200-rate", help="Share answered 200 + Error Message.")] = 0.0,
    invalid_key: Annotated[bool, typer.Option("--invalid-key", help="Reject every key (401).")] = False,
    daily_limit: Annotated[int | None, typer.Option("--daily-limit")] = None,
    restricted: Annotated[list[str] | None, typer.Option("--restricted", help="Endpoint path answering 402.")] = None,
    symbol_fault: Annotated[list[str] | None, typer.Option("--symbol-fault", help="SYMBOL=500|503|malformed|error200|401|402|invalid|empty|slow")] = None,
) -> None:
    """Serve the FMP-compatible simulator until interrupted."""
    import time

    from connectors.fmp.simulator import Faults, SimulatorServer
    from core.errors import UsageError
    from core.settings import load_settings

    settings = load_settings()
    faults_by_symbol = {}
    for item in symbol_fault or []:
        sym, sep, kind = item.partition("=")
        if not sep:
            raise UsageError(f"invalid --symbol-fault {item!r}", hint="use SYMBOL=KIND, e.g. MSFT=500")
        faults_by_symbol[sym.upper()] = kind
    try:
        faults = Faults(latency_ms=latency_ms, error_rate=error_rate, error_status=error_status,
                        malformed_rate=malformed_rate, error_200_rate=error_200_rate, invalid_key=invalid_key,
                        daily_limit=daily_limit, restricted=frozenset(restricted or []),
                        symbol_faults=faults_by_symbol)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    from core.settings import window_limit

    per_window = None if no_limit else window_limit(limit or settings.fmp_rate_limit, settings.fmp_rate_window_s)
    sim = SimulatorServer(port=settings.fmp_sim_port if port is None else port, host=host,
                          calls_per_minute=per_window, window_s=settings.fmp_rate_window_s, seed=seed, faults=faults)
    try:
        sim.start()
    except OSError as exc:
        from core.errors import ServiceError

        raise ServiceError(f"cannot listen on {host}:{port or settings.fmp_sim_port}: {exc.strerror}",
                           hint="pick another --port or stop what uses it") from None
    window = f"{per_window} calls per {settings.fmp_rate_window_s:g} s" if per_window else "no"
    typer.echo(f"FMP simulator on {sim.base_url} ({window} limit, "
               f"{len(sim.data.symbols)} symbols); Ctrl-C stops it", err=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()


app.command("ingest")(ingest)
app.command("fmp-sim")(fmp_sim)


class _Progress:
    """Ingest events on the display: symbols done of total, calls/min against the plan's limit."""

    def __init__(self, display: Any, title: str) -> None:
        self.display, self.title = display, title
        self.limit: int | None = None
        self.per_symbol = True

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["kind"]
        if kind == "start":
            self.limit, self.per_symbol = event.get("limit"), bool(event["symbols"])
            self.display.start(self.title, total=event["symbols"] or event["units"],
                               unit="symbols" if self.per_symbol else "calls")
        elif kind == "symbol" and self.per_symbol:
            self.display.advance(event["symbol"], event["status"], quiet=True)
        elif kind == "unit":
            if not self.per_symbol:
                self.display.advance(quiet=True)
            rate = event.get("per_minute")
            self.display.info(f"{rate:.0f} of {self.limit or '-'} calls/min" if rate else f"{event['calls']} calls")
        elif kind == "done":
            self.display.close()


def _summary(result: Any) -> str:
    if result.skipped:
        return (f"{result.dataset} {result.date}: already ingested ({result.manifest_uri}); "
                "use --force to ingest again")
    counts = result.counts()
    headline = (f"{result.dataset} {result.date}: {counts['ok']} ok, {counts['no_data']} no data, "
                f"{counts['failed']} failed; {result.records} records ({result.quarantined} quarantined); "
                f"{result.calls} calls, {result.retries} retries, {result.calls_per_minute or '-'} calls/min, "
                f"{result.elapsed_s:.1f}s{' (resumed)' if result.resumed else ''}")
    lines = [headline,
             f"manifest: {result.manifest_uri}"]
    for symbol in result.failed_symbols[:20]:
        lines.append(f"  failed {symbol}: {result.symbols[symbol].error}")
    if len(result.failed_symbols) > 20:
        lines.append(f"  ... and {len(result.failed_symbols) - 20} more failed")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """``python -m connectors.fmp``: one line on stderr for deliberate errors, finks's exit codes."""
    import click

    from core.errors import FinksError

    # typer ≥ 0.2x runs on a copy of click of its own (typer._click): its usage errors are not click's.
    usage_errors: tuple[type[Exception], ...] = (click.ClickException,)
    try:
        from typer._click.exceptions import ClickException as TyperClickException
        usage_errors += (TyperClickException,)
    except ImportError:
        pass
    aborts = (click.exceptions.Abort, typer.Abort)
    try:
        code = app(args=argv, standalone_mode=False, prog_name="python -m connectors.fmp")
    except FinksError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except usage_errors as exc:
        exc.show()  # type: ignore[attr-defined]
        sys.exit(getattr(exc, "exit_code", 2) or 2)
    except aborts:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
