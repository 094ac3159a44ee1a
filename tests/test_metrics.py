"""Custom CloudWatch metrics (S20) land in the moto server and in the log."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest


@pytest.mark.services
def test_metrics_reach_cloudwatch(local_stack: Any) -> None:
    import uuid

    from core.aws import client as aws_client
    from flows import metrics

    tag = uuid.uuid4().hex[:8]
    sent = metrics.emit(local_stack, [
        metrics.records_processed("transformation", 1234, "quotes"),
        metrics.pipeline_latency("pipeline", 42.5),
        metrics.data_quality_score(passed=47, total=50),
    ], run_date=dt.date(2024, 3, 14), extra_dimensions={"Test": tag})

    assert sent["cloudwatch"] is True
    cw = aws_client(local_stack, "cloudwatch")
    names = {m["MetricName"] for m in cw.list_metrics(Namespace=metrics.NAMESPACE)["Metrics"]}
    assert {"RecordsProcessed", "PipelineLatency", "DataQualityScore"} <= names
    now = dt.datetime.now(dt.UTC)
    stats = cw.get_metric_statistics(
        Namespace=metrics.NAMESPACE, MetricName="DataQualityScore", Statistics=["Maximum"], Period=60,
        StartTime=now - dt.timedelta(minutes=5), EndTime=now + dt.timedelta(minutes=1),
        Dimensions=[{"Name": "Environment", "Value": "local"}, {"Name": "Step", "Value": "quality"},
                    {"Name": "Test", "Value": tag}],
    )
    assert max(p["Maximum"] for p in stats["Datapoints"]) == 94.0


def test_metrics_are_logged_even_when_cloudwatch_is_unreachable(caplog: pytest.LogCaptureFixture) -> None:
    from core.settings import load_settings
    from finks.devstack.procs import free_port
    from flows import metrics

    settings = load_settings(env="local", moto_port=free_port())  # nothing listens there
    with caplog.at_level(logging.INFO, logger="finks.metrics"):
        sent = metrics.emit(settings, [metrics.records_processed("ingestion", 10)])

    assert sent["cloudwatch"] is False and "error" in sent
    assert "metric RecordsProcessed=10.0 Count" in caplog.text


def test_quality_score_is_share_of_passed_checks() -> None:
    from flows import metrics

    assert metrics.data_quality_score(3, 4).value == 75.0
    assert metrics.data_quality_score(0, 0).value == 100.0
