"""Cloud steps as ECS (Fargate) tasks: the FMP connector and dbt.

The task settings (cluster, task definition families, network) live in the
`<project>-<env>-ecs-task` block; AWS access comes from prefect-aws's
AwsCredentials block, so the same code reaches AWS or the moto server.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flows.errors import EcsTaskFailed


@dataclass
class EcsTaskSettings:
    """What a RunTask call needs; stored as a JSON block by `finks blocks apply`."""

    cluster: str
    task_definitions: dict[str, str]  # role ("connector", "dbt") -> family[:revision]
    containers: dict[str, str]  # role -> container name to override
    subnets: list[str] = field(default_factory=list)
    security_groups: list[str] = field(default_factory=list)
    assign_public_ip: bool = False
    launch_type: str = "FARGATE"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EcsTaskSettings:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)

    def run_task_request(self, role: str, command: list[str], environment: dict[str, str]) -> dict[str, Any]:
        if role not in self.task_definitions:
            from core.errors import ConfigError

            raise ConfigError(
                f"no ECS task definition for {role!r} in the ECS task settings",
                hint=f"known: {', '.join(sorted(self.task_definitions))}; run 'finks blocks apply'",
            )
        request: dict[str, Any] = {
            "cluster": self.cluster,
            "taskDefinition": self.task_definitions[role],
            "launchType": self.launch_type,
            "count": 1,
            "startedBy": "finks-pipeline",
            "overrides": {
                "containerOverrides": [{
                    "name": self.containers.get(role, role),
                    "command": command,
                    "environment": [{"name": k, "value": v} for k, v in sorted(environment.items())],
                }]
            },
        }
        if self.subnets:
            request["networkConfiguration"] = {"awsvpcConfiguration": {
                "subnets": self.subnets,
                "securityGroups": self.security_groups,
                "assignPublicIp": "ENABLED" if self.assign_public_ip else "DISABLED",
            }}
        return request


@dataclass
class EcsRun:
    task_arn: str
    status: str
    exit_codes: dict[str, int | None]
    stopped_reason: str | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def run_ecs_task(
    ecs: Any,
    request: dict[str, Any],
    *,
    timeout_s: float,
    poll_s: float = 10.0,
    on_status: Callable[[str], None] | None = None,
) -> EcsRun:
    """RunTask and wait for STOPPED; raise EcsTaskFailed on a start failure, non-zero exit or timeout."""
    started = time.monotonic()
    response = ecs.run_task(**request)
    if response.get("failures") or not response.get("tasks"):
        reasons = "; ".join(f"{f.get('arn', '?')}: {f.get('reason')}" for f in response.get("failures", []))
        raise EcsTaskFailed(f"ECS could not start {request['taskDefinition']} on {request['cluster']}: {reasons or 'no task returned'}")
    arn = response["tasks"][0]["taskArn"]
    last = ""
    while True:
        task = ecs.describe_tasks(cluster=request["cluster"], tasks=[arn])["tasks"][0]
        status = task["lastStatus"]
        if status != last and on_status:
            on_status(status)
        last = status
        elapsed = time.monotonic() - started
        if status == "STOPPED":
            codes = {c["name"]: c.get("exitCode") for c in task.get("containers", [])}
            run = EcsRun(arn, status, codes, task.get("stoppedReason"), elapsed)
            bad = {n: c for n, c in codes.items() if c != 0}
            if bad or not codes:
                raise EcsTaskFailed(
                    f"ECS task {arn} ({request['taskDefinition']}) stopped with exit codes {bad or codes}: "
                    f"{task.get('stoppedReason') or 'no reason given'}",
                    hint="read the task's CloudWatch log stream for the container's error",
                )
            return run
        if elapsed >= timeout_s:
            ecs.stop_task(cluster=request["cluster"], task=arn, reason=f"finks: timeout after {timeout_s:.0f}s")
            raise EcsTaskFailed(
                f"ECS task {arn} ({request['taskDefinition']}) still {status} after {elapsed:.0f}s (timeout {timeout_s:.0f}s); it was stopped",
                hint="raise the step's timeout or look at the task's logs",
            )
        time.sleep(max(0.05, min(poll_s, timeout_s - elapsed)))
