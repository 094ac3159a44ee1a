"""Check for S17: the quality gate. Failing dbt tests block the publish and the
previous gold stays, byte for byte. Runs on a scratch lake (validation.support)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from core.lake import zone_uri
from finks.checks import CheckContext, CheckFailed, Evidence
from validation import support

GOOD_DATE, BAD_DATE, NEXT_DATE = "2024-03-14", dt.date(2024, 3, 13), "2024-03-15"


def quality_gate_blocks_publish(ctx: CheckContext) -> Evidence:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from flows.master_flow import PipelineFailed, daily_pipeline

    settings = support.stack(ctx.settings)
    lake = support.scratch_lake(settings, ctx.work_dir / "quality-gate" / "lake")
    with support.fmp(lake) as source:
        daily_pipeline(date=GOOD_DATE, settings=source, retry=support.SCRATCH_RETRY)
        gold_root, silver_root = Path(zone_uri(lake, "gold")), Path(zone_uri(lake, "silver"))
        before = support.partition_tables(gold_root, "marts/*.parquet")
        published = (gold_root / "_published.json").read_text()
        # An older date written by a faulty engine: high < low breaks the dbt tests over all of silver.
        good = pq.read_table(next(silver_root.glob(f"eod_prices/date={GOOD_DATE}/*.parquet")))
        bad = good.set_column(good.schema.get_field_index("high"), "high", pc.subtract(good["low"], 1.0))
        bad = bad.set_column(bad.schema.get_field_index("date"), "date",
                             pa.array([BAD_DATE] * bad.num_rows, good.schema.field("date").type))
        target = silver_root / "eod_prices" / f"date={BAD_DATE.isoformat()}" / "part-0.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(bad, target)
        try:
            daily_pipeline(date=NEXT_DATE, settings=source, retry=support.SCRATCH_RETRY)
            raise CheckFailed("the pipeline published gold although silver breaks the dbt tests")
        except PipelineFailed as exc:
            message, steps = exc.message, {s["step"]: s["status"] for s in exc.steps}
    after = support.partition_tables(gold_root, "marts/*.parquet")
    kept = (gold_root / "_published.json").read_text() == published and after.keys() == before.keys() \
        and all(after[k].equals(before[k]) for k in before)
    if steps.get("dbt") != "failed" or not kept:
        raise CheckFailed("dbt test failures did not block the publish", figures={"steps": steps, "gold_kept": kept})
    return Evidence("failing dbt tests blocked the publish; the previous gold stayed byte-for-byte",
                    figures={"steps": steps, "message": message[:300]})
