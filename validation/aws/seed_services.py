"""Seeding handlers for the program's ECS services (the Prefect server and its worker), and the
database address their task definitions name.

moto models a service's counts and its deployments but starts no task for it (its ``run_task``
cannot size a Fargate task whose containers declare no memory of their own, as ours do), and
it leaves ``runningCount`` at 0 until the service is updated: the handler creates the service
as the program declares it, then sets the desired count again, which moto takes as "every
desired task is running" — what ECS reports of a healthy service. The service's load balancer
is left out: the ALB and its target group are not seeded (``validation.aws.seed.NOT_SEEDED``).

The dry plan's mocks give the RDS instance a made-up address; the prefect-server task
definition names it. Wrapping the instance's handler, the real address moto gave the instance
replaces it, so the task definition names the database that exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from validation.aws import seed_platform  # noqa: F401 - its RDS handler must be registered before we wrap it
from validation.aws.seeding import HANDLERS, MOCK_REGION, Made, Seeder, handles, number, tag_list

if TYPE_CHECKING:
    from infra.plan import PlannedResource

_create_db_instance = HANDLERS["aws:rds/instance:Instance"]


@handles("aws:rds/instance:Instance")
def _db_instance(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    made = _create_db_instance(s, r, i)
    db = s.client("rds").describe_db_instances(DBInstanceIdentifier=i["identifier"])["DBInstances"][0]
    endpoint = db.get("Endpoint") or {}
    if endpoint.get("Address"):
        # infra.plan's mocks: `<name>.abc.<region>.rds.amazonaws.com`
        s.refs.add(f"{r.name}.abc.{MOCK_REGION}.rds.amazonaws.com", endpoint["Address"])
    return made


@handles("aws:ecs/service:Service")
def _service(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    ecs = s.client("ecs")
    network = i.get("networkConfiguration") or {}
    breaker = i.get("deploymentCircuitBreaker") or {}
    config: dict[str, Any] = {"deploymentCircuitBreaker": {"enable": bool(breaker.get("enable")),
                                                           "rollback": bool(breaker.get("rollback"))}}
    for key, field in (("deploymentMaximumPercent", "maximumPercent"),
                       ("deploymentMinimumHealthyPercent", "minimumHealthyPercent")):
        if i.get(key) is not None:
            config[field] = number(i[key])
    kwargs: dict[str, Any] = {
        "cluster": i["cluster"], "serviceName": i["name"], "taskDefinition": i["taskDefinition"],
        "desiredCount": int(i.get("desiredCount", 1)), "launchType": i.get("launchType", "FARGATE"),
        "networkConfiguration": {"awsvpcConfiguration": {
            "subnets": network.get("subnets", []), "securityGroups": network.get("securityGroups", []),
            "assignPublicIp": "ENABLED" if network.get("assignPublicIp") else "DISABLED"}},
        "deploymentConfiguration": config, "propagateTags": i.get("propagateTags", "NONE"),
        "enableExecuteCommand": bool(i.get("enableExecuteCommand")), "tags": tag_list(i, "key", "value"),
    }
    if i.get("platformVersion"):
        kwargs["platformVersion"] = i["platformVersion"]
    service = ecs.create_service(**kwargs)["service"]
    ecs.update_service(cluster=i["cluster"], service=i["name"], desiredCount=kwargs["desiredCount"])
    return service["serviceArn"], service["serviceArn"]
