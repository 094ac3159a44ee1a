"""Live probe for S16 "Flows are idempotent", read from what reruns left (nothing is written).

Running a date twice to compare would write to the environment's lake; instead the probe
reads what the pipeline's own reruns left behind. For each of the last sessions (XNYS) and
each silver dataset, every row of the date's partition is unique on the dataset's key
(``jobs.datasets``: latest ingestion wins), however many ingestions bronze holds for that
date: a rerun that appended instead of replacing shows as a duplicate key. The evidence
counts the dates that really were ingested more than once, so a window without a rerun says
that only uniqueness was shown.
"""

from __future__ import annotations

import io
from typing import Any

from finks.checks import CheckContext, Evidence
from validation.aws.live import Live

WINDOW = 10  # sessions back from the latest expected one


def _keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _ingestions(s3: Any, bronze: str, dataset: str, day: str) -> int:
    """How many complete ingestions bronze holds for the date (``fmp/<dataset>/date=D/ingested_at=T/``,
    each with its ``_manifest.json``: connectors.fmp.writer's layout)."""
    return sum(1 for k in _keys(s3, bronze, f"fmp/{dataset}/date={day}/") if k.endswith("/_manifest.json"))


def reruns_left_no_duplicates(ctx: CheckContext) -> Evidence:
    """Every silver partition of the last sessions holds one row per key, reruns or not."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from flows.quality_coverage import last_sessions, latest_expected_session
    from jobs.datasets import DATASETS

    live = Live.of(ctx)
    buckets = live.buckets()
    if "silver" not in buckets:
        raise live.nothing_deployed("silver bucket")
    s3, silver, bronze = live.client("s3"), buckets["silver"], buckets.get("bronze")
    problems: list[str] = []
    checked: dict[str, int] = {}
    reruns: list[str] = []
    for day in (d.isoformat() for d in last_sessions(latest_expected_session(), WINDOW)):
        for name, dataset in DATASETS.items():
            parts = [k for k in _keys(s3, silver, f"{name}/date={day}/") if k.endswith(".parquet")]
            if not parts:
                continue  # coverage is the backfill probe's; here only what is there
            table = pa.concat_tables([pq.read_table(io.BytesIO(s3.get_object(Bucket=silver, Key=k)["Body"].read()),
                                                    columns=list(dataset.key)) for k in parts])
            rows = table.num_rows
            unique = table.group_by(list(dataset.key)).aggregate([]).num_rows
            checked[f"{name}/{day}"] = rows
            if unique != rows:
                problems.append(f"s3://{silver}/{name}/date={day}/: {rows - unique} duplicate {'+'.join(dataset.key)} "
                                f"rows in {len(parts)} file(s) — a rerun appended instead of replacing")
            if bronze and _ingestions(s3, bronze, dataset.bronze, day) > 1:
                reruns.append(f"{name}/{day}")
    figures = {"partitions": len(checked), "rows": sum(checked.values()), "rerun_partitions": reruns}
    if not checked:
        raise live.fail([f"no silver partition in s3://{silver} for the last {WINDOW} sessions"], figures,
                        f"run the daily pipeline on {ctx.env} (`finks pipeline run --env {ctx.env}`) first")
    if problems:
        raise live.fail(problems, figures, f"rerun the date with `finks pipeline run --env {ctx.env} --date D --force` "
                                           "(silver is rewritten whole) and look for what appends")
    said = (f"{len(reruns)} of them ingested more than once" if reruns
            else "none ingested twice in the window: uniqueness shown, no rerun exercised")
    return live.evidence(f"{len(checked)} silver partitions of the last {WINDOW} sessions hold one row per key "
                         f"({figures['rows']} rows); {said}", figures)
