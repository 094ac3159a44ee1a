"""Deployments (S16): prefect.yaml applied on a real Prefect server with the
environment's work pool, and the ECS pool's job template for AWS."""

from __future__ import annotations

import pytest

from core.settings import Settings


@pytest.mark.services
def test_deploy_schedules_the_daily_pipeline_at_two_utc(local_stack: Settings) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.schedules import CronSchedule

    from flows.deploy import apply_deployments

    report = apply_deployments(local_stack, ["daily", "backfill"])
    again = apply_deployments(local_stack, ["daily"])

    assert report["daily-pipeline/daily"]["schedule"] == "0 2 * * * UTC"
    assert again["daily-pipeline/daily"]["id"] == report["daily-pipeline/daily"]["id"]  # updated, not duplicated
    with get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name("daily-pipeline/daily")
        pool = client.read_work_pool(local_stack.worker_pool)
    assert dep.work_pool_name == local_stack.worker_pool and pool.type == "process"
    schedules = [s.schedule for s in dep.schedules]
    assert [(s.cron, s.timezone) for s in schedules if isinstance(s, CronSchedule)] == [("0 2 * * *", "UTC")]
    assert len(schedules) == 1
    assert dep.entrypoint == "flows/master_flow.py:daily_pipeline"


def test_ecs_pool_template_renders_into_a_fargate_run_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ECS work pool's job template (prefect-aws) with our defaults renders the
    RunTask request the ECS worker will send: cluster, Fargate, private subnets, image."""
    import asyncio

    from prefect_aws.workers.ecs_worker import ECSJobConfiguration

    from core.settings import load_settings
    from flows.deploy import ecs_base_job_template, image, work_pool

    monkeypatch.setenv("FINKS_ECS_SUBNETS", "subnet-0aaa,subnet-0bbb")
    monkeypatch.setenv("FINKS_ECS_SECURITY_GROUPS", "sg-0tasks")
    monkeypatch.setenv("FINKS_ECS_VPC_ID", "vpc-0main")
    settings = load_settings(env="prod")
    config = asyncio.run(ECSJobConfiguration.from_template_and_values(ecs_base_job_template(settings), {}))

    assert work_pool(settings) == ("finks-prod-ecs", "ecs")
    assert config.task_run_request["cluster"] == "finks-prod"
    assert config.task_run_request["launchType"] == "FARGATE"
    assert config.network_configuration["awsvpcConfiguration"]["subnets"] == ["subnet-0aaa", "subnet-0bbb"]
    assert config.task_definition["containerDefinitions"][0]["image"] == image(settings)
