"""S12, S13, S19: the dbt task_def, Glue job and catalog, the API."""

from __future__ import annotations

from typing import Any

from infra.criteria.common import Result, container, one, require, some, task_def
from infra.plan import Plan


def dbt_task_definition(plan: Plan) -> Result:
    td = task_def(plan, "dbt")
    c = container(td)
    require("/dbt:" in c.get("image", ""), "dbt task does not use the dbt image")
    require("athena" in c.get("command", []), "dbt task does not target Athena")
    role = next((r for r in plan.of_type("aws:iam/rolePolicy:RolePolicy") if r.name.endswith("-pipeline-task-policy")), None)
    require(role is not None and "athena:StartQueryExecution" in str(role.inputs.get("policy")), "dbt task role cannot query Athena")
    return f"ECS task {td.inputs.get('family')} runs `dbt {' '.join(map(str, c['command']))}` with Athena access", {"family": td.inputs.get("family")}


SILVER_TABLES = ("eod_prices", "quotes", "profiles")


def glue_job_and_catalog(plan: Plan, root: Any = None) -> Result:
    from pathlib import Path

    from infra.components.glue import SCRIPT

    root = Path(root) if root is not None else Path(__file__).resolve().parents[2]
    db = one(plan, "aws:glue/catalogDatabase:CatalogDatabase")
    tables = plan.of_type("aws:glue/catalogTable:CatalogTable")
    names = sorted(str(t.inputs.get("name") or t.name.rsplit("-", 1)[-1]) for t in tables)
    missing = [t for t in SILVER_TABLES if not any(n.endswith(t) for n in names)]
    require(not missing, f"no Glue tables for silver {missing}", tables=names)
    crawler = one(plan, "aws:glue/crawler:Crawler")
    require(bool(crawler.inputs.get("s3Targets")), "crawler has no S3 target")
    job = one(plan, "aws:glue/job:Job")
    obj = one(plan, "aws:s3/bucketObjectv2:BucketObjectv2")
    key = obj.inputs.get("key", "")
    require(bool(key) and str(job.inputs.get("command", {}).get("scriptLocation", "")).endswith(key), "job does not run the uploaded script")
    source = obj.inputs.get("source", {})
    require(isinstance(source, dict) and Path(source.get("path", "")).resolve() == (root / SCRIPT).resolve(), "script asset is not jobs/glue_bronze_to_silver.py")
    require((root / SCRIPT).is_file(), f"{SCRIPT} does not exist yet")
    return (f"Glue database {db.inputs.get('name')}, {len(tables)} silver tables, crawler {crawler.inputs.get('name')}, job {job.inputs.get('name')} running s3://…/{key}",
            {"tables": names, "glue_version": job.inputs.get("glueVersion")})


def api_gateway_lambda(plan: Plan) -> Result:
    fn = one(plan, "aws:lambda/function:Function")
    methods = some(plan, "aws:apigateway/method:Method", "API Gateway method")
    require(all(m.inputs.get("apiKeyRequired") is True for m in methods), "a method does not require an API key")
    require(all(m.inputs.get("requestValidatorId") for m in methods), "a method has no request validator")
    integrations = plan.of_type("aws:apigateway/integration:Integration")
    routed = {(i.inputs.get("resourceId"), i.inputs.get("httpMethod")) for i in integrations
              if i.inputs.get("type") == "AWS_PROXY" and fn.name in str(i.inputs.get("uri"))}
    unrouted = [m.name for m in methods if (m.inputs.get("resourceId"), m.inputs.get("httpMethod")) not in routed]
    require(not unrouted, f"methods not proxied to the Lambda: {unrouted}")
    one(plan, "aws:apigateway/usagePlanKey:UsagePlanKey")
    usage = one(plan, "aws:apigateway/usagePlan:UsagePlan")
    require(bool(usage.inputs.get("throttleSettings")), "usage plan without throttling")
    require("FINKS_ATHENA_WORKGROUP" in fn.inputs.get("environment", {}).get("variables", {}), "Lambda has no Athena workgroup")
    return f"REST API -> Lambda {fn.inputs.get('name')} (Athena), API key + usage plan, request validation", {"methods": len(methods)}
