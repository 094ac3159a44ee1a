"""Checks for S17: the quality gate and the quality records it reads.

* the gate: on a copy of the environment's lake, failing dbt tests block the
  publish, the published gold stays byte for byte, and the failed build's
  quality record says why;
* the records: a run's `<gold>/_quality/<run_id>.json` is what the flows and
  monitoring read: the dbt flow's publication names it, and the run's
  DataQualityScore datapoint in CloudWatch is its score.

Both run the daily pipeline on a scratch lake under the check's work dir.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from core.lake import zone_uri
from finks.checks import CheckContext, CheckFailed, Evidence
from validation import support

GOOD_DATE = "2024-03-14"


def quality_gate_blocks_publish(ctx: CheckContext) -> Evidence:
    """On a copy of the environment's lake (the gold the S16 action published): a bad
    partition of an earlier date arrives, the date is rerun, and the gate must keep the
    published gold byte for byte."""
    import shutil

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from core.gold import published_uri, read_published
    from core.lake import lake_root
    from flows.calendar import parse_date, previous_trading_day
    from flows.master_flow import PipelineFailed, daily_pipeline
    from jobs.quality import latest_quality
    from validation.pipeline import pipeline_date

    settings = support.stack(ctx.settings)
    if read_published(settings) is None:
        raise CheckFailed(f"no published gold at {published_uri(settings)} for the gate to protect: "
                          "run 'finks run s16' first")
    date = pipeline_date(settings)
    lake = support.scratch_lake(settings, ctx.work_dir / "quality-gate" / "lake")
    shutil.copytree(lake_root(settings), lake_root(lake))
    gold_root, silver_root = Path(zone_uri(lake, "gold")), Path(zone_uri(lake, "silver"))
    good_file = next(iter(sorted(silver_root.glob(f"eod_prices/date={date}/*.parquet"))), None)
    if good_file is None:
        raise CheckFailed(f"no silver eod_prices for {date} in {zone_uri(settings, 'silver')}: run 'finks run s16' first")
    before = support.partition_tables(gold_root, "marts/*.parquet")
    published = (gold_root / "_published.json").read_text()
    # An earlier date written by a faulty engine: high < low breaks the dbt tests over all of silver.
    bad_date: dt.date = previous_trading_day(parse_date(date))
    good = pq.read_table(good_file)
    bad = good.set_column(good.schema.get_field_index("high"), "high", pc.subtract(good["low"], 1.0))
    bad = bad.set_column(bad.schema.get_field_index("date"), "date",
                         pa.array([bad_date] * bad.num_rows, good.schema.field("date").type))
    target = silver_root / "eod_prices" / f"date={bad_date.isoformat()}" / "part-0.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(bad, target)
    with support.fmp(lake) as source:
        try:
            daily_pipeline(date=date, settings=source, retry=support.SCRATCH_RETRY)
            raise CheckFailed("the pipeline published gold although silver breaks the dbt tests")
        except PipelineFailed as exc:
            message, steps = exc.message, {s["step"]: s["status"] for s in exc.steps}
    after = support.partition_tables(gold_root, "marts/*.parquet")
    kept = (gold_root / "_published.json").read_text() == published and after.keys() == before.keys() \
        and all(after[k].equals(before[k]) for k in before)
    if steps.get("dbt") != "failed" or not kept:
        raise CheckFailed("dbt test failures did not block the publish", figures={"steps": steps, "gold_kept": kept})
    record = latest_quality(lake) or {}
    if record.get("published") or not record.get("tests_failed") or str(record.get("run_id")) in published:
        raise CheckFailed("the blocked build left no quality record of its failing tests",
                          figures={"record": {k: record.get(k) for k in ("run_id", "published", "tests_failed")}})
    return Evidence(f"a bad {bad_date} partition failed the dbt tests of the {date} rerun: the publish was blocked, "
                    f"the published gold stayed byte-for-byte; quality record {record['run_id']} names "
                    f"{record['tests_failed']} failing test(s)",
                    figures={"steps": steps, "message": message[:300], "failed_tests": record.get("failed_tests")})


def quality_results_read(ctx: CheckContext) -> Evidence:
    # CloudWatch of its own: the score's one datapoint in the window must be this run's.
    return support.on_own_emulator(ctx, "quality-read", GOOD_DATE, _read_back)


def _read_back(lake: Any, result: dict[str, Any], start: Any, end: Any) -> Evidence:
    from jobs.quality import quality_uri, read_quality

    dbt = result["results"]["dbt"]
    run_id = dbt.get("run_id")
    where = quality_uri(lake, run_id) if run_id else "<no dbt run id>"
    record = read_quality(lake, run_id) if run_id else None
    if record is None or record.get("run_id") != run_id or not record.get("tests_run"):
        raise CheckFailed(f"the run's dbt build left no quality record with tests at {where}")
    read = (dbt.get("publication") or {}).get("quality") or {}
    if read.get("record") != where or read.get("quality_score") != record["quality_score"]:
        raise CheckFailed(f"the dbt flow's quality gate did not read {where}", figures={"gate_read": read})
    score = round(100.0 * float(record["quality_score"]), 2)
    stats = support.metric_stats(lake, "DataQualityScore", {"Step": "quality"}, start, end)
    if stats["samples"] != 1 or stats["min"] != score or stats["max"] != score:
        raise CheckFailed(f"monitoring does not report the record's score {score}: DataQualityScore in the run's "
                          f"window has {stats['samples']} datapoint(s), {stats['min']}..{stats['max']}",
                          figures={"record": where, "datapoints": stats})
    return Evidence(f"quality record {where} ({record['tests_passed']}/{record['tests_run']} tests passed) is read by "
                    f"the dbt flow's gate and reported to CloudWatch as DataQualityScore={score}",
                    figures={"record": where, "score": score, "tests_run": record["tests_run"]})
