"""The lake a running platform leaves in a deployed stack's buckets: its last 30 trading days.

:func:`activity` runs the platform's own code against the emulator, the way
a backfill of the last 30 XNYS sessions would (``flows.backfill``: bulk EOD for
every date, the quote and profile snapshots on the last one): the FMP
connector (``connectors.fmp``) against the FMP simulator lands bronze in the
stack's bronze bucket, bronze→silver (``jobs.bronze_to_silver``, on DuckDB
rather than the Glue job's Spark) writes the silver partitions, each date gets
its run record (``flows.common.write_record``) and the run its report with the
resources it used (``flows.backfill_report``). The universe is the one the
settings configure; the simulator knows only those symbols, so a bulk answer
carries them and no others.

Not built: gold (dbt on Athena has no emulator) — the S18 probe reads silver.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import json
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.settings import Settings

# ``seeded`` is what validation.aws.seed.seed made (its outputs name the buckets); typed loosely,
# since that module calls this one.
Seeded = Any

CONCURRENCY = 4  # the backfill command's default


def lake_settings(settings: Settings, seeded: Seeded) -> Settings:
    """The settings reaching the stack's buckets: named as its outputs say, at the emulator's endpoint.

    boto3 honours AWS_ENDPOINT_URL by itself; pyarrow's S3 filesystem (the
    partitions, core.lake.filesystem) only takes the endpoint the settings name.
    """
    from core import lake
    from core.aws import endpoint_for

    buckets = seeded.outputs.get("buckets") or {}
    if "bronze" not in buckets or "silver" not in buckets:
        raise RuntimeError(f"the seeded stack has no bronze and silver buckets in its outputs: {buckets}")
    prefix = buckets["bronze"].removesuffix("-bronze")
    update: dict[str, Any] = {"bucket_prefix": prefix}
    endpoint = endpoint_for(settings, "s3")
    if endpoint:
        update["s3_endpoint_url"] = endpoint
    out = settings.model_copy(update=update)
    wrong = {z: b for z, b in buckets.items() if z in lake.ZONES and lake.bucket(out, z) != b}
    if wrong:
        raise RuntimeError(f"the stack's buckets {wrong} do not follow the lake's naming <prefix>-<zone>")
    return out


def admit_plain_http(s3: Any, bucket: str, notes: list[str]) -> None:
    """Drop the bucket policy's TLS-only Deny, which moto cannot evaluate.

    moto (5.2) evaluates only StringEquals conditions and applies a Deny whose
    condition it cannot read as if it had none: ``DenyInsecureTransport``
    (``aws:SecureTransport`` false) would refuse every object call, over HTTPS
    too. AWS itself lets the platform's and the probes' HTTPS calls through.
    """
    from botocore.exceptions import ClientError

    try:
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    except ClientError:
        return  # no policy: nothing to drop
    statements = policy.get("Statement") or []
    keep = [st for st in statements
            if not (st.get("Effect") == "Deny" and "aws:SecureTransport" in json.dumps(st.get("Condition") or {}))]
    if len(keep) == len(statements):
        return
    if keep:
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({**policy, "Statement": keep}))
    else:
        s3.delete_bucket_policy(Bucket=bucket)
    notes.append(f"bucket {bucket}: its TLS-only Deny was dropped (moto applies it to every object call "
                 "without evaluating aws:SecureTransport)")


def activity(settings: Settings, seeded: Seeded, make: Callable[[str], Any]) -> dict[str, Any]:
    """Backfill the last 30 trading days (the S18 range) into the stack's buckets; returns the backfill's report."""
    from connectors.fmp.simulator import SimulatorServer
    from connectors.fmp.universe import resolve
    from flows.backfill_report import ResourceMeter, write_report
    from flows.quality_coverage import last_sessions, latest_expected_session
    from validation.backfill import TRADING_DAYS as DAYS

    lake = lake_settings(settings, seeded)
    for zone in ("bronze", "silver"):
        admit_plain_http(make("s3"), seeded.outputs["buckets"][zone], seeded.notes)
    days = last_sessions(latest_expected_session(), DAYS)
    symbols = resolve(lake.universe)
    meter, started = ResourceMeter.start(), time.monotonic()
    engines = _Engines()
    with SimulatorServer(port=0, universe_size=max(len(symbols), 1)) as sim, engines:
        source = lake.model_copy(update={"fmp_base_url": sim.base_url, "fmp_calls_per_minute": 60_000})
        with cf.ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
            results = list(pool.map(lambda d: _date(source, d, engines.mine(), snapshots=d == days[-1]), days))
    failed = [r for r in results if r["status"] != "ok"]
    if failed:
        raise RuntimeError(f"seeding the lake failed for {len(failed)} date(s): {failed[:3]}")
    report = {"start": days[0].isoformat(), "end": days[-1].isoformat(), "dates": len(days), "ran": len(results),
              "skipped": 0, "failed": [], "concurrency": CONCURRENCY, "bulk": True, "datasets": ["eod"],
              "seconds": round(time.monotonic() - started, 2), "results": results,
              "gold": "not run", "resources": meter.stop()}
    report["report_uri"] = write_report(lake, report)
    return report


class _Engines:
    """One DuckDB engine per worker thread (a connection is not shared between threads), closed at the end."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()

    def mine(self) -> Any:
        if not hasattr(self._local, "engine"):
            from jobs.engines import make_engine

            self._local.engine = make_engine("duckdb", threads=1)  # the workers are the parallelism
            with self._lock:
                self._all.append(self._local.engine)
        return self._local.engine

    def __enter__(self) -> _Engines:
        return self

    def __exit__(self, *exc: object) -> None:
        for engine in self._all:
            engine.close()


def _date(settings: Settings, day: dt.date, engine: Any, *, snapshots: bool) -> dict[str, Any]:
    """One date as ``flows.backfill.backfill_date`` does it: ingest, bronze→silver, the run record."""
    from connectors.fmp.ingest import run_ingest
    from core.clock import now_iso
    from flows.common import write_record
    from jobs import bronze_to_silver

    iso, t0 = day.isoformat(), time.monotonic()
    ingested = [run_ingest(settings, iso, "eod", bulk=True)]
    if snapshots:
        ingested += [run_ingest(settings, iso, ds) for ds in ("quotes", "profiles")]
    bad = [f"{r.dataset}: {r.failed_symbols or r.stopped}" for r in ingested if not r.ok]
    if bad:
        return {"date": iso, "status": "failed", "error": "; ".join(bad)}
    silver = ["eod_prices", "quotes", "profiles"] if snapshots else ["eod_prices"]
    transformed = bronze_to_silver.run(settings, iso, silver, engine_instance=engine)
    if not transformed.ok:
        return {"date": iso, "status": "failed", "error": f"bronze→silver: {transformed.to_dict()}"}
    write_record(settings, day, {"date": iso, "finished_at": now_iso(), "silver": "ok", "by": "backfill",
                                 "rows_written": transformed.rows_written})
    return {"date": iso, "status": "ok", "seconds": round(time.monotonic() - t0, 2),
            "rows_written": transformed.rows_written}
