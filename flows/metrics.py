"""Custom CloudWatch metrics of the pipeline (S20), also written to the log.

Namespace `Finks/Pipeline`; every datum carries Environment and Step (and
Dataset where it applies). Locally they go to the moto server; if no AWS
endpoint answers, the metrics are still logged and the pipeline carries on:
monitoring must never fail the data run.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.settings import Settings

NAMESPACE = "Finks/Pipeline"
log = logging.getLogger("finks.metrics")


@dataclass(frozen=True)
class Metric:
    name: str  # RecordsProcessed | PipelineLatency | DataQualityScore | StepFailures
    value: float
    unit: str  # Count | Seconds | Percent
    dimensions: tuple[tuple[str, str], ...] = ()


def records_processed(step: str, count: int, dataset: str | None = None) -> Metric:
    dims = (("Step", step),) + ((("Dataset", dataset),) if dataset else ())
    return Metric("RecordsProcessed", float(count), "Count", dims)


def pipeline_latency(step: str, seconds: float) -> Metric:
    return Metric("PipelineLatency", round(seconds, 3), "Seconds", (("Step", step),))


def data_quality_score(passed: int, total: int) -> Metric:
    """Share of data tests that passed, in percent (100 when there were none).

    The pipeline takes the counts from the quality record of the build that
    published gold (`<gold>/_quality/<run_id>.json`, see flows.quality), so the
    metric is that record's `quality_score` in percent.
    """
    score = 100.0 if total == 0 else 100.0 * passed / total
    return Metric("DataQualityScore", round(score, 2), "Percent", (("Step", "quality"),))


def emit(settings: Settings, metrics: list[Metric], *, run_date: dt.date | None = None,
         extra_dimensions: dict[str, str] | None = None) -> dict[str, Any]:
    """Log and put the metrics; returns what was sent and whether CloudWatch took it."""
    data = []
    extra = [{"Name": k, "Value": v} for k, v in (extra_dimensions or {}).items()]
    for m in metrics:
        dims = [{"Name": "Environment", "Value": settings.env}, *({"Name": k, "Value": v} for k, v in m.dimensions), *extra]
        data.append({"MetricName": m.name, "Value": m.value, "Unit": m.unit, "Dimensions": dims})
        _log(f"metric {m.name}={m.value} {m.unit} {dict(m.dimensions)}" + (f" date={run_date}" if run_date else ""))
    result: dict[str, Any] = {"namespace": NAMESPACE, "count": len(data), "cloudwatch": False}
    if not data:
        return result
    try:
        from core.aws import client as aws_client

        cw = aws_client(settings, "cloudwatch", fast_fail=True)
        for i in range(0, len(data), 1000):  # PutMetricData takes at most 1000 datums
            cw.put_metric_data(Namespace=NAMESPACE, MetricData=data[i : i + 1000])
        result["cloudwatch"] = True
    except Exception as exc:  # noqa: BLE001 - see module docstring
        result["error"] = f"{type(exc).__name__}: {exc}"
        _log(f"metrics not sent to CloudWatch ({result['error']})", warning=True)
    return result


def _log(text: str, *, warning: bool = False) -> None:
    try:
        from prefect import get_run_logger

        logger: Any = get_run_logger()
    except Exception:  # noqa: BLE001 - outside a flow or task run: the module logger
        logger = log
    (logger.warning if warning else logger.info)(text)
