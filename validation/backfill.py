"""Checks for S18: a 30-trading-day backfill of the default universe, with its resource use."""

from __future__ import annotations

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
    """The recorded backfill covers 30 trading days, each with silver rows in the lake,
    gold is published, and the resources it used were measured."""
    import pyarrow.parquet as pq

    from core.gold import read_published
    from core.lake import zone_uri
    from flows.calendar import parse_date, trading_days
    from flows.common import completed_dates

    settings = ctx.settings
    out = backfill_record(settings)
    if not out.is_file():
        run_backfill_30_days(ctx)
    record = json.loads(out.read_text())
    report, resources = record.get("report") or {}, record.get("resources") or {}
    days = trading_days(parse_date(record["start"]), parse_date(record["end"]))
    done = completed_dates(settings)
    missing = [d for d in days if d not in done]
    silver = Path(zone_uri(settings, "silver"))
    rows = {d.isoformat(): sum(pq.read_metadata(p).num_rows
                               for p in silver.glob(f"eod_prices/date={d.isoformat()}/*.parquet")) for d in days}
    empty = sorted(d for d, n in rows.items() if n <= 0 and parse_date(d) not in missing)
    problems = []
    if len(days) < TRADING_DAYS:
        problems.append(f"{len(days)} trading days, expected {TRADING_DAYS}")
    if missing or report.get("failed"):
        problems.append(f"{len(missing)} dates not completed, {len(report.get('failed') or [])} failed")
    if empty:
        problems.append(f"{len(empty)} completed dates have no silver eod_prices rows (e.g. {empty[0]})")
    if report.get("gold") != "published" or read_published(settings) is None:
        problems.append(f"gold {report.get('gold')}, _published.json {'present' if read_published(settings) else 'missing'}")
    if not all(float(resources.get(k) or 0) > 0 for k in ("wall_s", "cpu_s", "peak_rss_mb")):
        problems.append(f"resource usage not measured: {resources}")
    if problems:
        raise CheckFailed(f"backfill {record['start']}..{record['end']}: " + "; ".join(problems),
                          figures={"missing": [d.isoformat() for d in missing[:10]], "empty": empty[:10],
                                   "gold": report.get("gold"), "resources": resources})
    return Evidence(f"{len(days)} trading days {record['start']}..{record['end']} complete with "
                    f"{sum(rows.values())} silver eod_prices rows, gold published; resources: {resources}",
                    figures={**record, "silver_rows": sum(rows.values())})
