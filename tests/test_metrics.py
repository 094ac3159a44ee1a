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


# ---- DataQualityScore comes from the quality record the gate read (S17) ----------

def _record(run_id: str, **overrides: object) -> object:
    from jobs.quality import QualityRecord

    values: dict[str, object] = dict(
        run_id=run_id, command="build", target="local", started_at="2024-03-14T02:00:00+00:00",
        finished_at="2024-03-14T02:01:00+00:00", ok=True, published=True, tests_run=50, tests_passed=45,
        tests_warned=2, tests_failed=0, quality_score=0.94)
    values.update(overrides)
    return QualityRecord(**values)  # type: ignore[arg-type]


@pytest.fixture
def gold_lake(tmp_path: Any) -> Any:
    from core.settings import load_settings

    return load_settings(env="local", state_dir=tmp_path / "state", lake_uri=str(tmp_path / "lake"))


def test_the_gate_reads_the_published_builds_quality_record(gold_lake: Any) -> None:
    from core.gold import Published, write_published
    from flows import metrics
    from flows.quality import check_published, quality_score
    from jobs.quality import quality_uri, write_quality

    write_published(gold_lake, Published.now("run-1", tests_passed=45))
    write_quality(gold_lake, _record("run-1"))  # type: ignore[arg-type]
    # The nodes say something else: the score must come from the record.
    dbt: dict[str, Any] = {"run_id": "run-1", "published": True,
                           "nodes": [{"resource_type": "test", "status": "pass"}]}

    dbt["publication"] = check_published.fn(gold_lake, dbt)

    assert dbt["publication"]["quality"]["record"] == quality_uri(gold_lake, "run-1")
    assert quality_score({"passed": 6, "total": 6}, dbt) == (47, 50)
    assert metrics.data_quality_score(*quality_score(None, dbt)).value == 94.0


@pytest.mark.parametrize("record", [None, {"tests_failed": 1, "failed_tests": ["high_ge_low"]}, {"published": False}])
def test_the_gate_refuses_a_publication_its_quality_record_does_not_clear(gold_lake: Any, record: Any) -> None:
    from core.gold import Published, write_published
    from flows.errors import QualityGateFailed
    from flows.quality import check_published
    from jobs.quality import write_quality

    write_published(gold_lake, Published.now("run-2", tests_passed=45))
    if record is not None:
        write_quality(gold_lake, _record("run-2", **record))  # type: ignore[arg-type]

    with pytest.raises(QualityGateFailed, match="run-2"):
        check_published.fn(gold_lake, {"run_id": "run-2", "published": True})


def test_a_failed_gate_scores_nothing_rather_than_its_silver_checks() -> None:
    from flows.quality import quality_score

    assert quality_score({"passed": 6, "total": 6}, None) == (0, 0)
