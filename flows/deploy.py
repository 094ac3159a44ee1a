"""Deployments and schedules on the Prefect server (`finks deploy`).

`prefect.yaml` is the one list of deployments; this applies it through
Prefect's Python API so the work pool follows the environment: a process
pool locally (flows run from this checkout), an ECS pool in AWS (flows run
from the pipeline image).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from core.errors import ConfigError

if TYPE_CHECKING:
    from core.settings import Settings


def work_pool(settings: Settings) -> tuple[str, str]:
    """(name, type) of the environment's work pool."""
    if settings.is_local:
        return settings.worker_pool, "process"
    return f"{settings.project}-{settings.env}-ecs", "ecs"


def read_deployments(root: Path) -> list[dict[str, Any]]:
    path = root / "prefect.yaml"
    try:
        spec = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the deployments ({exc})") from exc
    deployments = spec.get("deployments") if isinstance(spec, dict) else None
    if not deployments:
        raise ConfigError(f"{path}: no 'deployments' list")
    return list(deployments)


def ensure_work_pool(settings: Settings) -> str:
    """Create the pool when missing; an existing pool is left as it is (the worker may be using it)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    name, kind = work_pool(settings)
    template: dict[str, Any] = {}
    if kind == "ecs":
        template = ecs_base_job_template(settings)
    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name=name, type=kind, base_job_template=template))
            return "created"
        except ObjectAlreadyExists:
            return "unchanged"


def ecs_base_job_template(settings: Settings) -> dict[str, Any]:
    """prefect-aws's ECS template with our cluster, network and Fargate defaults filled in."""
    from prefect_aws.workers.ecs_worker import ECSWorker

    from flows.blocks import ecs_task_settings

    template = ECSWorker.get_default_base_job_template()
    conf, props = ecs_task_settings(settings), template["variables"]["properties"]
    props["cluster"]["default"] = conf["cluster"]
    props["launch_type"]["default"] = "FARGATE"
    props["image"]["default"] = image(settings)
    if conf["subnets"]:
        # prefect-aws accepts a custom network configuration only together with its VPC.
        vpc = os.environ.get("FINKS_ECS_VPC_ID")
        if not vpc:
            raise ConfigError("FINKS_ECS_SUBNETS is set but FINKS_ECS_VPC_ID is not",
                              hint="export the VPC id of those subnets (an output of the infra stack)")
        props["vpc_id"]["default"] = vpc
        props["network_configuration"]["default"] = {"awsvpcConfiguration": {
            "subnets": conf["subnets"], "securityGroups": conf["security_groups"], "assignPublicIp": "DISABLED"}}
    return dict(template)


def image(settings: Settings) -> str:
    """The image ECS flow runs start from: flows/Dockerfile, pushed to ECR as `<prefix>/prefect`.

    FINKS_PIPELINE_IMAGE (the full ECR URI with its immutable tag, set by CI) wins.
    """
    return os.environ.get("FINKS_PIPELINE_IMAGE") or f"{settings.project}-{settings.env}/prefect:latest"


def apply_deployments(settings: Settings, names: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Create or update each deployment; returns {flow/deployment: {id, schedule, pool}}.

    Each deployment is registered with ``RunnerDeployment.apply`` rather than
    ``Flow.deploy``: ``deploy`` prints on stdout, once per deployment, a table
    and the advice to ``.serve`` flows rather than use a process pool (ours is
    one on purpose: `finks dev up --worker` runs it). stdout is where
    `finks deploy` prints its summary, or its one ``--json`` document.
    """
    from prefect import Flow
    from prefect.client.schemas.schedules import CronSchedule

    pool, _ = work_pool(settings)
    report: dict[str, dict[str, Any]] = {"work-pool": {"name": pool, "status": ensure_work_pool(settings)}}
    env = {"FINKS_ENV": settings.env, "FINKS_ROOT": str(settings.root)}
    for spec in read_deployments(settings.root):
        if names and spec["name"] not in names:
            continue
        schedules = [CronSchedule(cron=s["cron"], timezone=s.get("timezone", "UTC")) for s in spec.get("schedules", [])]
        common: dict[str, Any] = {
            "name": spec["name"], "work_pool_name": pool, "tags": spec.get("tags"),
            "description": spec.get("description"), "schedules": schedules or None,
            "parameters": spec.get("parameters"),
        }
        if settings.is_local:
            flow: Any = Flow.from_source(source=str(settings.root), entrypoint=spec["entrypoint"])
            deployment = flow.to_deployment(job_variables={"env": env, "working_dir": str(settings.root)}, **common)
            dep_id = deployment.apply(work_pool_name=pool)
        else:
            from prefect.flows import load_flow_from_entrypoint

            flow = load_flow_from_entrypoint(str(settings.root / spec["entrypoint"]))
            # The image is built and pushed by CI (flows/Dockerfile): registered as is.
            deployment = flow.to_deployment(job_variables={"env": env}, **common)
            dep_id = deployment.apply(work_pool_name=pool, image=image(settings))
        report[f"{flow.name}/{spec['name']}"] = {
            "id": str(dep_id), "pool": pool,
            "schedule": ", ".join(f"{s['cron']} {s.get('timezone', 'UTC')}" for s in spec.get("schedules", [])) or None,
        }
    return report
