"""Check for S20: the pipeline's custom metrics reach CloudWatch (the moto server
locally) with the values of the run that emitted them.

The check runs the daily pipeline on a scratch lake, with a moto server of its
own (other runs may emit the same metrics meanwhile), and reads back, for the
run's time window, one datapoint per metric: records processed per dataset
(= the silver rows the run wrote), the pipeline's latency (= the run's
duration) and the data quality score (= the score of the quality record the
run's dbt build left in `<gold>/_quality/`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from finks.checks import CheckContext, CheckFailed, Evidence
from validation import support

SCENARIO_DATE = "2024-03-14"


def custom_metrics_emitted(ctx: CheckContext) -> Evidence:
    # CloudWatch of its own: "one datapoint in the run's window" must not count another run's.
    return support.on_own_emulator(ctx, "metrics", SCENARIO_DATE, _compare)


def _compare(lake: Any, result: dict[str, Any], start: Any, end: Any) -> Evidence:
    import pyarrow.parquet as pq

    from core.lake import zone_uri
    from flows import metrics
    from jobs.quality import read_quality

    silver = Path(zone_uri(lake, "silver"))
    expected: dict[str, tuple[dict[str, str], float]] = {}
    for ds in result["results"]["transformation"].get("datasets", []):
        if ds.get("status") == "no_bronze":
            continue
        name, rows = ds["dataset"], int(ds.get("rows_written") or 0)
        on_disk = sum(pq.read_metadata(p).num_rows for p in silver.glob(f"{name}/date={SCENARIO_DATE}/*.parquet"))
        if rows <= 0 or rows != on_disk:
            raise CheckFailed(f"the run wrote {rows} {name} rows, its silver partition holds {on_disk}")
        expected[f"RecordsProcessed/{name}"] = ({"Step": "transformation", "Dataset": name}, float(rows))
    if not expected:
        raise CheckFailed(f"the run for {SCENARIO_DATE} transformed no dataset: no records to count")
    run_id = result["results"]["dbt"].get("run_id")
    record = read_quality(lake, run_id) if run_id else None
    if record is None:
        raise CheckFailed(f"the run's dbt build {run_id} left no quality record to score")
    expected["DataQualityScore"] = ({"Step": "quality"}, round(100.0 * float(record["quality_score"]), 2))
    expected["PipelineLatency/pipeline"] = ({"Step": "pipeline"}, float(result["seconds"]))

    seen: dict[str, Any] = {}
    problems = []
    for key, (dims, value) in sorted(expected.items()):
        stats = support.metric_stats(lake, key.split("/")[0], dims, start, end)
        seen[key] = {"expected": value, **stats}
        # Latency: the metric keeps milliseconds, the run's report hundredths of a second.
        tolerance = 0.01 if key.startswith("PipelineLatency") else 1e-6
        if stats["samples"] != 1:
            problems.append(f"{key}: {stats['samples']} datapoints in the run's window, expected 1")
        elif abs(stats["min"] - value) > tolerance or abs(stats["max"] - value) > tolerance:
            problems.append(f"{key}: CloudWatch holds {stats['min']}..{stats['max']}, the run's value is {value}")
    figures = {"namespace": metrics.NAMESPACE, "run_id": result["run_id"], "datapoints": seen}
    if problems:
        raise CheckFailed(f"{len(problems)} metric(s) in {metrics.NAMESPACE} do not match the run: {problems[0]}",
                          figures=figures, excerpt="\n".join(problems))
    return Evidence(f"CloudWatch {metrics.NAMESPACE} (emulator) holds the run's values: "
                    + ", ".join(f"{k}={v['expected']:g}" for k, v in seen.items()), figures=figures)
