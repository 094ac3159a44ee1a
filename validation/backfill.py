"""Checks for S18: a 30-trading-day backfill of the default universe, with its resource use."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from pathlib import Path

from core.settings import Settings
from finks.checks import CheckContext, CheckFailed, Evidence
from validation import support

TRADING_DAYS = 30


def backfill_range(days: int = TRADING_DAYS) -> tuple[str, str]:
    """The last `days` trading days, ending with the previous one."""
    from flows.calendar import previous_trading_day, trading_days

    end = previous_trading_day()
    start = end
    while len(trading_days(start, end)) < days:
        start = start.fromordinal(start.toordinal() - 1)
    return start.isoformat(), end.isoformat()


def backfill_record(settings: Settings) -> Path:
    """Where the S18 action records its range, report and resources."""
    return settings.home / "pipeline" / "backfill_30_days.json"


def run_backfill_30_days(ctx: CheckContext) -> Evidence:
    """Task action (S18): backfill the last 30 trading days of the default universe, with resource use.
    An incomplete backfill is recorded too (the check judges it) and fails the action."""
    import psutil

    from flows.backfill import BackfillIncomplete, backfill_flow

    settings = support.stack(ctx.settings)
    start, end = backfill_range()
    proc = psutil.Process()
    peak = {"rss": proc.memory_info().rss, "cpu_percent": 0.0}
    stop = threading.Event()

    def sample() -> None:
        proc.cpu_percent(None)
        while not stop.wait(0.5):
            rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
            peak["rss"] = max(peak["rss"], rss)
            peak["cpu_percent"] = max(peak["cpu_percent"], proc.cpu_percent(None))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu0 = proc.cpu_times()
    t0 = time.monotonic()
    incomplete: BackfillIncomplete | None = None
    try:
        with support.fmp(settings) as source:
            report = backfill_flow(start=start, end=end, concurrency=4, settings=source)
    except BackfillIncomplete as exc:
        incomplete, report = exc, exc.report
    finally:
        stop.set()
        sampler.join()
    cpu1 = proc.cpu_times()
    resources = {"wall_s": round(time.monotonic() - t0, 1),
                 "cpu_s": round((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system), 1),
                 "peak_rss_mb": round(peak["rss"] / 2**20), "peak_cpu_percent": peak["cpu_percent"]}
    record = {"start": start, "end": end, "report": {k: v for k, v in report.items() if k != "results"},
              "resources": resources}
    out = backfill_record(settings)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, default=str))
    if incomplete is not None:
        raise CheckFailed(f"backfill {start}..{end} incomplete: {incomplete}", figures=record) from incomplete
    return Evidence(f"backfill {start}..{end}: {report['ran']} ran, {report['skipped']} skipped in {resources['wall_s']}s; "
                    f"peak RSS {resources['peak_rss_mb']} MB, CPU {resources['cpu_s']}s", figures=record)


def backfill_30_days(ctx: CheckContext) -> Evidence:
    """The recorded backfill covers 30 trading days (XNYS sessions), each completed with silver
    rows in the lake and in the published gold, and the resources it used were measured. A
    missing session is named by its date; a closure in the range (holiday, unscheduled closure)
    is expected to hold nothing."""
    import pyarrow.parquet as pq

    from core.gold import mart_uri, read_published
    from core.lake import zone_uri
    from flows.common import completed_dates
    from flows.quality_coverage import coverage, gold_dates, silver_dates

    settings = ctx.settings
    out = backfill_record(settings)
    if not out.is_file():
        run_backfill_30_days(ctx)
    record = json.loads(out.read_text())
    report, resources = record.get("report") or {}, record.get("resources") or {}
    done = coverage(record["start"], record["end"], completed_dates(settings))
    days, missing = list(done.sessions), done.missing
    silver = Path(zone_uri(settings, "silver"))
    in_silver = coverage(done.start, done.end, silver_dates(settings))
    rows = {d.isoformat(): sum(pq.read_metadata(p).num_rows
                               for p in silver.glob(f"eod_prices/date={d.isoformat()}/*.parquet")) for d in days}
    empty = sorted(d for d, n in rows.items() if n <= 0 and dt.date.fromisoformat(d) not in missing)
    in_gold = gold_dates(settings)
    gold = coverage(done.start, done.end, in_gold or ())
    problems = []
    if len(days) < TRADING_DAYS:
        problems.append(f"{len(days)} trading days, expected {TRADING_DAYS}")
    if missing or report.get("failed"):
        named = f" ({', '.join(d.isoformat() for d in missing[:10])})" if missing else ""
        problems.append(f"{len(missing)} dates not completed{named}, {len(report.get('failed') or [])} failed")
    if empty:
        problems.append(f"{len(empty)} completed dates have no silver eod_prices rows ({', '.join(empty[:10])})")
    if report.get("gold") != "published" or read_published(settings) is None:
        problems.append(f"gold {report.get('gold')}, _published.json {'present' if read_published(settings) else 'missing'}")
    elif in_gold is None:
        problems.append(f"published gold has no fct_daily_prices mart at {mart_uri(settings, 'fct_daily_prices')}")
    elif gold.missing:
        problems.append(gold.describe("gold fct_daily_prices"))
    if not all(float(resources.get(k) or 0) > 0 for k in ("wall_s", "cpu_s", "peak_rss_mb")):
        problems.append(f"resource usage not measured: {resources}")
    calendar = {"closures": [d.isoformat() for d in done.closures], "silver": in_silver.to_dict(),
                "gold": gold.to_dict() if in_gold is not None else None}
    if problems:
        raise CheckFailed(f"backfill {record['start']}..{record['end']}: " + "; ".join(problems),
                          figures={"missing": [d.isoformat() for d in missing], "empty": empty,
                                   "gold": report.get("gold"), "resources": resources, **calendar})
    closed = f"; closures {', '.join(calendar['closures'])} expected empty" if calendar["closures"] else ""
    return Evidence(f"{len(days)} trading days {record['start']}..{record['end']} complete with "
                    f"{sum(rows.values())} silver eod_prices rows, gold published{closed}; resources: {resources}",
                    figures={**record, "silver_rows": sum(rows.values()), **calendar})
