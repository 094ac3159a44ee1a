"""The Prefect live probes (validation/aws/prefect.py, prefect_flows.py) on the deployed dev stack
and its Prefect (a stand-in server behind an HTTPS front: tests/fixtures/prefect_env.py): each
passes on the healthy environment and fails, naming the resource and what to do, when exactly
one thing is broken."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from finks.checks import CheckContext, CheckFailed, CheckSkipped
from validation.aws import prefect, prefect_flows

if TYPE_CHECKING:
    from tests.fixtures.prefect_env import PrefectEnv

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_aws")

PROBES = [
    prefect.ui_over_https, prefect.server_survives_restart, prefect.server_logs_in_cloudwatch,
    prefect.server_on_postgresql, prefect.database_migrated, prefect_flows.deployment_run_completed,
    prefect.ecs_work_pool, prefect_flows.blocks_load, prefect_flows.ingestion_completes,
    prefect_flows.transformation_processes, prefect_flows.dbt_generates_gold, prefect_flows.master_orchestrates,
    prefect_flows.daily_deployment, prefect_flows.failures_handled,
]
READS_AWS_ONLY = {prefect.server_logs_in_cloudwatch}


def _target(probe: Any) -> str:
    return f"{probe.__module__}:{probe.__name__}"


# ---- the healthy environment -------------------------------------------------------------------
@pytest.mark.parametrize("probe", PROBES, ids=lambda p: p.__name__)
def test_probe_passes_on_the_deployed_dev_stack_and_its_prefect(prefect_dev: PrefectEnv, probe: Any) -> None:
    evidence = probe(prefect_dev.ctx())
    assert evidence.figures["endpoint"] == prefect_dev.deployed.url
    assert evidence.figures["found_by"].startswith("stack outputs")
    if probe not in READS_AWS_ONLY:  # what answers at prefect_url is not the service's task: it says so
        assert prefect.STANDIN in evidence.figures["emulator_limits"]


def test_the_https_probe_reads_the_alb_certificate(prefect_dev: PrefectEnv) -> None:
    evidence = prefect.ui_over_https(prefect_dev.ctx())
    assert evidence.figures["health"] == 200 and evidence.figures["ui_bytes"] > 0
    assert 300 < evidence.figures["certificate_days_left"] < 400  # trustme's leaf: a year


def test_the_flow_probes_read_the_recorded_runs_and_the_lake(prefect_dev: PrefectEnv) -> None:
    history = prefect_dev.standin.history
    master = prefect_flows.master_orchestrates(prefect_dev.ctx())
    assert master.figures["flow_run"] == history.runs["latest"]
    assert master.figures["subflows"] == ["ingestion", "transformation", "dbt"]
    assert prefect_flows.ingestion_completes(prefect_dev.ctx()).figures["date"] == history.date
    failures = prefect_flows.failures_handled(prefect_dev.ctx())
    assert failures.figures["failed_runs"] == {history.runs["failed"]: history.failed_date}
    assert failures.figures["retries"] == {"ingest-dataset": [2], "bronze-to-silver": [2], "dbt-build": [2]}


def test_the_restart_probe_compares_with_the_task_the_service_runs_now(prefect_dev: PrefectEnv) -> None:
    evidence = prefect.server_survives_restart(prefect_dev.ctx())
    assert evidence.figures["started_from"].startswith("the service deployment's creation")
    assert evidence.figures["older_run_started"] < evidence.figures["task_started"]


def test_the_logs_probe_finds_the_service_by_its_tags_without_recorded_outputs(prefect_dev: PrefectEnv,
                                                                              tmp_path: Path) -> None:
    evidence = prefect.server_logs_in_cloudwatch(prefect_dev.ctx(tmp_path / "no-outputs"))
    assert evidence.figures["found_by"] == "tags Project=finks, Environment=dev"
    assert evidence.figures["log_group"] == "/finks/dev/ecs/prefect-server"


def test_prefect_probes_skip_on_local(tmp_path: Path) -> None:
    from core.paths import REPO_ROOT

    with pytest.raises(CheckSkipped, match="local has no AWS stack"):
        prefect.ui_over_https(CheckContext("local", REPO_ROOT, tmp_path, tmp_path / "w"))


def test_every_prefect_probe_is_listed_for_the_aws_environments() -> None:
    from core.paths import REPO_ROOT
    from finks.loader import load_plan

    plan = load_plan(REPO_ROOT / "sessions", REPO_ROOT)
    listed = {spec.python: sorted(spec.envs) for s in plan.sessions.values() for c in s.criteria for spec in c.checks
              if spec.python and spec.python.startswith(("validation.aws.prefect:", "validation.aws.prefect_flows:"))}
    assert sorted(listed) == sorted(_target(p) for p in PROBES)
    assert all(envs == ["dev", "prod", "staging"] for envs in listed.values())


def test_every_prefect_probe_has_a_test_that_makes_it_fail() -> None:
    import sys

    marked = {m.args[0] for f in vars(sys.modules[__name__]).values() if callable(f)
              for m in getattr(f, "pytestmark", []) if m.name == "check_fails"}
    assert sorted({_target(p) for p in PROBES} - marked) == []


def test_the_prefect_probes_make_only_read_only_aws_calls(prefect_dev: PrefectEnv) -> None:
    from validation.aws import policy

    with policy.recording() as actions:
        for probe in PROBES:
            probe(prefect_dev.ctx())
    assert actions and all(a.split(":", 1)[1].startswith(policy.READ_ONLY_VERBS) for a in actions), sorted(actions)


# ---- S8: the server --------------------------------------------------------------------------------
@pytest.mark.check_fails("validation.aws.prefect:ui_over_https")
def test_https_probe_fails_on_plain_http(prefect_dev: PrefectEnv) -> None:
    prefect_dev.record(prefect_dev.standin.server_url)
    with pytest.raises(CheckFailed, match=r"Prefect is published at http://127\.0\.0\.1:\d+: plain HTTP, not HTTPS; "
                                          r"serve it through the ALB's HTTPS listener"):
        prefect.ui_over_https(prefect_dev.ctx())


@pytest.mark.check_fails("validation.aws.prefect:ui_over_https")
def test_https_probe_fails_on_a_certificate_of_another_ca(prefect_dev: PrefectEnv) -> None:
    url = prefect_dev.front("rogue", trusted=False)
    with pytest.raises(CheckFailed, match=rf"the certificate of {url} does not verify \(.*CERTIFICATE_VERIFY_FAILED.*"
                                          r"check the HTTPS listener's ACM certificate"):
        prefect.ui_over_https(prefect_dev.ctx())


@pytest.mark.check_fails("validation.aws.prefect:ui_over_https")
def test_https_probe_fails_on_an_expired_certificate(prefect_dev: PrefectEnv) -> None:
    url = prefect_dev.front("stale", expired=True)
    with pytest.raises(CheckFailed, match=rf"the certificate of {url} does not verify \(.*expired"):
        prefect.ui_over_https(prefect_dev.ctx())


@pytest.mark.check_fails("validation.aws.prefect:ui_over_https")
def test_without_recorded_outputs_the_probes_look_for_prefect_at_the_stack_files_domain(
        prefect_dev: PrefectEnv, tmp_path: Path) -> None:
    with pytest.raises(CheckFailed, match=r"Prefect at https://prefect\.dev\.finks\.example\.com does not answer"):
        prefect.ui_over_https(prefect_dev.ctx(tmp_path / "no-outputs"))


@pytest.mark.check_fails("validation.aws.prefect:server_survives_restart")
def test_restart_probe_fails_on_a_stopped_server_service(prefect_dev: PrefectEnv) -> None:
    ecs, cluster = prefect_dev.aws("ecs"), prefect_dev.outputs["ecs_cluster_name"]
    name = prefect_dev.outputs["ecs_services"]["prefect-server"]
    prefect_dev.deployed.undo(lambda: ecs.update_service(cluster=cluster, service=name, desiredCount=1))
    ecs.update_service(cluster=cluster, service=name, desiredCount=0)
    with pytest.raises(CheckFailed, match=r"^ECS service finks-dev-prefect-server wants 0 tasks; the stack wants 1"):
        prefect.server_survives_restart(prefect_dev.ctx())


@pytest.mark.check_fails("validation.aws.prefect:server_survives_restart")
def test_restart_probe_fails_when_the_history_is_younger_than_the_server_task(prefect_dev: PrefectEnv) -> None:
    """What a server that kept its database in the task shows after a restart: only what came after."""
    prefect_dev.undo(prefect_dev.standin.reseed)
    with prefect_dev.client() as client:
        for run in _started_runs(client):
            client.delete_flow_run(run.id)
        _daily(client, prefect_dev.standin.history.date)
    with pytest.raises(CheckFailed, match=r"no flow run on https://127\.0\.0\.1:\d+ started before the prefect-server "
                                          r"task that serves it now .*: the history did not survive the task's "
                                          r"replacement; check that the task definition's PREFECT_SERVER_DATABASE_"):
        prefect.server_survives_restart(prefect_dev.ctx())


@pytest.mark.check_fails("validation.aws.prefect:server_logs_in_cloudwatch")
def test_logs_probe_fails_on_an_empty_server_log_group(prefect_dev: PrefectEnv) -> None:
    logs = prefect_dev.aws("logs")
    group = prefect_dev.outputs["log_groups"]["prefect-server"]
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]

    def refill() -> None:
        for s in streams:
            logs.create_log_stream(logGroupName=group, logStreamName=s["logStreamName"])
            logs.put_log_events(logGroupName=group, logStreamName=s["logStreamName"],
                                logEvents=[{"timestamp": int(time.time() * 1000), "message": "prefect-server started"}])

    prefect_dev.deployed.undo(refill)
    for s in streams:
        logs.delete_log_stream(logGroupName=group, logStreamName=s["logStreamName"])
    with pytest.raises(CheckFailed, match=r"^log group /finks/dev/ecs/prefect-server received no event from the "
                                          r"prefect-server container in 24 h; the server is not running"):
        prefect.server_logs_in_cloudwatch(prefect_dev.ctx())


@pytest.mark.check_fails("validation.aws.prefect:server_on_postgresql")
def test_postgres_probe_fails_when_the_server_points_at_another_database(prefect_dev: PrefectEnv) -> None:
    ecs, cluster = prefect_dev.aws("ecs"), prefect_dev.outputs["ecs_cluster_name"]
    name = prefect_dev.outputs["ecs_services"]["prefect-server"]
    current = ecs.describe_services(cluster=cluster, services=[name])["services"][0]["taskDefinition"]
    td = ecs.describe_task_definition(taskDefinition=current)["taskDefinition"]
    box = td["containerDefinitions"][0]
    box["environment"] = [{**e, "value": "elsewhere.example.com"} if e["name"] == "PREFECT_SERVER_DATABASE_HOST" else e
                          for e in box["environment"]]
    # Another family: a new revision of the server's would stay its latest after the undo (moto).
    stray = ecs.register_task_definition(
        family="stray-prefect-server", containerDefinitions=[box], networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"], cpu=td["cpu"], memory=td["memory"],
        executionRoleArn=td["executionRoleArn"])["taskDefinition"]["taskDefinitionArn"]
    prefect_dev.deployed.undo(lambda: ecs.deregister_task_definition(taskDefinition=stray))
    prefect_dev.deployed.undo(lambda: ecs.update_service(cluster=cluster, service=name, taskDefinition=current))
    ecs.update_service(cluster=cluster, service=name, taskDefinition=stray)
    with pytest.raises(CheckFailed, match=r"^stray-prefect-server:1 points the server at elsewhere\.example\.com:5432, "
                                          r"not RDS instance finks-dev-prefect \(finks-dev-prefect\..*\.rds\.amazonaws"
                                          r"\.com:5432\)") as exc:
        prefect.server_on_postgresql(prefect_dev.ctx())
    assert len(exc.value.evidence.figures["problems"]) == 1


@pytest.mark.check_fails("validation.aws.prefect:database_migrated")
def test_migrations_probe_fails_when_a_table_is_missing(prefect_dev: PrefectEnv) -> None:
    db = prefect_dev.standin.home / "prefect" / "prefect.db"
    with sqlite3.connect(db) as conn:
        ddl = [row[0] for row in conn.execute("select sql from sqlite_master where tbl_name = 'variable' and sql is not null "
                                              "order by type desc")]  # the table first, then its indexes
        conn.execute("drop table variable")

    def recreate() -> None:
        with sqlite3.connect(db) as conn:
            for statement in ddl:
                conn.execute(statement)

    prefect_dev.undo(recreate)
    with pytest.raises(CheckFailed, match=r"/api/variables/filter answers 500: table variable is missing or behind "
                                          r"\(migrations incomplete\).*; read the prefect-server task's start-up logs") as exc:
        prefect.database_migrated(prefect_dev.ctx())
    reads = exc.value.evidence.figures["reads"]
    assert reads["variable"] == 500 and reads["flow_run"] == reads["deployment"] == 200, reads


# ---- S8's test flow, S9, S10 ------------------------------------------------------------------------
@pytest.mark.check_fails("validation.aws.prefect_flows:deployment_run_completed")
def test_test_flow_probe_fails_when_no_deployment_run_completed_in_the_last_day(prefect_dev: PrefectEnv) -> None:
    from prefect.states import Crashed

    prefect_dev.undo(prefect_dev.standin.reseed)
    history = prefect_dev.standin.history
    with prefect_dev.client() as client:
        for role in ("rerun", "latest"):
            client.set_flow_run_state(history.runs[role], Crashed(message="task stopped"), force=True)
    with pytest.raises(CheckFailed, match=r"^no deployment's flow run COMPLETED on work pool finks-dev-ecs "
                                          r"\(https://127\.0\.0\.1:\d+\) in the last 26 h; run one"):
        prefect_flows.deployment_run_completed(prefect_dev.ctx())


@pytest.mark.check_fails("validation.aws.prefect:ecs_work_pool")
def test_work_pool_probe_fails_without_a_live_worker(prefect_dev: PrefectEnv) -> None:
    import httpx

    pool = prefect_dev.outputs["ecs_work_pool"]
    # The next test's fixture heartbeats again: the worker comes back.
    httpx.delete(f"{prefect_dev.standin.api_url}/work_pools/{pool}/workers/{_worker()}").raise_for_status()
    with pytest.raises(CheckFailed, match=r"^work pool finks-dev-ecs has no live worker \(last heartbeats: none ever\); "
                                          r"read the logs of ECS service finks-dev-prefect-worker") as exc:
        prefect.ecs_work_pool(prefect_dev.ctx())
    assert len(exc.value.evidence.figures["problems"]) == 1


@pytest.mark.check_fails("validation.aws.prefect:ecs_work_pool")
def test_work_pool_probe_fails_on_a_stopped_worker_service(prefect_dev: PrefectEnv) -> None:
    ecs, cluster = prefect_dev.aws("ecs"), prefect_dev.outputs["ecs_cluster_name"]
    name = prefect_dev.outputs["ecs_services"]["prefect-worker"]
    prefect_dev.deployed.undo(lambda: ecs.update_service(cluster=cluster, service=name, desiredCount=1))
    ecs.update_service(cluster=cluster, service=name, desiredCount=0)
    with pytest.raises(CheckFailed, match=r"^ECS service finks-dev-prefect-worker wants 0 tasks; the stack wants 1"):
        prefect.ecs_work_pool(prefect_dev.ctx())


@pytest.mark.check_fails("validation.aws.prefect_flows:blocks_load")
def test_blocks_probe_fails_on_a_missing_block(prefect_dev: PrefectEnv) -> None:
    from flows.blocks import apply_blocks
    from tests.fixtures.prefect_env import prefect_at

    def reapply() -> None:
        with prefect_at(prefect_dev.standin.api_url):
            apply_blocks(prefect_dev.standin.settings)

    prefect_dev.undo(reapply)
    with prefect_dev.client() as client:
        block = client.read_block_document_by_name("finks-dev-silver", "s3-bucket")
        client.delete_block_document(block.id)
    with pytest.raises(CheckFailed, match=r"^block finks-dev-silver \(s3-bucket\) does not exist on "
                                          r"https://127\.0\.0\.1:\d+; run `finks blocks apply --env dev`") as exc:
        prefect_flows.blocks_load(prefect_dev.ctx())
    assert len(exc.value.evidence.figures["problems"]) == 1


# ---- S16 --------------------------------------------------------------------------------------------
@pytest.mark.check_fails("validation.aws.prefect_flows:ingestion_completes")
def test_ingestion_probe_fails_when_the_latest_ingestion_run_failed(prefect_dev: PrefectEnv) -> None:
    from prefect.states import Failed, Running

    from flows.ingestion import ingestion_flow

    with prefect_dev.client() as client:
        run = client.create_flow_run(ingestion_flow, parameters={"date": prefect_dev.standin.history.date},
                                     state=Running())
        client.set_flow_run_state(run.id, Failed(message="quotes: FMP answered 429 after 3 attempts"), force=True)
    prefect_dev.undo(lambda: _delete(prefect_dev, run.id))
    with pytest.raises(CheckFailed, match=rf"^the latest ingestion flow run, {run.name} \({run.id}\), ended FAILED: "
                                          r"quotes: FMP answered 429 .*; read its logs \(https://127\.0\.0\.1:\d+/runs/"
                                          r"flow-run/"):
        prefect_flows.ingestion_completes(prefect_dev.ctx())


@pytest.mark.check_fails("validation.aws.prefect_flows:transformation_processes")
def test_transformation_probe_fails_when_a_silver_partition_is_missing(prefect_dev: PrefectEnv) -> None:
    s3, silver = prefect_dev.aws("s3"), prefect_dev.outputs["buckets"]["silver"]
    date = prefect_dev.standin.history.date
    for obj in s3.list_objects_v2(Bucket=silver, Prefix=f"eod_prices/date={date}/").get("Contents", []):
        body = s3.get_object(Bucket=silver, Key=obj["Key"])["Body"].read()
        prefect_dev.deployed.undo(lambda k=obj["Key"], b=body: s3.put_object(Bucket=silver, Key=k, Body=b))
        s3.delete_object(Bucket=silver, Key=obj["Key"])
    with pytest.raises(CheckFailed, match=rf"^transformation run .* COMPLETED but s3://finks-dev-silver/eod_prices/"
                                          rf"date={date}/ holds no \*\.parquet; rerun the date") as exc:
        prefect_flows.transformation_processes(prefect_dev.ctx())
    assert len(exc.value.evidence.figures["problems"]) == 1


@pytest.mark.check_fails("validation.aws.prefect_flows:dbt_generates_gold")
def test_dbt_probe_fails_when_gold_was_never_published(prefect_dev: PrefectEnv) -> None:
    s3 = prefect_dev.aws("s3")
    s3.delete_object(Bucket=prefect_dev.outputs["buckets"]["gold"], Key="_published.json")  # the fixture puts it back
    with pytest.raises(CheckFailed, match=r"^dbt run .* COMPLETED but s3://finks-dev-gold/_published\.json does not "
                                          r"exist: gold was never published; rerun the dbt flow"):
        prefect_flows.dbt_generates_gold(prefect_dev.ctx())


@pytest.mark.check_fails("validation.aws.prefect_flows:dbt_generates_gold")
def test_dbt_probe_fails_on_a_publication_older_than_the_run(prefect_dev: PrefectEnv) -> None:
    s3, gold = prefect_dev.aws("s3"), prefect_dev.outputs["buckets"]["gold"]
    doc = json.loads(s3.get_object(Bucket=gold, Key="_published.json")["Body"].read())
    s3.put_object(Bucket=gold, Key="_published.json", Body=json.dumps({**doc, "published_at": "2024-01-02T00:00:00+00:00"}))
    with pytest.raises(CheckFailed, match=r"^gold was last published 2024-01-02 00:00:00\+00:00, before dbt run .* "
                                          r"started .*: that run published nothing"):
        prefect_flows.dbt_generates_gold(prefect_dev.ctx())


@pytest.mark.check_fails("validation.aws.prefect_flows:master_orchestrates")
def test_master_probe_fails_when_a_sub_flow_did_not_run(prefect_dev: PrefectEnv) -> None:
    with prefect_dev.client() as client:
        run = _daily(client, prefect_dev.standin.history.date, steps=("ingestion", "transformation"))
    prefect_dev.undo(lambda: _delete(prefect_dev, run))
    with pytest.raises(CheckFailed, match=r"^daily-pipeline run .* COMPLETED with sub-flows \['ingestion', "
                                          r"'transformation'\] .*, not ingestion → transformation → dbt all COMPLETED"):
        prefect_flows.master_orchestrates(prefect_dev.ctx())


@pytest.mark.check_fails("validation.aws.prefect_flows:daily_deployment")
def test_daily_deployment_probe_fails_on_an_inactive_schedule(prefect_dev: PrefectEnv) -> None:
    with prefect_dev.client() as client:
        dep = client.read_deployment_by_name("daily-pipeline/daily")
        schedule = dep.schedules[0]
        client.update_deployment_schedule(dep.id, schedule.id, active=False)

    def reactivate() -> None:
        with prefect_dev.client() as client:
            client.update_deployment_schedule(dep.id, schedule.id, active=True)

    prefect_dev.undo(reactivate)
    with pytest.raises(CheckFailed, match=r"^daily-pipeline/daily is scheduled \[\('0 2 \* \* \*', 'UTC', False\)\], "
                                          r"not daily 0 2 \* \* \* UTC, active; run `finks deploy --env dev`"):
        prefect_flows.daily_deployment(prefect_dev.ctx())


@pytest.mark.check_fails("validation.aws.prefect_flows:failures_handled")
def test_failures_probe_fails_on_a_failed_day_nobody_reran(prefect_dev: PrefectEnv) -> None:
    from flows.calendar import parse_date, previous_trading_day

    day = previous_trading_day(parse_date(prefect_dev.standin.history.failed_date)).isoformat()
    with prefect_dev.client() as client:
        run = _daily(client, day, fail_at="ingestion")
    prefect_dev.undo(lambda: _delete(prefect_dev, run))
    with pytest.raises(CheckFailed, match=rf"daily-pipeline run .* for {day} ended FAILED and no later run of {day} "
                                          rf"completed: rerun it \(`finks pipeline run --env dev --date {day}`\)") as exc:
        prefect_flows.failures_handled(prefect_dev.ctx())
    assert len(exc.value.evidence.figures["problems"]) == 1


@pytest.mark.check_fails("validation.aws.prefect_flows:failures_handled")
def test_failures_probe_fails_when_the_deployed_tasks_do_not_retry(prefect_dev: PrefectEnv) -> None:
    with prefect_dev.client() as client:
        run = _daily(client, prefect_dev.standin.history.date, retries=0)
    prefect_dev.undo(lambda: _delete(prefect_dev, run))
    with pytest.raises(CheckFailed, match=r"ingest-dataset task runs of daily-pipeline run .* have no retries \(\[0\]\): "
                                          r"is FINKS_TASK_RETRIES 0") as exc:
        prefect_flows.failures_handled(prefect_dev.ctx())
    assert len(exc.value.evidence.figures["problems"]) == 3  # ingest, transform and dbt tasks alike


# ---- helpers ---------------------------------------------------------------------------------------
def _daily(client: Any, date: str, **kwargs: Any) -> str:
    from tests.fixtures.prefect_env import daily_run

    return daily_run(client, date, **kwargs)


def _started_runs(client: Any) -> list[Any]:
    """Every flow run that started (the scheduler's future runs have not)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStartTime

    started = FlowRunFilter(start_time=FlowRunFilterStartTime(is_null_=False))
    found, offset = [], 0
    while page := client.read_flow_runs(flow_run_filter=started, limit=200, offset=offset):
        found += page
        offset += len(page)
    return found


def _worker() -> str:
    from tests.fixtures.prefect_env import WORKER

    return WORKER


def _delete(env: PrefectEnv, run_id: Any) -> None:
    """Delete a flow run and its sub-flow runs."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    with env.client() as client:
        children = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run_id])))
        for run in [*children, client.read_flow_run(run_id)]:
            client.delete_flow_run(run.id)
