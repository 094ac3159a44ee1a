"""S8, S9: the Prefect server behind the ALB and the worker service."""

from __future__ import annotations

from typing import Any

from infra.criteria.common import Result, container, env_of, one, require, task_def
from infra.criteria.compute import alb_https
from infra.plan import Plan


def prefect_behind_https_alb(plan: Plan) -> Result:
    alb_https(plan)
    tg = one(plan, "aws:lb/targetGroup:TargetGroup")
    require(tg.inputs.get("healthCheck", {}).get("path") == "/api/health", "target group health check is not /api/health")
    svc = one(plan, "aws:ecs/service:Service", "prefect-server")
    lbs = svc.inputs.get("loadBalancers", [])
    require(bool(lbs) and lbs[0].get("containerPort") == 4200, "Prefect server service not registered with the ALB")
    c = container(task_def(plan, "prefect-server"))
    env = env_of(c)
    secrets = {s.get("name"): str(s.get("valueFrom", "")) for s in c.get("secrets", [])}
    require(env.get("PREFECT_SERVER_DATABASE_DRIVER") == "postgresql+asyncpg", "database driver is not asyncpg")
    require(secrets.get("PREFECT_SERVER_DATABASE_PASSWORD", "").endswith(":password::"),
             "database password is not injected from the RDS-managed secret")
    require(not any("password" in str(v).lower() or "://" in str(v) and "@" in str(v) for v in env.values()), "a plain-text database URL or password")
    return "Prefect server behind the HTTPS ALB, health check /api/health, asyncpg URL from the RDS-managed secret", {"target_port": 4200}


def prefect_service_resilient(plan: Plan) -> Result:
    svc = one(plan, "aws:ecs/service:Service", "prefect-server")
    i = svc.inputs
    require(int(i.get("desiredCount", 0)) >= 1, "desiredCount < 1")
    require(i.get("deploymentCircuitBreaker", {}).get("rollback") is True, "no circuit breaker rollback")
    require(int(i.get("healthCheckGracePeriodSeconds", 0)) >= 60, "health check grace period too short for migrations")
    c = container(task_def(plan, "prefect-server"))
    require(bool(c.get("healthCheck")), "container has no health check")
    require("PREFECT_SERVER_DATABASE_HOST" in env_of(c), "server state is not on RDS")
    return ("ECS replaces a stopped server task (desiredCount, ALB + container health checks, circuit breaker); state lives on RDS so a restart keeps it",
            {"desired_count": int(i["desiredCount"]), "grace_s": int(i["healthCheckGracePeriodSeconds"])})


def prefect_logs_to_cloudwatch(plan: Plan) -> Result:
    groups = {g.inputs.get("name"): g for g in plan.of_type("aws:cloudwatch/logGroup:LogGroup")}
    for task in ("prefect-server", "prefect-worker"):
        opts = container(task_def(plan, task)).get("logConfiguration", {}).get("options", {})
        group = groups.get(opts.get("awslogs-group"))
        require(group is not None, f"{task} does not log to a managed CloudWatch group")
        assert group is not None
        require(bool(group.inputs.get("retentionInDays")), f"{task}'s log group keeps logs forever (no retention)")
    return "Prefect server and worker log to CloudWatch groups with retention", {"groups": sorted(str(g) for g in groups if "prefect" in str(g))}


def _arg(cmd: list[Any], flag: str) -> Any:
    return cmd[cmd.index(flag) + 1] if flag in cmd and cmd.index(flag) + 1 < len(cmd) else None


def prefect_worker_service(plan: Plan) -> Result:
    svc = one(plan, "aws:ecs/service:Service", "prefect-worker")
    require(int(svc.inputs.get("desiredCount", 0)) >= 1, "worker service runs no task (desiredCount < 1)")
    c = container(task_def(plan, "prefect-worker"))
    cmd = list(c.get("command", []))
    require(_arg(cmd, "--type") == "ecs", "worker does not serve an ECS work pool", command=cmd)
    pool = _arg(cmd, "--pool")
    require(bool(pool), "worker names no work pool (--pool)", command=cmd)
    role = one(plan, "aws:iam/rolePolicy:RolePolicy", "prefect-worker")
    policy = str(role.inputs.get("policy"))
    require("ecs:RunTask" in policy and "iam:PassRole" in policy, "worker role cannot run ECS tasks")
    return f"ECS worker service for work pool {pool} with a role that can run flow-run tasks", {"work_pool": pool, "desired": svc.inputs.get("desiredCount")}
