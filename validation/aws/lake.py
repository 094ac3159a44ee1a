"""Live probes for S15 and S18: what the running platform left in the lake's buckets.

* :func:`bronze_landed` (S15, S3 upload): for the latest trading day, each
  dataset of the daily pipeline has a complete ingestion in the bronze bucket
  whose objects are all there, parse, and match its manifest;
* :func:`extraction_complete` (S15, full extraction): the day's manifests give
  every symbol of the configured universe an outcome, and none failed;
* :func:`backfill_covers_30_days` (S18): the silver bucket holds a partition
  with that date's rows for each of the last 30 XNYS sessions — a missing
  session is named by its date, a closure (holiday, unscheduled closure) is
  expected empty — and a backfill of 30 sessions left its report with the
  resources it used (``flows.backfill_report``).

The latest trading day is the session the daily pipeline last ran for: it
runs at 02:00 UTC for the previous session (prefect.yaml), so until a few
hours past midnight UTC the session before counts
(``flows.quality_coverage.latest_expected_session``).

The layouts are the platform's own: ``fmp/<dataset>/date=D/ingested_at=T/``
with ``_manifest.json`` written last (connectors.fmp.writer), silver
``<dataset>/date=D/part-0.parquet`` (core.lake.replace_partition).
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
from typing import Any

from finks.checks import CheckContext, Evidence
from flows.common import DEFAULT_DATASETS as DATASETS  # what the daily pipeline ingests
from flows.quality_coverage import Coverage, last_sessions
from flows.quality_coverage import latest_expected_session as latest_trading_day
from validation.aws.live import Live
from validation.backfill import (
    TRADING_DAYS as BACKFILL_DAYS,  # the S18 backfill's range, locally too
)

KMS_NOTE = "SSE-KMS is stored, not enforced: on AWS reading the objects also needs kms:Decrypt on the lake key"


def _bucket(live: Live, zone: str) -> str:
    buckets = live.buckets()
    if zone not in buckets:
        raise live.nothing_deployed(f"{zone} bucket")
    return buckets[zone]


def _keys(s3: Any, bucket: str, prefix: str, start_after: str = "") -> list[str]:
    keys: list[str] = []
    kwargs = {"StartAfter": start_after} if start_after else {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, **kwargs):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def _get(s3: Any, bucket: str, key: str) -> bytes | None:
    from botocore.exceptions import ClientError

    try:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise


# ---- bronze: the day's ingestions and their manifests ---------------------------------------
def _ingestions(s3: Any, bucket: str, dataset: str, day: dt.date) -> tuple[dict[str, set[str]], str]:
    """folder -> names of the objects in it, for each ``ingested_at=`` folder of the day."""
    base = f"fmp/{dataset}/date={day.isoformat()}/"  # connectors.fmp.writer.BronzeWriter's layout
    folders: dict[str, set[str]] = {}
    for key in _keys(s3, bucket, base):
        folder, _, name = key.rpartition("/")
        if folder.rsplit("/", 1)[-1].startswith("ingested_at="):
            folders.setdefault(folder + "/", set()).add(name)
    return folders, base


def _manifests(s3: Any, bucket: str, folders: dict[str, set[str]]) -> tuple[list[tuple[str, Any]], list[str]]:
    """The complete ingestions, newest first, as (folder, parsed manifest or None when unreadable)."""
    from connectors.fmp.writer import MANIFEST

    out, problems = [], []
    for folder in sorted((f for f, names in folders.items() if MANIFEST in names), reverse=True):
        raw = _get(s3, bucket, folder + MANIFEST)
        try:
            out.append((folder, json.loads(raw or b"")))
        except ValueError:
            problems.append(f"manifest s3://{bucket}/{folder}{MANIFEST} is not valid JSON")
            out.append((folder, None))
    return out, problems


def _day_ingestions(s3: Any, bucket: str, dataset: str, day: dt.date) -> tuple[dict[str, set[str]], str,
                                                                       list[tuple[str, Any]], list[str]]:
    """The day's ingestion folders of ``dataset``, its base prefix, their manifests (newest first) and
    the problems of those that could not be read: what both bronze probes start from."""
    folders, base = _ingestions(s3, bucket, dataset, day)
    manifests, unreadable = _manifests(s3, bucket, folders)
    return folders, base, manifests, unreadable


def _verify(s3: Any, bucket: str, folder: str, names: set[str], manifest: dict[str, Any],
            dataset: str, day: dt.date) -> tuple[list[str], dict[str, Any]]:
    """An ingestion's objects against its manifest: present, checksums, gzipped JSON, record counts."""
    where = f"s3://{bucket}/{folder}"
    problems = []
    if manifest.get("dataset") != dataset or manifest.get("date") != day.isoformat():
        problems.append(f"manifest {where}_manifest.json is for {manifest.get('dataset')} {manifest.get('date')}, "
                        f"not {dataset} {day}")
    listed = {str(f.get("path")): f for f in manifest.get("files") or []}
    records = 0
    for name, entry in sorted(listed.items()):
        blob = _get(s3, bucket, folder + name) if name in names else None
        if blob is None:
            problems.append(f"{where}{name} listed in its manifest is missing")
            continue
        if hashlib.sha256(blob).hexdigest() != entry.get("sha256"):
            problems.append(f"{where}{name} does not match its manifest's checksum")
            continue
        try:
            data = json.loads(gzip.decompress(blob))
        except (OSError, ValueError):
            problems.append(f"{where}{name} is not gzipped JSON")
            continue
        if not isinstance(data, list) or len(data) != entry.get("records"):
            problems.append(f"{where}{name} holds {len(data) if isinstance(data, list) else 'no list of'} records, "
                            f"its manifest says {entry.get('records')}")
        records += len(data) if isinstance(data, list) else 0
    stray = sorted(n for n in names if n.startswith("part-") and n not in listed)
    problems += [f"{where}{n} is not in its manifest" for n in stray]
    return problems, {"ingestion": where, "files": len(listed), "records": records, "mode": manifest.get("mode")}


def bronze_landed(ctx: CheckContext) -> Evidence:
    """For the latest trading day, the newest complete ingestion of each dataset the daily pipeline
    lands (quotes, profiles, EOD) is in the bronze bucket: every object its manifest lists is there,
    matches its checksum and holds its records as gzipped JSON, and no part is left out of it."""
    live = Live.of(ctx)
    bucket, day = _bucket(live, "bronze"), latest_trading_day()
    s3 = live.client("s3")
    problems: list[str] = []
    seen: dict[str, Any] = {}
    for dataset in DATASETS:
        folders, base, manifests, unreadable = _day_ingestions(s3, bucket, dataset, day)
        problems += unreadable
        complete = [(f, m) for f, m in manifests if m is not None]
        if not complete:
            if not unreadable:
                problems.append(f"no complete ingestion of {dataset} for {day} in s3://{bucket}/{base} "
                                f"({len(folders)} folder(s) without _manifest.json)")
            continue
        folder, manifest = complete[0]
        found, figures = _verify(s3, bucket, folder, folders[folder], manifest, dataset, day)
        problems += found
        seen[dataset] = {**figures, "complete_ingestions": len(complete), "unfinished": len(folders) - len(manifests)}
    figures = {"bucket": bucket, "date": day.isoformat(), "datasets": seen}
    if problems:
        raise live.fail(problems, figures, f"rerun the date's ingestion: `finks pipeline run --env {ctx.env} "
                                           f"--date {day} --force` (it lands the objects, then the manifest)")
    return live.evidence(f"bronze for {day} in {bucket}: " + ", ".join(
        f"{ds} {s['files']} objects / {s['records']} records" for ds, s in seen.items())
        + ", each matching its manifest", figures, [KMS_NOTE])


# ---- the full extraction: the universe's outcomes ---------------------------------------------
def extraction_complete(ctx: CheckContext) -> Evidence:
    """For the latest trading day, each dataset's manifests give every symbol of the configured
    universe (FINKS_UNIVERSE) an outcome — the newest manifest naming a symbol decides — with no
    symbol failed, and some symbol returned data."""
    from connectors.fmp.universe import resolve

    live = Live.of(ctx)
    bucket, day = _bucket(live, "bronze"), latest_trading_day()
    universe = resolve(live.settings.universe)
    s3 = live.client("s3")
    problems: list[str] = []
    seen: dict[str, Any] = {}
    for dataset in DATASETS:
        _, base, manifests, unreadable = _day_ingestions(s3, bucket, dataset, day)
        problems += unreadable
        complete = [(f, m) for f, m in manifests if m is not None]
        if not complete:
            if not unreadable:
                problems.append(f"no complete ingestion of {dataset} for {day} in s3://{bucket}/{base}")
            continue
        outcome: dict[str, tuple[str, dict[str, Any]]] = {}
        for folder, manifest in complete:  # newest first: the newest outcome of a symbol stands
            for symbol, result in (manifest.get("symbols") or {}).items():
                outcome.setdefault(symbol, (folder, result))
        missing = [s for s in universe if s not in outcome]
        failed = {s: outcome[s] for s in universe if s in outcome and outcome[s][1].get("status") == "failed"}
        counts = {k: sum(1 for s in universe if s in outcome and outcome[s][1].get("status") == k)
                  for k in ("ok", "no_data", "failed")}
        latest = f"s3://{bucket}/{complete[0][0]}_manifest.json"
        if failed:
            named = ", ".join(f"{s} ({(r.get('error') or '?')[:80]})" for s, (_, r) in list(failed.items())[:5])
            problems.append(f"{dataset} for {day}: {len(failed)} of {len(universe)} symbols failed in {latest}: {named}")
        if missing:
            problems.append(f"{dataset} for {day}: {len(missing)} of {len(universe)} symbols of universe "
                            f"{live.settings.universe!r} have no outcome in any manifest ({', '.join(missing[:10])})")
        if not counts["ok"] and not failed and not missing:
            problems.append(f"{dataset} for {day}: no symbol of the universe returned data ({latest})")
        seen[dataset] = {"manifest": latest, "manifests": len(complete), **counts,
                         "failed_symbols": sorted(failed), "missing_symbols": missing}
    figures = {"bucket": bucket, "date": day.isoformat(), "universe": live.settings.universe,
               "symbols": len(universe), "datasets": seen}
    if problems:
        raise live.fail(problems, figures, f"rerun the date: `finks pipeline run --env {ctx.env} --date {day}` "
                                           "fetches what has not landed; check FMP for the failed symbols' errors")
    return live.evidence(f"the {day} extraction gave all {len(universe)} symbols of universe "
                         f"{live.settings.universe!r} an outcome, none failed: " + ", ".join(
                             f"{ds} {s['ok']} ok / {s['no_data']} no data" for ds, s in seen.items()), figures)


# ---- S18: 30 trading days of silver, and the backfill's report ------------------------------
def silver_coverage(live: Live, end: dt.date, count: int = BACKFILL_DAYS,
                    dataset: str = "eod_prices") -> tuple[Coverage, list[str], dict[str, Any]]:
    """The last ``count`` XNYS sessions up to ``end`` against the silver partitions of ``dataset``:
    a session without a partition is missing, one whose partition holds no rows or another date's
    is a problem of its own (figures ``bad``); closures expect none."""
    import pyarrow.parquet as pq

    from flows.quality_coverage import PARTITION, coverage, partition_date

    bucket, s3 = _bucket(live, "silver"), live.client("s3")
    sessions = last_sessions(end, count)
    start = sessions[0]
    keys = _keys(s3, bucket, f"{dataset}/date=", start_after=f"{dataset}/date={start.isoformat()}")
    by_date = {d: k for k in keys if k.endswith("/" + PARTITION)
               and (d := partition_date(k.split("/")[1])) is not None and start <= d <= end}
    problems, rows, bad = [], {}, []
    for day in sessions:
        if day not in by_date:
            continue
        table = pq.read_table(io.BytesIO(_get(s3, bucket, by_date[day]) or b""), columns=["date"])
        dates = {str(v)[:10] for v in table["date"].to_pylist()}
        rows[day.isoformat()] = table.num_rows
        wrong = ("no rows" if not table.num_rows else
                 f"rows of {sorted(dates)[:3]}, not {day}" if dates != {day.isoformat()} else None)
        if wrong:
            problems.append(f"s3://{bucket}/{by_date[day]} holds {wrong}")
            bad.append(day.isoformat())
    cov = coverage(start, end, by_date)
    if cov.missing:
        problems.insert(0, cov.describe(f"silver s3://{bucket}/{dataset}/"))
    return cov, problems, {"bucket": bucket, "dataset": dataset, **cov.to_dict(), "bad": bad,
                           "rows": sum(rows.values())}


def _backfill_report(live: Live, count: int) -> tuple[list[str], dict[str, Any]]:
    """The newest backfill report of at least ``count`` sessions: complete, with its resources measured."""
    from flows.backfill_report import REPORTS, RESOURCE_FIGURES, measured

    bucket, s3 = _bucket(live, "silver"), live.client("s3")
    where = f"s3://{bucket}/{REPORTS}/"
    for key in sorted((k for k in _keys(s3, bucket, REPORTS + "/") if k.endswith(".json")), reverse=True)[:20]:
        try:
            report = json.loads(_get(s3, bucket, key) or b"")
        except ValueError:
            continue
        if int(report.get("dates") or 0) < count:
            continue
        uri, resources = f"s3://{bucket}/{key}", report.get("resources") or {}
        figures = {"report": uri, "range": f"{report.get('start')}..{report.get('end')}", "resources": resources}
        problems = []
        if report.get("failed") or str(report.get("gold", "")).startswith("failed"):
            problems.append(f"backfill {figures['range']} ({uri}) did not complete: "
                            f"{len(report.get('failed') or [])} dates failed, gold {report.get('gold')}")
        if not measured(resources):
            problems.append(f"backfill {figures['range']} ({uri}) recorded no resource usage "
                            f"({', '.join(RESOURCE_FIGURES)}): {resources or 'none'}")
        return problems, figures
    return [f"no report of a backfill of {count} or more trading days under {where}"], {"report": None}


def backfill_covers_30_days(ctx: CheckContext) -> Evidence:
    """The silver bucket holds the eod_prices partition of each of the last 30 XNYS sessions, with
    that date's rows (closures expect none and are never reported missing), and the newest backfill
    of 30 sessions completed and recorded its wall time, CPU time and peak RSS in its report."""
    live = Live.of(ctx)
    cov, problems, figures = silver_coverage(live, latest_trading_day())
    found, report = _backfill_report(live, BACKFILL_DAYS)
    problems += found
    figures = {**figures, "backfill": report}
    if problems:
        rebuild = sorted({*(d.isoformat() for d in cov.missing), *figures["bad"]})
        if rebuild:
            first, last = rebuild[0], rebuild[-1]
            remedy = (f"rebuild it: `finks pipeline run --env {ctx.env} --date {first}`" if first == last else
                      f"rebuild them: `finks backfill --env {ctx.env} --start {first} --end {last} --force`")
            remedy += " (a backfill skips dates recorded complete unless --force)"
        else:
            remedy = (f"run the backfill: `finks backfill --env {ctx.env} --start {cov.start} --end {cov.end}` "
                      "(it keeps its report, with its resources, in the silver bucket)")
        raise live.fail(problems, figures, remedy)
    closures = f"; closures {', '.join(figures['closures'])} expected empty" if figures["closures"] else ""
    return live.evidence(f"silver {figures['bucket']} holds all {len(cov.sessions)} trading days {cov.start}..{cov.end} "
                         f"({figures['rows']} eod_prices rows){closures}; backfill {report['range']} recorded "
                         f"{report['resources']}", figures,
                         [KMS_NOTE, "the resources are the backfill flow's own process; its ECS tasks and Glue "
                          "runs report theirs in Container Insights and the Glue job metrics, not read here"])
