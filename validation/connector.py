"""S15 checks: the FMP connector's rate limiting, errors, schemas, bronze landing, image, extraction.

Each check starts what it needs (its own simulator, its own moto server, a
scratch lake under ``ctx.work_dir``) and never touches the default lake, except
the action ``ingest_sample_day``, whose job is to fill it.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from core import lake
from finks.checks import CheckContext, CheckFailed, Evidence

PROBE_KEY = "probe-key-7d1e40c2b9"  # a fake key that must never land anywhere
DAY = "2024-03-05"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _settings(ctx: CheckContext, sim: Any, name: str, **overrides: Any) -> Any:
    from core.settings import load_settings

    values: dict[str, Any] = {"state_dir": ctx.work_dir / name / "state",
                              "lake_uri": str(ctx.work_dir / name / "lake"), "fmp_base_url": sim.base_url,
                              "fmp_api_key": PROBE_KEY, "fmp_calls_per_minute": 60_000}
    values.update(overrides)
    return load_settings(env="local", root=ctx.root, **values)


def _require(condition: bool, message: str, figures: dict[str, Any]) -> None:
    if not condition:
        raise CheckFailed(message, figures=figures)


def _scan_for_key(root: Path, key: str = PROBE_KEY) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if path.suffix == ".gz":
                data += gzip.decompress(data)
            if key.encode() in data:
                hits.append(str(path))
    return hits


def _verify_ingestion(store: Any, manifest_key: str) -> dict[str, Any]:
    """Every file a manifest lists exists, matches its checksum and holds a JSON array."""
    manifest = json.loads(store.get(manifest_key))
    folder = manifest_key.rsplit("/", 1)[0]
    for entry in manifest["files"]:
        blob = store.get(f"{folder}/{entry['path']}")
        if blob is None or hashlib.sha256(blob).hexdigest() != entry["sha256"]:
            raise CheckFailed(f"{entry['path']} listed in {manifest_key} is missing or has the wrong checksum")
        records = json.loads(gzip.decompress(blob))
        if not isinstance(records, list) or len(records) != entry["records"]:
            raise CheckFailed(f"{entry['path']} does not hold the {entry['records']} records its manifest says")
    return manifest


# ---- s15 rate-limit ------------------------------------------------------------
def rate_limit_holds(ctx: CheckContext) -> Evidence:
    """The limiter's property on a short window: never more than N calls in any window, at ≥95% of
    the rate, no 429 — with two datasets ingesting at once on one key, as the daily flow runs them
    (FMP counts the key's calls, not a run's); and a client that overestimates its limit is slowed
    by 429s yet completes.

    The property does not depend on the window's length (FMP counts a minute): a 2 s window at
    1,200 calls/min (40 per window) exercises it over three windows in about 6 s instead of minutes.
    """
    from concurrent.futures import ThreadPoolExecutor

    from connectors.fmp.ingest import run_ingest
    from connectors.fmp.simulator import SimulatorServer
    from connectors.fmp.universe import synthetic_symbols
    from core.settings import window_limit

    per_minute, window_s, symbols = 1200, 2.0, list(synthetic_symbols(1000)[:60])
    datasets = ("quotes", "profiles")
    limit = window_limit(per_minute, window_s)
    with SimulatorServer(port=0, calls_per_minute=limit, window_s=window_s) as sim:
        settings = _settings(ctx, sim, "paced", fmp_calls_per_minute=per_minute, fmp_rate_window_s=window_s)
        with ThreadPoolExecutor(len(datasets)) as pool:
            results = list(pool.map(lambda ds: run_ingest(settings, DAY, ds, symbols=symbols), datasets))
        times = sorted(sim.stats.accepted_at)
        wanted = len(symbols) * len(datasets)
        all_ok = all(r.ok for r in results)
        _require(len(times) >= wanted, f"the simulator accepted {len(times)} calls for {len(symbols)} symbols × "
                 f"{len(datasets)} datasets; {sim.stats.rejected_429} calls were answered 429",
                 {"accepted": len(times), "rejected_429": sim.stats.rejected_429, "all_ok": all_ok,
                  "failed": [s for r in results for s in r.failed_symbols][:5]})
        rate = (len(times) - 1) / max(times[-1] - times[0], 1e-9) * 60
        per_window = _full_windows(times, window_s)
        figures: dict[str, Any] = {"limit_per_window": limit, "window_s": window_s, "limit_per_min": per_minute,
                   "datasets_at_once": len(datasets), "calls": sim.stats.requests,
                   "windows": round((times[-1] - times[0]) / window_s, 1),
                   "rejected_429": sim.stats.rejected_429, "achieved_per_min": round(rate, 1),
                   "calls_per_full_window": per_window,
                   "max_in_any_window": sim.stats.max_in_window(window_s), "all_ok": all_ok}
    _require(all_ok, "not every symbol was fetched under the limit", figures)
    _require(sim.stats.rejected_429 == 0, f"every symbol landed, but {sim.stats.rejected_429} calls were answered 429: "
             f"the {len(datasets)} ingestions together let more than {limit} calls into a {window_s:g} s window",
             figures)
    _require(figures["max_in_any_window"] <= limit, f"more than {limit} calls in a {window_s:g} s window", figures)
    _require(figures["windows"] >= 2, "the calls spanned fewer than two windows: the property was not exercised",
             figures)
    # The pace is judged window by window, as FMP counts: the median full window must hold 95% of
    # the limit. One window that a stall of this process (not the limiter) cost calls does not
    # decide it; a limiter that paces below the limit falls short in every window.
    paced = statistics.median(per_window) if per_window else 0
    _require(paced >= 0.95 * limit, f"achieved {rate:.0f}/min, below 95% of {per_minute}/min: the median full "
             f"{window_s:g} s window held {paced:g} calls of {limit} ({per_window})", figures)

    with SimulatorServer(port=0, calls_per_minute=10, window_s=1.0) as tight:
        over = run_ingest(_settings(ctx, tight, "slowed", fmp_max_concurrency=8), DAY, "quotes",
                          symbols=symbols[:20], backoff_base_s=0.2, backoff_max_s=2.0, max_retries=8)
        figures.update(slowed_429s=tight.stats.rejected_429, slowed_retries=over.retries, slowed_ok=over.ok)
    _require(over.ok and tight.stats.rejected_429 > 0, "an over-eager client did not recover from 429s", figures)
    return Evidence(f"{figures['calls']} calls of {len(datasets)} datasets at once at {figures['achieved_per_min']}/min "
                    f"against {limit} per {window_s:g} s ({per_minute}/min) over {figures['windows']} windows, no 429, at most "
                    f"{figures['max_in_any_window']} in any window; 429s slowed an over-eager client and all "
                    f"{len(symbols[:20])} symbols still landed", figures)


def _full_windows(times: list[float], window_s: float) -> list[int]:
    """Calls started in each whole window from the first call on (a last, partial one left out)."""
    if not times:
        return []
    whole = int((times[-1] - times[0]) // window_s)
    counts = [0] * whole
    for t in times:
        k = int((t - times[0]) // window_s)
        if k < whole:
            counts[k] += 1
    return counts


# ---- s15 error-handling --------------------------------------------------------
def errors_handled(ctx: CheckContext) -> Evidence:
    from connectors.fmp.errors import FmpAuthError, FmpQuotaExhausted
    from connectors.fmp.ingest import run_ingest
    from connectors.fmp.simulator import Faults, SimulatorServer

    fast: dict[str, Any] = {"max_retries": 2, "backoff_base_s": 0.02, "backoff_max_s": 0.1, "timeout_s": 0.5}
    faults = Faults(symbol_faults={"MSFT": "500", "AMZN": "error200", "META": "malformed", "NVDA": "402",
                                   "TSLA": "invalid", "JPM": "slow"}, fail_first={"GOOGL": 2}, slow_s=1.5)
    symbols = ["AAPL", "MSFT", "AMZN", "META", "NVDA", "TSLA", "GOOGL", "JPM", "NOPE1"]
    figures: dict[str, Any] = {}
    with SimulatorServer(port=0, faults=faults) as sim:
        result = run_ingest(_settings(ctx, sim, "faults"), DAY, "quotes", symbols=symbols, **fast)
        missing = [sym for sym in symbols if sym not in result.symbols]
        _require(not missing, f"the ingestion reports no outcome for {missing}", {"symbols": sorted(result.symbols)})
        s = result.symbols
        expect = {
            "5xx retried then failed": s["MSFT"].status == "failed" and "HTTP 500" in (s["MSFT"].error or ""),
            "Error Message with HTTP 200 is an error": s["AMZN"].status == "failed"
            and "Something went wrong" in (s["AMZN"].error or ""),
            "malformed JSON": s["META"].status == "failed" and "malformed JSON" in (s["META"].error or ""),
            "402 names the endpoint": s["NVDA"].status == "failed" and "/stable/quote" in (s["NVDA"].error or ""),
            "timeout": s["JPM"].status == "failed" and "timed out" in (s["JPM"].error or ""),
            "invalid records quarantined": s["TSLA"].status == "ok" and result.quarantined == 1,
            "transient 5xx recovered": s["GOOGL"].status == "ok",
            "empty answer is no_data": s["NOPE1"].status == "no_data",
            "others unaffected": s["AAPL"].status == "ok",
            "manifest holds every outcome": result.manifest_uri is not None
            and len(json.loads(Path(result.manifest_uri).read_text())["symbols"]) == len(symbols),
        }
        # FINKS_ENV pinned: under `finks verify --env dev` the child would otherwise land in dev's bronze bucket.
        env = {**os.environ, "FINKS_ENV": "local", "FMP_BASE_URL": sim.base_url, "FMP_API_KEY": PROBE_KEY,
               "FMP_CALLS_PER_MINUTE": "60000", "FINKS_STATE_DIR": str(ctx.work_dir / "cli" / "state"),
               "FINKS_LAKE_URI": str(ctx.work_dir / "cli" / "lake")}
        proc = subprocess.run(check=False, args=[sys.executable, "-m", "connectors.fmp", "ingest", "--date", DAY,
                               "--symbols", "AAPL,MSFT"], env=env, cwd=ctx.root, capture_output=True,
                              text=True, timeout=120)
        expect["command exits non-zero when a symbol failed"] = proc.returncode == 1
        outputs = proc.stdout + proc.stderr
    with SimulatorServer(port=0, faults=Faults(invalid_key=True)) as bad_key:
        try:
            run_ingest(_settings(ctx, bad_key, "badkey", fmp_max_concurrency=1), DAY, "quotes",
                       symbols=symbols, **fast)
            expect["401 stops the run, no retries"] = False
        except FmpAuthError as exc:
            outputs += str(exc)
            expect["401 stops the run, no retries"] = bad_key.stats.requests == 1
    with SimulatorServer(port=0, faults=Faults(daily_limit=2)) as capped:
        try:
            run_ingest(_settings(ctx, capped, "capped", fmp_max_concurrency=1), DAY, "quotes", symbols=symbols, **fast)
            expect["daily cap stops the run clearly"] = False
        except FmpQuotaExhausted as exc:
            outputs += str(exc)
            expect["daily cap stops the run clearly"] = "quota" in str(exc) and capped.stats.requests == 3
    import asyncio

    from connectors.fmp.client import FmpClient  # connection refused: retried, then a clear error
    from connectors.fmp.errors import FmpTransientError
    from connectors.fmp.limiter import RateLimiter

    async def refused() -> str:
        async with FmpClient(f"http://127.0.0.1:{_free_port()}", PROBE_KEY, RateLimiter(None, 1), max_retries=1,
                             backoff_base_s=0.01) as client:
            try:
                await client.quote("AAPL")
            except FmpTransientError as exc:
                return str(exc)
        return ""

    message = asyncio.run(refused())
    expect["connection error retried then reported"] = "connection failed" in message
    leaks = _scan_for_key(ctx.work_dir) + (["command output"] if PROBE_KEY in outputs + message else [])
    expect["key never in files or output"] = not leaks
    figures = {name: ok for name, ok in expect.items()}
    failed = [name for name, ok in expect.items() if not ok]
    if failed:
        raise CheckFailed(f"error handling broken: {', '.join(failed)}", figures=figures)
    return Evidence(f"all {len(expect)} error modes handled over HTTP against the simulator", figures)


# ---- s15 schemas ---------------------------------------------------------------
def _shape(record: dict[str, Any], kinds: dict[type, str]) -> dict[str, str]:
    """A record's fields and the JSON kind of each value."""
    return {k: kinds[type(v)] for k, v in record.items()}


def schemas_validate(ctx: CheckContext) -> Evidence:
    import httpx

    from connectors.fmp.models import MODELS, validate_records
    from connectors.fmp.simulator import SimulatorServer

    samples = ctx.root / "connectors" / "fmp" / "samples"
    kinds = {bool: "bool", int: "number", float: "number", str: "str", type(None): "null"}
    figures: dict[str, Any] = {}
    paths = {"quote": ("quotes", "/stable/quote", {"symbol": "AAPL"}),
             "profile": ("profiles", "/stable/profile", {"symbol": "AAPL"}),
             "hist": ("eod", "/stable/historical-price-eod/full", {"symbol": "AAPL", "from": "2023-01-03",
                                                                  "to": "2023-01-10"})}
    with SimulatorServer(port=0) as sim:
        for sample, (dataset, path, params) in paths.items():
            recorded = json.loads((samples / f"{sample}_stable.json").read_text())
            _require(isinstance(recorded, list) and bool(recorded) and isinstance(recorded[0], dict),
                     f"recorded {sample}_stable.json holds no record", figures)
            valid, bad = validate_records(dataset, recorded)
            _require(not bad, f"recorded {sample}_stable.json fails {MODELS[dataset].__name__}: {bad}", figures)
            answer = httpx.get(sim.base_url + path, params=params, timeout=10).json()
            _require(isinstance(answer, list) and bool(answer), f"simulator {path} answered no record", figures)
            _require(_shape(answer[0], kinds) == _shape(recorded[0], kinds),
                     f"simulator {path} differs from the recording in fields or types", figures)
            sim_valid, sim_bad = validate_records(dataset, answer)
            _require(not sim_bad, f"simulator {path} records fail validation: {sim_bad[:1]}", figures)
            figures[sample] = {"recorded_valid": valid, "simulated_valid": sim_valid}
    loose = [{"symbol": "X", "price": "12.5", "volume": "NA", "marketCap": "", "timestamp": None}]
    broken = [{"symbol": "", "price": "abc"}]
    _require(validate_records("quotes", loose)[0] == 1, "numeric strings / NA / empty / null not tolerated", figures)
    bad = validate_records("quotes", broken)[1]
    _require(bool(bad) and "price" in bad[0][1], "an invalid record was not rejected with its reason", figures)
    figures["invalid_reason"] = bad[0][1]
    return Evidence("recorded quote/profile/EOD samples parse; simulator answers match their fields and types; "
                    "loose values tolerated, invalid records rejected with a reason", figures)


# ---- s15 bronze-landing --------------------------------------------------------
def lands_in_bronze(ctx: CheckContext) -> Evidence:
    from moto.server import ThreadedMotoServer

    from connectors.fmp.ingest import run_ingest
    from connectors.fmp.simulator import SimulatorServer
    from connectors.fmp.writer import LocalStore, S3Store, open_store

    figures: dict[str, Any] = {}
    symbols = ["AAPL", "MSFT", "GOOGL", "NOPE1"]
    port = _free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    try:
        with SimulatorServer(port=0) as sim:
            for storage in ("local", "s3"):
                extra = {"storage": "s3", "lake_uri": None, "s3_endpoint_url": f"http://127.0.0.1:{port}"} \
                    if storage == "s3" else {}
                settings = _settings(ctx, sim, f"land-{storage}", **extra)
                store = open_store(lake.zone_uri(settings, "bronze"), settings)
                if isinstance(store, S3Store):
                    store.client.create_bucket(Bucket=store.bucket, CreateBucketConfiguration={
                        "LocationConstraint": settings.region})
                result = run_ingest(settings, DAY, "quotes", symbols=symbols)
                _require(result.ok and result.manifest_uri is not None, f"{storage}: ingestion failed", figures)
                keys = store.list("fmp/quotes/")
                manifest_key = next((k for k in keys if k.endswith("/_manifest.json")), "")
                _require(bool(manifest_key), f"{storage}: no manifest under fmp/quotes/ ({len(keys)} objects)", figures)
                _require(manifest_key.startswith(f"fmp/quotes/date={DAY}/ingested_at="),
                         f"{storage}: unexpected layout {manifest_key}", figures)
                manifest = _verify_ingestion(store, manifest_key)
                landed = sum(int(f.get("records", 0)) for f in manifest["files"])
                _require(landed >= 3, f"{storage}: {landed} records landed for {len(symbols) - 1} symbols with data", figures)
                again = run_ingest(settings, DAY, "quotes", symbols=symbols)
                leaks = [k for k in store.list("") if PROBE_KEY.encode() in (store.get(k) or b"")
                         or (k.endswith(".gz") and PROBE_KEY.encode() in gzip.decompress(store.get(k) or b""))]
                figures[storage] = {"uri": result.manifest_uri, "objects": len(keys), "files": len(manifest["files"]),
                                    "no_data": manifest["counts"]["no_data"], "rerun_skipped": again.skipped,
                                    "key_leaks": len(leaks)}
                _require(again.skipped, f"{storage}: a second run did not skip the ingested date", figures)
                _require(not leaks, f"{storage}: the API key leaked into {leaks}", figures)
                _require(isinstance(store, LocalStore) == (storage == "local"), "wrong store", figures)
    finally:
        moto.stop()
    return Evidence("quotes landed gzipped with a verified manifest on the local lake and on S3 (moto over HTTP); "
                    "re-runs skip; no key in any object", figures)


# ---- s15 connector-image -------------------------------------------------------
def image_defined(ctx: CheckContext) -> Evidence:
    dockerfile = ctx.root / "connectors" / "Dockerfile"
    if not dockerfile.is_file():
        raise CheckFailed(f"{dockerfile} is missing")
    text = dockerfile.read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    needs = {
        "python base image": any(ln.startswith("FROM python:3.1") for ln in lines),
        "copies connectors": any(ln.startswith("COPY") and "connectors" in ln for ln in lines),
        # The connector imports the platform core, never the orchestrator (finks/).
        "copies core": any(ln.startswith("COPY") and "core/" in ln for ln in lines),
        "runs the connector": any(ln.startswith("ENTRYPOINT") and "connectors.fmp" in ln for ln in lines),
        "non-root user": any(ln.startswith("USER") and "root" not in ln for ln in lines),
        "no key baked in": "FMP_API_KEY=" not in text.replace("FMP_API_KEY=\"\"", ""),
    }
    proc = subprocess.run(check=False, args=[sys.executable, "-m", "connectors.fmp", "ingest", "--help"], cwd=ctx.root,
                          capture_output=True, text=True, timeout=60)
    needs["entrypoint command works"] = proc.returncode == 0 and "--date" in proc.stdout
    failed = [name for name, ok in needs.items() if not ok]
    if failed:
        raise CheckFailed(f"connectors/Dockerfile: {', '.join(failed)}", figures=needs)
    return Evidence("connectors/Dockerfile defines the connector image (not built here: no Docker engine); "
                    "its entrypoint command runs", needs)


# ---- s15 full-extraction and the sample-day action -----------------------------
def sample_date() -> str:
    """FINKS_SAMPLE_DATE, else the last weekday before today (UTC)."""
    if os.environ.get("FINKS_SAMPLE_DATE"):
        return dt.date.fromisoformat(os.environ["FINKS_SAMPLE_DATE"]).isoformat()
    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day.isoformat()


def full_extraction(ctx: CheckContext) -> Evidence:
    """The command, as an operator runs it with no key: simulator started on demand, three datasets."""
    from connectors.fmp.writer import BronzeWriter, LocalStore

    day = sample_date()
    scratch_lake = ctx.work_dir / "extract" / "lake"
    env = {k: v for k, v in os.environ.items() if k not in ("FMP_API_KEY", "FMP_BASE_URL", "FINKS_LAKE_URI")}
    env.update(FINKS_ENV="local", FINKS_STATE_DIR=str(ctx.work_dir / "extract" / "state"), FINKS_LAKE_URI=str(scratch_lake),
               FMP_SIM_PORT=str(_free_port()))
    figures: dict[str, Any] = {"date": day}
    for dataset in ("quotes", "profiles", "eod"):
        proc = subprocess.run(check=False, args=[sys.executable, "-m", "connectors.fmp", "ingest", "--date", day, "--dataset", dataset,
                               "--universe", "default", "--json"], env=env, cwd=ctx.root, capture_output=True,
                              text=True, timeout=240)
        if proc.returncode != 0:
            raise CheckFailed(f"finks ingest --dataset {dataset} exited {proc.returncode}",
                              figures=figures, excerpt=(proc.stderr or proc.stdout)[-2000:])
        result = json.loads(proc.stdout)
        writer = BronzeWriter(LocalStore(scratch_lake / "bronze"), dataset, day)
        manifests = writer.manifests()
        _require(len(manifests) == 1, f"{dataset}: expected one complete ingestion", figures)
        prefix = manifests[0][0].split("/bronze/", 1)[1]
        manifest = _verify_ingestion(LocalStore(scratch_lake / "bronze"), prefix)
        figures[dataset] = {"counts": result["counts"], "records": result["records"], "calls": result["calls"],
                            "calls_per_minute": result["calls_per_minute"], "quarantined": result["quarantined"]}
        _require(bool(manifest["symbols"]), f"{dataset}: the ingestion asked for no symbol", figures)
        # No EOD bar exists for a day the market was closed: zero records is then the right answer.
        trading = dataset != "eod" or day_is_trading(day)
        want_ok = len(manifest["symbols"]) if trading else 0
        _require(result["counts"]["failed"] == 0 and result["counts"]["ok"] == want_ok,
                 f"{dataset}: not every symbol extracted", figures)
        _require(not trading or result["records"] > 0, f"{dataset}: no record extracted", figures)
    default_lake = Path(lake.zone_uri(ctx.settings, "bronze"))
    figures["sample_day_in_default_lake"] = (default_lake / "fmp" / "quotes" / f"date={day}").is_dir()
    return Evidence(f"quotes, profiles and EOD for {day} extracted by `python -m connectors.fmp ingest` "
                    f"(simulator started on demand) into bronze with verified manifests", figures)


def day_is_trading(day: str) -> bool:
    from connectors.fmp.simdata import TRADING_DAYS

    return dt.date.fromisoformat(day) in set(TRADING_DAYS)


def ingest_sample_day(ctx: CheckContext) -> str:
    """Action: ingest the sample day (quotes, profiles, EOD; default universe) into the default lake."""
    from connectors.fmp.ingest import run_ingest

    settings = ctx.settings
    day = sample_date()
    lines = []
    for dataset in ("quotes", "profiles", "eod"):
        result = run_ingest(settings, day, dataset)
        counts = result.counts()
        lines.append(f"{dataset}: " + ("already ingested" if result.skipped else
                                       f"{counts['ok']} ok, {counts['no_data']} no data, {counts['failed']} failed"))
        if not result.ok:
            raise CheckFailed(f"sample day {day}: {dataset} failed for {', '.join(result.failed_symbols)}")
        if not result.skipped and not counts["ok"] and (dataset != "eod" or day_is_trading(day)):
            raise CheckFailed(f"sample day {day}: {dataset} fetched nothing", figures=counts)
    source = "simulator" if settings.uses_simulator else settings.fmp_url
    return f"sample day {day} from the {source} into {lake.zone_uri(settings, 'bronze')}: " + "; ".join(lines)
