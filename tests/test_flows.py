"""The daily pipeline against a real Prefect server, the FMP simulator, the local
lake and the moto server (Glue, ECS, SNS): the plan's S16 scenarios.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core import lake
from core.settings import Settings
from flows.common import RetryPolicy
from validation import support

DAY1 = "2024-03-14"
DAY2 = "2024-03-15"


# ---- fixtures ---------------------------------------------------------------

FAST_RETRY = RetryPolicy(retries=1, delay_s=0)


@pytest.fixture(scope="module")
def sim(local_stack: Settings) -> Iterator[Any]:
    with support.simulator() as server:
        yield server


@pytest.fixture(scope="module")
def day1_lake(local_stack: Settings, sim: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """DAY1 run once through the pipeline; tests that build on it get a copy."""
    from flows.master_flow import daily_pipeline

    lake = tmp_path_factory.mktemp("day1") / "lake"
    settings = support.with_fmp(support.scratch_lake(local_stack, lake), sim.base_url)
    return lake, daily_pipeline(date=DAY1, settings=settings, retry=FAST_RETRY)


@pytest.fixture
def pipeline(local_stack: Settings, sim: Any, tmp_path: Path) -> Settings:
    """The settings of this test's run: a fresh lake, the simulator as FMP."""
    return support.with_fmp(support.scratch_lake(local_stack, tmp_path / "lake"), sim.base_url)


@pytest.fixture
def after_day1(pipeline: Settings, day1_lake: tuple[Path, dict[str, Any]]) -> Settings:
    """This test's lake starts as a copy of the DAY1 lake."""
    import shutil

    shutil.copytree(day1_lake[0], lake.lake_root(pipeline))
    return pipeline


@pytest.fixture
def glue_job(local_stack: Settings) -> Iterator[str]:
    yield support.create_glue_job(local_stack)
    support.moto_transition(local_stack, "glue::job_run", None)


def _silver_tables(settings: Any, day: str) -> dict[str, Any]:
    import pyarrow.parquet as pq

    root = Path(lake.zone_uri(settings, "silver"))
    return {p.parent.parent.name: support.canonical(pq.read_table(p))
            for p in sorted(root.glob(f"*/date={day}/*.parquet")) if not p.parts[-4].startswith("_")}


def _gold_tables(settings: Any) -> dict[str, Any]:
    import pyarrow.parquet as pq

    return {p.stem: support.canonical(pq.read_table(p)) for p in sorted(Path(lake.zone_uri(settings, "gold"), "marts").glob("*.parquet"))}


def _published(settings: Any) -> dict[str, Any] | None:
    path = Path(lake.zone_uri(settings, "gold"), "_published.json")
    return json.loads(path.read_text()) if path.is_file() else None


def _first_difference(a: Any, b: Any) -> str:
    if a.schema != b.schema:
        return f"schema {a.schema} != {b.schema}"
    for name in a.column_names:
        if not a[name].equals(b[name]):
            return f"column {name}: {a[name].to_pylist()[:3]} != {b[name].to_pylist()[:3]}"
    return "equal"


def _steps(report: list[dict[str, Any]]) -> dict[str, str]:
    return {s["step"]: s["status"] for s in report}


# ---- the plan's scenarios ----------------------------------------------------

@pytest.mark.services
@pytest.mark.slow
def test_happy_path(day1_lake: tuple[Path, dict[str, Any]], after_day1: Settings) -> None:
    from flows.common import read_record

    result = day1_lake[1]
    settings = after_day1

    assert result["status"] == "ok"
    assert _steps(result["steps"]) == {"ingestion": "ok", "transformation": "ok", "dbt": "ok"}
    silver = _silver_tables(settings, DAY1)
    assert {"quotes", "profiles", "eod_prices"} <= set(silver)
    assert all(t.num_rows > 0 for t in silver.values())
    gold = _gold_tables(settings)
    assert {"fct_daily_prices", "dim_company", "daily_portfolio_summary", "fct_portfolio_positions"} <= set(gold)
    published, record = _published(settings), read_record(settings, dt.date.fromisoformat(DAY1))
    assert published is not None and published["run_id"] == result["results"]["dbt"]["run_id"]
    assert record is not None and record["gold"] == "ok"


@pytest.mark.services
@pytest.mark.slow
def test_ingestion_failure(pipeline: Settings) -> None:
    from connectors.fmp.simulator import Faults
    from flows.master_flow import PipelineFailed, daily_pipeline
    from flows.notify import read_local

    with support.fmp(pipeline, faults=Faults(invalid_key=True)) as broken, \
            pytest.raises(PipelineFailed) as info:
        daily_pipeline(date=DAY1, settings=broken, retry=FAST_RETRY)

    assert "failed at ingestion" in str(info.value)
    assert _steps(info.value.steps) == {"ingestion": "failed", "transformation": "not run", "dbt": "not run"}
    assert _silver_tables(pipeline, DAY1) == {}
    assert _published(pipeline) is None
    note = read_local(pipeline)[-1]
    assert note["level"] == "error" and "ingestion" in note["message"]


@pytest.mark.services
@pytest.mark.slow
def test_glue_timeout(pipeline: Settings, glue_job: str, ecs_cluster: Settings) -> None:
    """The AWS path (connector on ECS, bronze→silver on Glue) against moto: a Glue run
    that never finishes fails the flow with a clear message and stops downstream."""
    from flows.master_flow import PipelineFailed, daily_pipeline
    from flows.notify import read_local

    support.moto_transition(pipeline, "glue::job_run", {"progression": "manual", "times": 10**9})
    started = time.monotonic()
    with pytest.raises(PipelineFailed) as info:
        daily_pipeline(date=DAY1, runner="aws", glue_timeout_s=2, glue_poll_s=0.2,
                       settings=pipeline, retry=FAST_RETRY)
    elapsed = time.monotonic() - started

    message = str(info.value)
    assert "Glue job" in message and "timeout 2s" in message and "STARTING" in message
    assert _steps(info.value.steps) == {"ingestion": "ok", "transformation": "failed", "dbt": "not run"}
    assert elapsed < 60
    assert "transformation" in read_local(pipeline)[-1]["message"]


@pytest.mark.services
@pytest.mark.slow
def test_dbt_quality_gate(after_day1: Settings) -> None:
    """Gold is built from all of silver: a bad silver partition (here an older date
    written by a faulty engine, high < low) fails the dbt tests, so the new build is
    not published and the previous gold stays."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from flows.master_flow import PipelineFailed, daily_pipeline

    pipeline = after_day1
    before, published = _gold_tables(pipeline), _published(pipeline)
    assert published is not None

    good = _silver_tables(pipeline, DAY1)["eod_prices"]
    bad = good.set_column(good.schema.get_field_index("date"), "date",
                          pa.array([dt.date(2024, 3, 13)] * good.num_rows, good.schema.field("date").type))
    bad = bad.set_column(bad.schema.get_field_index("high"), "high", pc.subtract(bad["low"], 1.0))
    target = Path(lake.zone_uri(pipeline, "silver"), "eod_prices", "date=2024-03-13", "part-0.parquet")
    target.parent.mkdir(parents=True)
    pq.write_table(bad, target)

    with pytest.raises(PipelineFailed) as info:
        daily_pipeline(date=DAY2, settings=pipeline, retry=FAST_RETRY)

    assert _steps(info.value.steps) == {"ingestion": "ok", "transformation": "ok", "dbt": "failed"}
    assert "gold was not published" in str(info.value)
    assert _published(pipeline) == published
    after = _gold_tables(pipeline)
    assert after.keys() == before.keys()
    assert all(after[k].equals(before[k]) for k in before)


@pytest.mark.services
@pytest.mark.slow
def test_concurrent_runs(pipeline: Settings) -> None:
    """Two runs of one date at once: the second stops with a clear message, data stay whole;
    a run told to wait queues behind the first and then finds the date done."""
    from flows.errors import DateLocked
    from flows.lock import lock_path
    from flows.master_flow import daily_pipeline

    lock_file = lock_path(pipeline, f"pipeline-{DAY1}")
    results: dict[str, Any] = {}

    def run(key: str, **kwargs: Any) -> None:
        try:
            results[key] = daily_pipeline(date=DAY1, settings=pipeline, retry=FAST_RETRY, **kwargs)
        except Exception as exc:  # noqa: BLE001 - inspected below
            results[key] = exc

    first = threading.Thread(target=run, args=("first",))
    first.start()
    deadline = time.monotonic() + 60
    while not (lock_file.is_file() and lock_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    run("second")
    waiter = threading.Thread(target=run, args=("waiter",), kwargs={"lock_wait_s": 600})
    waiter.start()
    first.join(600)
    waiter.join(600)

    assert isinstance(results["second"], DateLocked), results["second"]
    assert f"pipeline {DAY1} is locked by run" in str(results["second"])
    assert results["first"]["status"] == "ok"
    assert results["waiter"]["status"] == "ok"
    assert "skipped" in results["waiter"]["steps"][0]["detail"]
    assert all(t.num_rows > 0 for t in _silver_tables(pipeline, DAY1).values())


@pytest.mark.services
@pytest.mark.slow
def test_rerun_leaves_identical_silver_and_gold(after_day1: Settings) -> None:
    from flows.master_flow import daily_pipeline

    silver, gold = _silver_tables(after_day1, DAY1), _gold_tables(after_day1)
    daily_pipeline(date=DAY1, settings=after_day1, retry=FAST_RETRY)
    silver2, gold2 = _silver_tables(after_day1, DAY1), _gold_tables(after_day1)

    assert {k: t.num_rows for k, t in silver.items()} == {k: t.num_rows for k, t in silver2.items()}
    for k in silver:
        assert silver2[k].equals(silver[k]), (k, _first_difference(silver[k], silver2[k]))
    assert gold.keys() == gold2.keys()
    for k in gold:
        assert gold2[k].equals(gold[k]), (k, _first_difference(gold[k], gold2[k]))


# ---- the AWS seams: Glue, ECS, SNS on the moto server ---------------------------

@pytest.mark.services
def test_glue_run_is_followed_through_its_states(local_stack: Any, glue_job: str) -> None:
    from core.aws import client as aws_client
    from flows.glue import job_arguments, run_glue_job

    support.moto_transition(local_stack, "glue::job_run", {"progression": "time", "seconds": 0.5})
    run = run_glue_job(aws_client(local_stack, "glue"), glue_job,
                       job_arguments(local_stack, dt.date(2024, 3, 14), ["quotes"]), timeout_s=30, poll_s=0.1)

    assert run.state == "SUCCEEDED"
    assert run.states == ["STARTING", "RUNNING", "SUCCEEDED"]


def test_glue_failed_run_names_job_run_and_state() -> None:
    from flows.errors import GlueJobFailed
    from flows.glue import run_glue_job

    class FailingGlue:  # Glue's response shape for a failed run (moto cannot fail a run)
        def start_job_run(self, **_: Any) -> dict[str, Any]:
            return {"JobRunId": "jr_1"}

        def get_job_run(self, **_: Any) -> dict[str, Any]:
            return {"JobRun": {"JobRunState": "FAILED", "ErrorMessage": "AnalysisException: path not found"}}

    with pytest.raises(GlueJobFailed, match="jr_1 ended FAILED.*path not found"):
        run_glue_job(FailingGlue(), "finks-dev-bronze-to-silver", {}, timeout_s=5, poll_s=0.1)


@pytest.fixture
def ecs_cluster(local_stack: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The ECS cluster and task definitions the infrastructure would create, in moto;
    tasks run to STOPPED at once (moto's state manager)."""
    from core.aws import client as aws_client
    from flows.blocks import apply_blocks, ecs_task_settings

    subnet = aws_client(local_stack, "ec2").describe_subnets()["Subnets"][0]["SubnetId"]
    monkeypatch.setenv("FINKS_ECS_SUBNETS", subnet)
    ecs, conf = aws_client(local_stack, "ecs"), ecs_task_settings(local_stack)
    ecs.create_cluster(clusterName=conf["cluster"])
    for role, family in conf["task_definitions"].items():
        ecs.register_task_definition(
            family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="512", memory="1024",
            containerDefinitions=[{"name": conf["containers"][role], "image": f"{family}:latest", "essential": True,
                                   "cpu": 512, "memory": 1024}],
        )
    apply_blocks(local_stack)
    support.moto_transition(local_stack, "ecs::task", {"progression": "immediate"})
    yield local_stack
    support.moto_transition(local_stack, "ecs::task", None)


@pytest.mark.services
def test_ecs_task_runs_to_completion_through_prefect_aws_credentials(ecs_cluster: Any) -> None:
    from flows.blocks import load_aws_credentials, load_ecs_settings
    from flows.ecs import run_ecs_task

    settings = load_ecs_settings(ecs_cluster)
    request = settings.run_task_request("connector", ["ingest", "--date", "2024-03-14"], {"FINKS_ENV": "dev"})
    run = run_ecs_task(load_aws_credentials(ecs_cluster).get_client("ecs"), request, timeout_s=30, poll_s=0.1)

    assert run.status == "STOPPED"
    assert run.exit_codes == {"fmp-connector": 0}
    assert request["overrides"]["containerOverrides"][0]["environment"] == [{"name": "FINKS_ENV", "value": "dev"}]


def _container_overrides(settings: Any, task_arn: str) -> dict[str, Any]:
    """What a flow step asked of the ECS task it ran (moto keeps the request's overrides)."""
    from core.aws import client as aws_client
    from flows.blocks import ecs_task_settings

    cluster = ecs_task_settings(settings)["cluster"]
    (task,) = aws_client(settings, "ecs").describe_tasks(cluster=cluster, tasks=[task_arn])["tasks"]
    return dict(task["overrides"]["containerOverrides"][0])


@pytest.mark.services
def test_the_dbt_step_on_ecs_builds_and_publishes_the_docs_in_one_task(ecs_cluster: Any) -> None:
    """On AWS the docs site follows each published build: the dbt task's command is `build --docs`."""
    from flows.tasks import dbt_build

    out = dbt_build(ecs_cluster, "2024-03-14", runner="aws", ecs_timeout_s=30)
    command = _container_overrides(ecs_cluster, out["task_arn"])["command"]
    assert command[:6] == ["python", "-m", "jobs.dbt", "build", "--docs", "--target"] and "athena" in command
    assert json.loads(command[command.index("--vars") + 1]) == {"run_date": "2024-03-14"}


@pytest.mark.services
def test_ingestions_at_once_on_ecs_each_get_their_share_of_the_key(ecs_cluster: Any) -> None:
    """An ECS task is a process of its own: three datasets at once get a third of the plan's rate each."""
    from flows.tasks import ingest_dataset

    out = ingest_dataset(ecs_cluster, "2024-03-14", "quotes", runner="aws", ecs_timeout_s=30, sharing=3)
    env = {e["name"]: e["value"] for e in _container_overrides(ecs_cluster, out["task_arn"])["environment"]}
    assert env == {"FINKS_ENV": ecs_cluster.env, "FMP_CALLS_PER_MINUTE": str(ecs_cluster.fmp_rate_limit // 3)}


@pytest.mark.services
def test_ecs_task_that_never_stops_times_out_and_is_stopped(ecs_cluster: Any) -> None:
    from core.aws import client as aws_client
    from flows.blocks import load_ecs_settings
    from flows.ecs import run_ecs_task
    from flows.errors import EcsTaskFailed

    support.moto_transition(ecs_cluster, "ecs::task", {"progression": "manual", "times": 10**9})
    request = load_ecs_settings(ecs_cluster).run_task_request("dbt", ["dbt", "build"], {})
    with pytest.raises(EcsTaskFailed, match="still RUNNING .*timeout 1s"):
        run_ecs_task(aws_client(ecs_cluster, "ecs"), request, timeout_s=1, poll_s=0.1)


@pytest.mark.services
def test_notifier_publishes_to_sns(local_stack: Any) -> None:
    from core.aws import client as aws_client
    from flows.notify import Notifier, topic_name

    sns, sqs = aws_client(local_stack, "sns"), aws_client(local_stack, "sqs")
    topic = sns.create_topic(Name=topic_name(local_stack))["TopicArn"]
    queue = sqs.create_queue(QueueName="finks-test-alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})

    note = Notifier.for_settings(local_stack, sns=True).send("pipeline FAILED for 2024-03-14", "step dbt: 2 tests failed",
                                                             level="error")

    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    bodies = [json.loads(m["Body"]) for m in messages]
    assert note["sns_message_id"]
    assert any(b["subject"] == "pipeline FAILED for 2024-03-14" and b["level"] == "error" for b in bodies)


def test_a_flow_uses_the_settings_passed_else_builds_them_from_env(tmp_path: Path) -> None:
    from core.errors import UsageError
    from core.settings import load_settings
    from flows.common import run_settings

    passed = load_settings(env="local", lake_uri=str(tmp_path / "lake"))

    assert run_settings(None, passed) is passed
    assert run_settings("local", passed) is passed
    assert run_settings("dev").env == "dev"
    with pytest.raises(UsageError, match="env 'dev' contradicts the settings passed"):
        run_settings("dev", passed)


def test_retry_policy_defaults_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.errors import ConfigError

    monkeypatch.setenv("FINKS_TASK_RETRIES", "3")
    monkeypatch.setenv("FINKS_TASK_RETRY_DELAY_S", "2")
    assert RetryPolicy.from_env() == RetryPolicy(retries=3, delay_s=2)
    assert RetryPolicy.from_env().delays == [2, 8, 32]
    monkeypatch.setenv("FINKS_TASK_RETRIES", "-1")
    with pytest.raises(ConfigError, match="FINKS_TASK_RETRIES='-1'"):
        RetryPolicy.from_env()


def test_previous_trading_day_skips_weekends_and_holidays() -> None:
    from flows.calendar import previous_trading_day

    assert previous_trading_day(dt.date(2024, 3, 18)) == dt.date(2024, 3, 15)  # Monday -> Friday
    assert previous_trading_day(dt.date(2024, 4, 1)) == dt.date(2024, 3, 28)  # Good Friday closed
    assert previous_trading_day(dt.date(2024, 7, 5)) == dt.date(2024, 7, 3)


def test_pipeline_command_rejects_a_bad_date_before_touching_anything() -> None:
    import typer
    from typer.testing import CliRunner

    from core.errors import UsageError
    from flows.cli import register

    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["pipeline", "run", "--date", "2024-13-01"])

    assert isinstance(result.exception, UsageError)
    assert "date '2024-13-01' is not a date" in str(result.exception)


@pytest.mark.services
@pytest.mark.slow
def test_pipeline_command_reports_each_step(after_day1: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import typer
    from typer.testing import CliRunner

    from flows.cli import register

    # The command builds its settings from the environment, as from a shell.
    monkeypatch.setenv("FINKS_LAKE_URI", lake.lake_root(after_day1))
    monkeypatch.setenv("FMP_BASE_URL", after_day1.fmp_url)
    monkeypatch.setenv("FINKS_TASK_RETRY_DELAY_S", "0")
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["pipeline", "run", "--date", DAY1, "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # one JSON document, nothing else on stdout
    assert report["status"] == "ok" and report["date"] == DAY1
    assert [s["step"] for s in report["steps"]] == ["ingestion", "transformation", "dbt"]
    assert report["steps"][0]["detail"].startswith("quotes: skipped")


@pytest.mark.services
def test_s3_date_lock_excludes_a_second_holder_and_takes_over_an_expired_one(local_stack: Any) -> None:
    """The cloud lock: a conditional put on the silver bucket (moto), with an expiry."""
    from flows.errors import DateLocked
    from flows.lock import date_lock

    s3_settings = local_stack.model_copy(update={"storage": "s3"})
    day = dt.date(2024, 3, 14)
    with date_lock(s3_settings, day, run_id="first"), \
            pytest.raises(DateLocked, match="pipeline-2024-03-14 is locked by run first"), \
            date_lock(s3_settings, day, run_id="second", wait=0.3, poll=0.1):
        pass
    with date_lock(s3_settings, day, run_id="stalled", ttl=-1):  # expired the moment it was taken
        successor = date_lock(s3_settings, day, run_id="successor")
        assert successor.__enter__()["run_id"] == "successor"
    # The stalled run's release left the successor's lock in place.
    with pytest.raises(DateLocked, match="locked by run successor"), date_lock(s3_settings, day, run_id="third"):
        pass
    successor.__exit__(None, None, None)
    with date_lock(s3_settings, day, run_id="third"):
        pass


def test_the_steps_sub_flows_run_without_a_heartbeat_thread_of_their_own() -> None:
    """Each sub-flow's end used to wait up to 1 s for its heartbeat thread (Prefect sleeps in 1 s
    steps before joining it); the master flow keeps its heartbeat, the sub-flows inherit none."""
    from prefect.flow_engine import FlowRunEngine
    from prefect.settings import get_current_settings

    from flows.ingestion import ingestion_flow
    from flows.master_flow import subflow_settings

    before = get_current_settings().flows.heartbeat_frequency
    assert before is not None  # Prefect's default: every flow run heartbeats
    with subflow_settings():
        assert FlowRunEngine(flow=ingestion_flow).heartbeat_seconds is None
    assert get_current_settings().flows.heartbeat_frequency == before
