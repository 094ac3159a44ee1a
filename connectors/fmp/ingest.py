"""Ingest one dataset for one date: fetch concurrently, land raw in bronze, write the manifest.

Pure core: no printing, no argv. Progress goes to an ``on_event`` callback;
the CLI renders it. Every symbol ends ok / no_data / failed (with why); one
symbol's failure never loses the others. A stopping error (bad key, quota
used up) raises with the partial result attached and leaves the unfinished
ingestion in place: the next run resumes it without refetching what landed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from connectors.fmp.errors import FmpError, redact
from connectors.fmp.models import SCHEMA_VERSION, validate_records
from connectors.fmp.settings import FmpOptions, is_listening
from connectors.fmp.units import Unit, UnitPlan
from connectors.fmp.writer import BronzeWriter, Ingestion, open_store
from core import lake
from core.errors import UsageError

DATASETS = ("quotes", "profiles", "eod")
MAX_QUARANTINE_ROWS = 10_000
Event = dict[str, Any]


@dataclass
class SymbolOutcome:
    status: str  # ok | no_data | failed
    records: int = 0
    error: str | None = None
    invalid: int = 0


@dataclass
class IngestResult:
    dataset: str
    date: str
    skipped: bool = False
    ingested_at: str | None = None
    manifest_uri: str | None = None
    symbols: dict[str, SymbolOutcome] = field(default_factory=dict)
    calls: int = 0
    retries: int = 0
    calls_per_minute: float | None = None
    elapsed_s: float = 0.0
    records: int = 0
    quarantined: int = 0
    resumed: bool = False
    stopped: str | None = None

    @property
    def failed_symbols(self) -> list[str]:
        return sorted(s for s, o in self.symbols.items() if o.status == "failed")

    @property
    def ok(self) -> bool:
        return self.stopped is None and not self.failed_symbols

    def counts(self) -> dict[str, int]:
        out = {"ok": 0, "no_data": 0, "failed": 0}
        for outcome in self.symbols.values():
            out[outcome.status] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(ok=self.ok, failed_symbols=self.failed_symbols, counts=self.counts())
        return data


def run_ingest(settings: Any, date: str | dt.date, dataset: str = "quotes", symbols: list[str] | None = None,
               universe: str | None = None, force: bool = False, *, bulk: bool = False,
               batch_size: int | None = None, on_event: Callable[[Event], None] | None = None,
               **options: Any) -> IngestResult:
    """Sync entry point (CLI, Prefect tasks, checks). See :func:`ingest_async`."""
    coro_args = (settings, date, dataset, symbols, universe, force, bulk, batch_size, on_event, options)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(ingest_async(*coro_args))
    # Called from inside an event loop (an async Prefect flow): run on a private loop.
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = asyncio.run(ingest_async(*coro_args))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=target)
    worker.start()
    worker.join()
    if "error" in box:
        raise box["error"]
    return box["result"]  # type: ignore[no-any-return]


_SHARED_SIMS: dict[int, list[Any]] = {}  # port -> [server, users]: concurrent runs share one
_SHARED_LOCK = threading.Lock()


@contextlib.contextmanager
def simulator_if_needed(settings: Any) -> Iterator[None]:
    """Locally without a key, start the simulator in-process unless one is listening.

    Concurrent runs in one process (a flow ingesting three datasets at once)
    share the simulator; the last one out stops it.
    """
    port = settings.fmp_sim_port
    with _SHARED_LOCK:
        if not settings.uses_simulator or (port not in _SHARED_SIMS and is_listening("127.0.0.1", port)):
            owned = False
        else:
            owned = True
            if port not in _SHARED_SIMS:
                from connectors.fmp.simulator import SimulatorServer

                sim = SimulatorServer(port=port, calls_per_minute=settings.fmp_window_limit,
                                      window_s=settings.fmp_rate_window_s).start()
                _SHARED_SIMS[port] = [sim, 0]
            _SHARED_SIMS[port][1] += 1
    try:
        yield
    finally:
        if owned:
            with _SHARED_LOCK:
                _SHARED_SIMS[port][1] -= 1
                if _SHARED_SIMS[port][1] == 0:
                    _SHARED_SIMS.pop(port)[0].stop()


async def ingest_async(settings: Any, date: str | dt.date, dataset: str, symbols: list[str] | None,
                       universe: str | None, force: bool, bulk: bool, batch_size: int | None,
                       on_event: Callable[[Event], None] | None, options: dict[str, Any]) -> IngestResult:
    day = _parse_date(date)
    if dataset not in DATASETS:
        raise UsageError(f"unknown dataset {dataset!r}", hint=f"use one of {', '.join(DATASETS)}")
    if bulk and dataset != "eod":
        raise UsageError("--bulk applies to --dataset eod only")
    if symbols is None and not bulk:
        from connectors.fmp.universe import resolve

        symbols = resolve(universe or settings.universe)
    emit = on_event or (lambda event: None)
    opts = FmpOptions.from_settings(settings, **options)
    writer = BronzeWriter(open_store(lake.zone_uri(settings, "bronze"), settings), dataset, day)
    result = IngestResult(dataset, day)
    request = {"dataset": dataset, "date": day, "symbols": symbols, "bulk": bulk, "batch_size": batch_size}

    if not force:
        done = _already_ingested(writer, symbols, bulk)
        if done is not None:
            result.skipped, result.manifest_uri = True, done
            emit({"kind": "skipped", "manifest": done})
            return result
    ingestion = (None if force else writer.incomplete(request)) or writer.begin(request)
    result.ingested_at, result.resumed = ingestion.ingested_at, ingestion.resumed
    units = UnitPlan(dataset, day, symbols, bulk, batch_size)
    with simulator_if_needed(settings):
        await _fetch_all(opts, ingestion, units, result, emit)
    if result.stopped is None:
        result.manifest_uri = ingestion.write_manifest(_manifest(result, opts, units, ingestion))
    emit({"kind": "done", "result": result})
    if result.stopped is not None:
        raise result._stop_error  # type: ignore[attr-defined]
    return result


def _parse_date(value: str | dt.date) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise UsageError(f"invalid date {value!r}", hint="use YYYY-MM-DD") from None


def _already_ingested(writer: BronzeWriter, symbols: list[str] | None, bulk: bool) -> str | None:
    """The newest manifest when complete ingestions already cover every requested symbol."""
    covered: set[str] = set()
    newest = None
    for uri, manifest in writer.manifests():
        if bulk and manifest.get("mode") == "bulk":
            newest = uri
        covered |= {s for s, o in manifest.get("symbols", {}).items() if o.get("status") != "failed"}
        newest = uri if symbols and set(symbols) <= covered else newest
    return newest


async def _fetch_all(opts: FmpOptions, ingestion: Ingestion, units: UnitPlan, result: IngestResult,
                     emit: Callable[[Event], None]) -> None:
    from connectors.fmp.client import FmpClient
    from connectors.fmp.limiter import RateLimiter, shared_budget

    # One budget per key in this process: the flow's datasets ingest at once and FMP counts them together.
    budget = shared_budget(opts.base_url, opts.api_key, opts.window_limit, opts.window_s)
    limiter = RateLimiter(opts.window_limit, opts.max_concurrency, window_s=opts.window_s, budget=budget)
    existing = ingestion.existing_parts()
    pending = iter(units)  # shared by the workers; next() never interleaves on one loop
    state: dict[str, Any] = {"files": [], "quarantine": [], "stop": None, "lock": threading.Lock()}
    result._files = state["files"]  # type: ignore[attr-defined]
    emit({"kind": "start", "units": len(units), "symbols": units.symbol_count, "limit": opts.calls_per_minute})
    started = time.monotonic()

    async with FmpClient(opts.base_url, opts.api_key, limiter, timeout_s=opts.timeout_s,
                         max_retries=opts.max_retries, backoff_base_s=opts.backoff_base_s,
                         backoff_max_s=opts.backoff_max_s, sim_extensions=opts.sim_extensions) as client:

        async def worker() -> None:
            for unit in pending:
                if state["stop"] is not None:
                    with state["lock"]:
                        _record_failure(result, unit, f"not attempted: run stopped ({state['stop']})", emit)
                    continue
                try:
                    if unit.index in existing:
                        key = existing[unit.index]
                        body, sha = await asyncio.to_thread(ingestion.read_part, key)
                    else:
                        response = await unit.call(client)
                        body, key, sha = response.body, None, None
                    # Parsing, validation and the (fsync'd) write run off the loop so that
                    # the other requests keep flowing meanwhile.
                    await asyncio.to_thread(_account, result, unit, body, key, sha, ingestion, state, emit)
                except FmpError as exc:
                    if exc.stops_run and state["stop"] is None:
                        state["stop"] = str(exc)
                        result._stop_error = exc  # type: ignore[attr-defined]
                    with state["lock"]:
                        _record_failure(result, unit, str(exc), emit)
                except Exception as exc:  # noqa: BLE001 - one unit's bug must not lose the others
                    with state["lock"]:
                        _record_failure(result, unit, redact(f"internal error: {type(exc).__name__}: {exc}",
                                                             opts.api_key), emit)
                emit({"kind": "unit", "calls": client.stats.calls, "per_minute": limiter.achieved_per_minute()})

        await asyncio.gather(*(worker() for _ in range(min(opts.max_concurrency, max(len(units), 1)))))

    result.elapsed_s = round(time.monotonic() - started, 3)
    result.calls, result.retries = client.stats.calls, client.stats.retries
    rate = limiter.achieved_per_minute()
    result.calls_per_minute = round(rate, 1) if rate else None
    result.stopped = state["stop"]
    if state["stop"] is not None:
        result._stop_error.result = result  # type: ignore[attr-defined]
    elif state["quarantine"]:
        result._quarantine_key = ingestion.write_quarantine(state["quarantine"])  # type: ignore[attr-defined]


def _account(result: IngestResult, unit: Unit, body: bytes, key: str | None, sha: str | None,
             ingestion: Ingestion, state: dict[str, Any], emit: Callable[[Event], None]) -> None:
    """Land one answer and book its outcome. Runs in a worker thread: shared state under the lock."""
    data = json.loads(body) if body.strip() else []
    if isinstance(data, dict):
        data = [data] if data else []
    per_symbol: dict[str, int] = {}
    for record in data:
        symbol = record.get("symbol") if isinstance(record, dict) else None
        if isinstance(symbol, str) and symbol:
            per_symbol[symbol] = per_symbol.get(symbol, 0) + 1
    if data and key is None:
        key, sha = ingestion.write_part(unit.index, body)
    name = key.rsplit("/", 1)[-1] if key else None
    _, bad = validate_records(result.dataset, data)
    invalid_by_symbol: dict[str, int] = {}
    quarantine = []
    for index, reason in bad:
        record = data[index]
        symbol = record.get("symbol") if isinstance(record, dict) else None
        owner = symbol or (unit.symbols[0] if unit.single and unit.symbols else "?")
        invalid_by_symbol[owner] = invalid_by_symbol.get(owner, 0) + 1
        quarantine.append({"file": name, "index": index, "symbol": owner, "reason": reason, "record": record})
    wanted = unit.symbols if unit.symbols is not None else sorted(per_symbol)
    outcomes = {}
    for symbol in wanted:
        count = per_symbol.get(symbol, 0)
        if unit.single:
            count = max(count, len(data))  # a single-symbol answer owns every row, even a broken one
        outcomes[symbol] = SymbolOutcome("ok" if count else "no_data", count, None, invalid_by_symbol.get(symbol, 0))
    with state["lock"]:
        if data:
            state["files"].append({"path": name, "sha256": sha, "records": len(data), "symbols": unit.label()})
        room = MAX_QUARANTINE_ROWS - len(state["quarantine"])
        state["quarantine"].extend(quarantine[:max(room, 0)])
        result.records += len(data)
        result.quarantined += len(bad)
        result.symbols.update(outcomes)
    for symbol, outcome in outcomes.items():
        emit({"kind": "symbol", "symbol": symbol, "status": outcome.status})


def _record_failure(result: IngestResult, unit: Unit, error: str, emit: Callable[[Event], None]) -> None:
    for symbol in unit.symbols or [f"<{unit.label()}>"]:
        result.symbols[symbol] = SymbolOutcome("failed", 0, error)
        emit({"kind": "symbol", "symbol": symbol, "status": "failed", "error": error})


def _manifest(result: IngestResult, opts: FmpOptions, units: UnitPlan, ingestion: Ingestion) -> dict[str, Any]:
    quarantine_key = getattr(result, "_quarantine_key", None)
    return {
        "dataset": result.dataset,
        "date": result.date,
        "ingested_at": result.ingested_at,
        "schema_version": SCHEMA_VERSION,
        "source": {"base_url": redact(opts.base_url, opts.api_key), "simulator": opts.uses_simulator,
                   "endpoint": units.endpoint},
        "mode": "bulk" if units.bulk else "per_symbol",
        "plan": opts.plan,
        "calls_per_minute_limit": opts.calls_per_minute,
        "calls": result.calls,
        "retries": result.retries,
        "calls_per_minute": result.calls_per_minute,
        "elapsed_s": result.elapsed_s,
        "resumed": result.resumed,
        "records": result.records,
        "symbols": {s: asdict(o) for s, o in sorted(result.symbols.items())},
        "counts": result.counts(),
        "files": sorted(getattr(result, "_files", []), key=lambda f: f["path"] or ""),
        "quarantine": ({"path": quarantine_key.rsplit("/", 1)[-1], "records": result.quarantined}
                       if quarantine_key else None),
        "completed_at": dt.datetime.now(dt.UTC).isoformat(),
    }
