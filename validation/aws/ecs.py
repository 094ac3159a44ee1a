"""Live probes for S5: the ECS cluster, its task definitions, the ECR repositories, the log groups."""

from __future__ import annotations

import time
from typing import Any

from finks.checks import CheckContext, Evidence
from validation.aws.live import Live

LOG_WINDOW_DAYS = 7  # a log group nothing wrote to in a week: its task does not run (or logs elsewhere)


def fargate_cluster(ctx: CheckContext) -> Evidence:
    """The cluster is ACTIVE, offers the FARGATE capacity provider (and uses it by default), with
    Container Insights on (the dashboard's running-task metric comes from it)."""
    live = Live.of(ctx)
    name = live.cluster_name()
    clusters = live.client("ecs").describe_clusters(clusters=[name], include=["SETTINGS"])["clusters"]
    if not clusters:
        raise live.fail([f"ECS cluster {name} does not exist"], {"cluster": name})
    cluster = clusters[0]
    providers = cluster.get("capacityProviders", [])
    default = [s.get("capacityProvider") for s in cluster.get("defaultCapacityProviderStrategy", [])]
    insights = {s.get("name"): s.get("value") for s in cluster.get("settings", [])}.get("containerInsights")
    figures = {"cluster": name, "status": cluster.get("status"), "capacity_providers": providers,
               "default_strategy": default, "container_insights": insights}
    problems = []
    if cluster.get("status") != "ACTIVE":
        problems.append(f"ECS cluster {name} is {cluster.get('status')}, not ACTIVE")
    if "FARGATE" not in providers:
        problems.append(f"ECS cluster {name} does not offer the FARGATE capacity provider (has {providers or 'none'})")
    elif "FARGATE" not in default:
        problems.append(f"ECS cluster {name}'s default capacity provider strategy is {default or 'empty'}, not FARGATE")
    if insights != "enabled":
        problems.append(f"ECS cluster {name} has Container Insights {insights or 'off'}: the running-task alarm has no data")
    if problems:
        raise live.fail(problems, figures)
    return live.evidence(f"ECS cluster {name} ACTIVE with {', '.join(providers)} (default FARGATE), Container Insights on",
                         figures, ["no task is started: capacity is declared, not exercised"])


def task_definitions(ctx: CheckContext) -> Evidence:
    """Each task family the program declares has an ACTIVE current revision that runs on Fargate
    (awsvpc), with an execution role, images from this stack's ECR repositories and every
    essential container logging to CloudWatch."""
    from botocore.exceptions import ClientError

    from infra.components.ecs import TASKS

    live = Live.of(ctx)
    families = live.task_families()
    repos = set((live.repositories() or {}).values())
    ecs = live.client("ecs")
    problems = [f"no task family for {task} found ({live.found_by})" for task in TASKS if task not in families]
    current: dict[str, Any] = {}
    for family in sorted(families.values()):
        try:
            td = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
        except ClientError:
            problems.append(f"task family {family} has no ACTIVE revision")
            continue
        if td.get("status", "ACTIVE") != "ACTIVE":  # AWS answers a family with its latest ACTIVE revision; moto with its latest
            problems.append(f"task family {family} has no ACTIVE revision (its latest, {td['revision']}, is {td.get('status')})")
            continue
        current[family] = f"{family}:{td['revision']}"
        if "FARGATE" not in td.get("requiresCompatibilities", []) or td.get("networkMode") != "awsvpc":
            problems.append(f"{family}:{td['revision']} is not a Fargate task (compatibilities "
                            f"{td.get('requiresCompatibilities')}, network mode {td.get('networkMode')})")
        if not td.get("executionRoleArn"):
            problems.append(f"{family}:{td['revision']} has no execution role: it cannot pull its image or secrets")
        for container in td.get("containerDefinitions", []):
            if not container.get("essential", True):
                continue  # a sidecar (the trace collector) brings its own public image
            image = str(container.get("image", ""))
            repo = image.split("/", 1)[-1].rsplit(":", 1)[0]
            if repos and repo not in repos:
                problems.append(f"{family}:{td['revision']} container {container['name']} runs {image}, "
                                "not an image of this stack's ECR repositories")
            log = container.get("logConfiguration") or {}
            if log.get("logDriver") != "awslogs":
                problems.append(f"{family}:{td['revision']} container {container['name']} does not log to CloudWatch")
    figures = {"current_revisions": current}
    if problems:
        raise live.fail(problems, figures)
    return live.evidence("current revisions " + ", ".join(sorted(current.values())) + ": Fargate, awsvpc, ECR images, "
                         "awslogs", figures, ["task definitions are registered, not run"])


def ecr_repositories(ctx: CheckContext) -> Evidence:
    """Each repository the program declares exists, scans images on push, keeps tags immutable,
    is KMS-encrypted and has a lifecycle policy (old images expire)."""
    from botocore.exceptions import ClientError

    from infra.components.ecs import REPOSITORIES

    live = Live.of(ctx)
    repos = live.repositories()
    ecr = live.client("ecr")
    problems = [f"no ECR repository for {key} found ({live.found_by})" for key in REPOSITORIES if key not in repos]
    seen: dict[str, Any] = {}
    for name in sorted(repos.values()):
        try:
            repo = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
        except ClientError:
            problems.append(f"ECR repository {name} does not exist")
            continue
        try:
            ecr.get_lifecycle_policy(repositoryName=name)
            lifecycle = True
        except ClientError:
            lifecycle = False
        scan = bool(repo.get("imageScanningConfiguration", {}).get("scanOnPush"))
        encryption = repo.get("encryptionConfiguration", {}).get("encryptionType")
        seen[name] = {"scan_on_push": scan, "tag_mutability": repo.get("imageTagMutability"),
                      "encryption": encryption, "lifecycle_policy": lifecycle}
        if not scan:
            problems.append(f"ECR repository {name} does not scan images on push")
        if repo.get("imageTagMutability") != "IMMUTABLE":
            problems.append(f"ECR repository {name} lets a tag be pushed over (MUTABLE)")
        if encryption != "KMS":
            problems.append(f"ECR repository {name} is encrypted with {encryption}, not the stack's KMS key")
        if not lifecycle:
            problems.append(f"ECR repository {name} has no lifecycle policy: images pile up")
    if problems:
        raise live.fail(problems, {"repositories": seen})
    return live.evidence(f"{len(seen)} ECR repositories ({', '.join(sorted(seen))}): scan on push, immutable tags, "
                         "KMS, lifecycle policy", {"repositories": seen})


def log_groups_receive_events(ctx: CheckContext) -> Evidence:
    """Each task's log group exists with a retention and has received an event in the last week:
    its containers run and their logs arrive."""
    live = Live.of(ctx)
    groups = live.log_groups()
    if not groups:
        raise live.nothing_deployed("log groups")
    logs = live.client("logs")
    since = int((time.time() - LOG_WINDOW_DAYS * 86400) * 1000)
    problems: list[str] = []
    seen: dict[str, Any] = {}
    for task, name in sorted(groups.items()):
        found = [g for g in logs.describe_log_groups(logGroupNamePrefix=name).get("logGroups", [])
                 if g["logGroupName"] == name]
        if not found:
            problems.append(f"log group {name} ({task}) does not exist")
            continue
        retention = found[0].get("retentionInDays")
        events = logs.filter_log_events(logGroupName=name, startTime=since, limit=1).get("events", [])
        seen[name] = {"retention_days": retention, "events_in_window": bool(events),
                      "last_event": events[0]["timestamp"] if events else None}
        if not retention:
            problems.append(f"log group {name} keeps its events forever (no retention)")
        if not events:
            problems.append(f"log group {name} ({task}) received no event in {LOG_WINDOW_DAYS} days: the {task} task "
                            "has not run or logs elsewhere")
    if problems:
        raise live.fail(problems, {"log_groups": seen},
                        "start the task (its ECS service, or a flow run) and check its logConfiguration; "
                        + live.redeploy())
    return live.evidence(f"{len(seen)} log groups with retention, each with events in the last {LOG_WINDOW_DAYS} days",
                         {"log_groups": seen, "window_days": LOG_WINDOW_DAYS})
