"""The plan's success criteria as assertions over a dry plan.

Each function takes a :class:`~infra.plan.Plan` and returns ``(message,
figures)`` when the criterion holds, or raises :class:`NotMet` saying what
is missing. `validation/infra.py` adapts them to finks checks; the tests
call them directly.
"""

from __future__ import annotations

import json
from typing import Any

from infra.plan import Plan, PlannedResource

Result = tuple[str, dict[str, Any]]


class NotMet(Exception):
    def __init__(self, message: str, figures: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.figures = figures or {}


def _require(cond: bool, message: str, **figures: Any) -> None:
    if not cond:
        raise NotMet(message, figures)


def _id(r: PlannedResource) -> str:
    return f"{r.name}-id"


def _containers(td: PlannedResource) -> list[dict[str, Any]]:
    raw = td.inputs.get("containerDefinitions", "[]")
    return json.loads(raw) if isinstance(raw, str) else list(raw)


def _task(plan: Plan, family_suffix: str) -> PlannedResource:
    family = f"finks-{plan.stack}-{family_suffix}"
    found = [t for t in plan.of_type("aws:ecs/taskDefinition:TaskDefinition") if t.inputs.get("family") == family]
    _require(len(found) == 1, f"no ECS task definition for {family_suffix}", families=[t.inputs.get("family") for t in plan.of_type("aws:ecs/taskDefinition:TaskDefinition")])
    return found[0]


def _attached(plan: Plan, type_: str, bucket: PlannedResource) -> list[PlannedResource]:
    return [r for r in plan.of_type(type_) if r.inputs.get("bucket") in (_id(bucket), bucket.inputs.get("bucket"))]


# ---- S3 --------------------------------------------------------------------
def vpc_public_private_subnets(plan: Plan) -> Result:
    vpcs = plan.of_type("aws:ec2/vpc:Vpc")
    _require(len(vpcs) == 1, "expected exactly one VPC", vpcs=len(vpcs))
    subnets = plan.of_type("aws:ec2/subnet:Subnet")
    public = [s for s in subnets if s.inputs.get("tags", {}).get("Tier") == "public"]
    private = [s for s in subnets if s.inputs.get("tags", {}).get("Tier") == "private"]
    zones_pub = {s.inputs.get("availabilityZone") for s in public}
    zones_priv = {s.inputs.get("availabilityZone") for s in private}
    _require(len(zones_pub) >= 2 and zones_pub == zones_priv, "public and private subnets must span the same >= 2 zones",
             public=sorted(zones_pub), private=sorted(zones_priv))
    _require(not any(s.inputs.get("mapPublicIpOnLaunch") for s in private), "a private subnet maps public IPs")
    igw_routes = [rt for rt in plan.of_type("aws:ec2/routeTable:RouteTable") if any(r.get("gatewayId") for r in rt.inputs.get("routes", []))]
    _require(len(igw_routes) >= 1 and len(plan.of_type("aws:ec2/internetGateway:InternetGateway")) == 1, "no internet gateway route for the public subnets")
    private_rts = [rt for rt in plan.of_type("aws:ec2/routeTable:RouteTable") if all(r.get("natGatewayId") for r in rt.inputs.get("routes", [])) and rt.inputs.get("routes")]
    _require(len(private_rts) == len(private), "each private subnet needs a route table through a NAT gateway")
    return (f"VPC {vpcs[0].inputs.get('cidrBlock')} with {len(public)} public and {len(private)} private subnets over {len(zones_pub)} zones",
            {"public_subnets": len(public), "private_subnets": len(private), "zones": sorted(zones_pub)})


def lake_buckets_configured(plan: Plan) -> Result:
    buckets = {b.inputs.get("bucket", ""): b for b in plan.of_type("aws:s3/bucket:Bucket")}
    figures: dict[str, Any] = {}
    for zone in ("bronze", "silver", "gold"):
        name = next((n for n in buckets if n.endswith(f"-{zone}")), None)
        _require(name is not None, f"no {zone} bucket", buckets=sorted(buckets))
        assert name is not None
        b = buckets[name]
        versioning = _attached(plan, "aws:s3/bucketVersioning:BucketVersioning", b)
        _require(any(v.inputs.get("versioningConfiguration", {}).get("status") == "Enabled" for v in versioning), f"{name}: versioning not enabled")
        lifecycle = _attached(plan, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", b)
        rules = [r for lc in lifecycle for r in lc.inputs.get("rules", []) if r.get("status") == "Enabled"]
        _require(any(r.get("noncurrentVersionExpiration") for r in rules), f"{name}: no lifecycle rule expiring old versions")
        if zone == "bronze":
            _require(any(r.get("transitions") for r in rules), f"{name}: no lifecycle transition to a cheaper tier")
        logging = _attached(plan, "aws:s3/bucketLogging:BucketLogging", b)
        _require(bool(logging) and bool(logging[0].inputs.get("targetBucket")), f"{name}: access logging off")
        _require(bool(_attached(plan, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", b)), f"{name}: no encryption")
        _require(bool(_attached(plan, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", b)), f"{name}: no public-access block")
        policies = _attached(plan, "aws:s3/bucketPolicy:BucketPolicy", b)
        _require(any("aws:SecureTransport" in str(p.inputs.get("policy")) for p in policies), f"{name}: no TLS-only policy")
        figures[zone] = {"bucket": name, "lifecycle_rules": len(rules), "log_prefix": logging[0].inputs.get("targetPrefix")}
    return "bronze, silver, gold: versioning, lifecycle, access logging, SSE, public-access block, TLS-only", figures


def secrets_manager_configured(plan: Plan) -> Result:
    secrets = plan.of_type("aws:secretsmanager/secret:Secret")
    fmp = [s for s in secrets if str(s.inputs.get("name", "")).endswith("/fmp-api-key")]
    _require(len(fmp) == 1, "no Secrets Manager secret for the FMP key", secrets=[s.inputs.get("name") for s in secrets])
    _require(bool(fmp[0].inputs.get("kmsKeyId")), "FMP secret not encrypted with the platform key")
    _require(not plan.of_type("aws:secretsmanager/secretVersion:SecretVersion"), "a secret value is in the program")
    db = plan.one("aws:rds/instance:Instance")
    _require(db.inputs.get("manageMasterUserPassword") is True and "password" not in db.inputs, "database password not managed by RDS")
    return (f"secret {fmp[0].inputs['name']} (KMS, value set out of band); DB master password managed by RDS in Secrets Manager",
            {"secrets": [s.inputs.get("name") for s in secrets], "db_managed_password": True})


def base_iam_roles(plan: Plan) -> Result:
    from infra.policies import no_wildcard_iam

    roles = {str(r.inputs.get("name", "")): r for r in plan.of_type("aws:iam/role:Role")}
    expected = ("ecs-execution", "pipeline-task", "prefect-server", "prefect-worker", "glue", "api-lambda")
    missing = [e for e in expected if not any(n.endswith(f"-{e}") for n in roles)]
    _require(not missing, f"missing IAM roles: {missing}", roles=sorted(roles))
    wild = list(no_wildcard_iam(plan))
    _require(not wild, f"wildcard IAM: {wild[:1]}", violations=len(wild))
    return f"{len(roles)} roles ({', '.join(expected)}), none with * on *", {"roles": sorted(roles)}


# ---- S5 --------------------------------------------------------------------
def ecs_fargate_cluster(plan: Plan) -> Result:
    cluster = plan.one("aws:ecs/cluster:Cluster")
    cap = plan.one("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders")
    _require("FARGATE" in cap.inputs.get("capacityProviders", []), "cluster has no FARGATE capacity provider")
    insights = {s.get("name"): s.get("value") for s in cluster.inputs.get("settings", [])}
    _require(insights.get("containerInsights") == "enabled", "Container Insights off")
    tds = plan.of_type("aws:ecs/taskDefinition:TaskDefinition")
    _require(all(t.inputs.get("requiresCompatibilities") == ["FARGATE"] for t in tds), "a task definition is not Fargate")
    return f"cluster {cluster.inputs.get('name')} on Fargate (+Spot), Container Insights on", {"capacity_providers": cap.inputs.get("capacityProviders")}


def ecs_task_definitions(plan: Plan) -> Result:
    families = {}
    for name in ("prefect-server", "prefect-worker", "worker"):
        td = _task(plan, name)
        c = _containers(td)[0]
        _require(c.get("logConfiguration", {}).get("logDriver") == "awslogs", f"{name}: no awslogs logging")
        _require(td.inputs.get("networkMode") == "awsvpc" and bool(td.inputs.get("executionRoleArn")), f"{name}: needs awsvpc and an execution role")
        families[name] = td.inputs.get("family")
    worker = _containers(_task(plan, "prefect-worker"))[0]
    _require("worker" in worker.get("command", []) and any(e["name"] == "PREFECT_API_URL" for e in worker.get("environment", [])),
             "prefect worker must start `prefect worker` with PREFECT_API_URL")
    return "task definitions: Prefect server, Prefect worker (the plan's agent), generic worker", {"families": families}


def ecr_repositories(plan: Plan) -> Result:
    repos = plan.of_type("aws:ecr/repository:Repository")
    names = sorted(str(r.inputs.get("name")) for r in repos)
    for want in ("prefect", "fmp-connector", "dbt"):
        _require(any(n.endswith(f"/{want}") for n in names), f"no ECR repository for {want}", repositories=names)
    _require(all(r.inputs.get("imageScanningConfiguration", {}).get("scanOnPush") for r in repos), "scan on push off")
    _require(all(r.inputs.get("imageTagMutability") == "IMMUTABLE" for r in repos), "mutable image tags")
    return f"{len(repos)} ECR repositories (immutable tags, scan on push)", {"repositories": names}


def log_groups_with_retention(plan: Plan) -> Result:
    groups = plan.of_type("aws:cloudwatch/logGroup:LogGroup")
    bad = [g.inputs.get("name") for g in groups if not g.inputs.get("retentionInDays")]
    _require(not bad, f"log groups without retention: {bad}")
    for td in plan.of_type("aws:ecs/taskDefinition:TaskDefinition"):
        group = _containers(td)[0].get("logConfiguration", {}).get("options", {}).get("awslogs-group")
        _require(group in {g.inputs.get("name") for g in groups}, f"{td.inputs.get('family')} logs to an unmanaged group {group}")
    days = sorted({int(g.inputs["retentionInDays"]) for g in groups})
    return f"{len(groups)} log groups, retention {days} days, every task logs to one", {"log_groups": sorted(str(g.inputs.get("name")) for g in groups)}


# ---- S6 --------------------------------------------------------------------
def rds_postgres_multi_az(plan: Plan, expect_multi_az: bool) -> Result:
    db = plan.one("aws:rds/instance:Instance")
    i = db.inputs
    _require(i.get("engine") == "postgres", "database is not PostgreSQL")
    _require(i.get("publiclyAccessible") is False, "database is publicly accessible")
    _require(i.get("storageEncrypted") is True, "database storage not encrypted")
    _require(int(i.get("backupRetentionPeriod", 0)) >= 1, "automated backups off")
    group = plan.one("aws:rds/subnetGroup:SubnetGroup")
    private_ids = {_id(s) for s in plan.of_type("aws:ec2/subnet:Subnet") if s.inputs.get("tags", {}).get("Tier") == "private"}
    _require(set(group.inputs.get("subnetIds", [])) <= private_ids, "database subnet group uses non-private subnets")
    _require(bool(i.get("multiAz")) == expect_multi_az, f"multiAz is {i.get('multiAz')}, the stack config asks {expect_multi_az}")
    return (f"PostgreSQL {i.get('engineVersion')} {i.get('instanceClass')}, multiAz={i.get('multiAz')}, private, encrypted, backups {int(i['backupRetentionPeriod'])} days",
            {"multi_az": bool(i.get("multiAz")), "backup_days": int(i["backupRetentionPeriod"])})


def security_group_chain(plan: Plan) -> Result:
    from infra.policies import no_open_ingress

    sgs = {_id(s): s.name for s in plan.of_type("aws:ec2/securityGroup:SecurityGroup")}
    edges = []
    for rule in plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        src = rule.inputs.get("referencedSecurityGroupId") or rule.inputs.get("cidrIpv4")
        edges.append((sgs.get(str(src), str(src)), sgs.get(rule.inputs["securityGroupId"], "?"), int(rule.inputs.get("fromPort", 0))))
    alb = next(n for n in sgs.values() if n.endswith("alb-sg"))
    svc = next(n for n in sgs.values() if n.endswith("service-sg"))
    db = next(n for n in sgs.values() if n.endswith("db-sg"))
    _require(("0.0.0.0/0", alb, 443) in edges, "ALB does not accept HTTPS from the internet", edges=edges)
    _require((alb, svc, 4200) in edges, "ECS service does not accept the ALB", edges=edges)
    _require((svc, db, 5432) in edges, "RDS does not accept the ECS service", edges=edges)
    into_db = [e for e in edges if e[1] == db]
    _require(into_db == [(svc, db, 5432)], f"RDS reachable from more than the ECS service: {into_db}")
    open_ = list(no_open_ingress(plan))
    _require(not open_, f"open ingress: {open_[:1]}")
    return "security groups chain internet:443 -> ALB -> ECS:4200 -> RDS:5432 and nothing else", {"edges": [list(e) for e in edges]}


def alb_https(plan: Plan) -> Result:
    lb = plan.one("aws:lb/loadBalancer:LoadBalancer")
    listeners = plan.of_type("aws:lb/listener:Listener")
    https = [r for r in listeners if r.inputs.get("protocol") == "HTTPS"]
    _require(len(https) == 1 and int(https[0].inputs.get("port", 0)) == 443, "no HTTPS listener on 443")
    _require(bool(https[0].inputs.get("certificateArn")), "HTTPS listener without certificate")
    _require(str(https[0].inputs.get("sslPolicy", "")).startswith("ELBSecurityPolicy-TLS13"), "TLS policy below TLS 1.2/1.3")
    cert = plan.one("aws:acm/certificate:Certificate")
    http = [r for r in listeners if r.inputs.get("protocol") == "HTTP"]
    _require(all(r.inputs["defaultActions"][0].get("type") == "redirect" for r in http), "plain HTTP listener does not redirect")
    return (f"ALB {lb.inputs.get('name')}: HTTPS 443 with ACM certificate for {cert.inputs.get('domainName')}, {https[0].inputs.get('sslPolicy')}, HTTP redirects",
            {"domain": cert.inputs.get("domainName"), "ssl_policy": https[0].inputs.get("sslPolicy")})


def nat_gateways(plan: Plan, per_az: bool) -> Result:
    nats = plan.of_type("aws:ec2/natGateway:NatGateway")
    zones = {s.inputs.get("availabilityZone") for s in plan.of_type("aws:ec2/subnet:Subnet")}
    want = len(zones) if per_az else 1
    _require(len(nats) == want, f"{len(nats)} NAT gateways, expected {want}", zones=sorted(zones))
    public_ids = {_id(s) for s in plan.of_type("aws:ec2/subnet:Subnet") if s.inputs.get("tags", {}).get("Tier") == "public"}
    _require(all(n.inputs.get("subnetId") in public_ids for n in nats), "a NAT gateway is not in a public subnet")
    return f"{len(nats)} NAT gateway(s) in public subnets ({'one per zone' if per_az else 'single'})", {"nat_gateways": len(nats)}


# ---- S8 / S9 ---------------------------------------------------------------
def prefect_behind_https_alb(plan: Plan) -> Result:
    alb_https(plan)
    tg = plan.one("aws:lb/targetGroup:TargetGroup")
    _require(tg.inputs.get("healthCheck", {}).get("path") == "/api/health", "target group health check is not /api/health")
    svc = plan.one("aws:ecs/service:Service", "prefect-server")
    lbs = svc.inputs.get("loadBalancers", [])
    _require(bool(lbs) and lbs[0].get("containerPort") == 4200, "Prefect server service not registered with the ALB")
    c = _containers(_task(plan, "prefect-server"))[0]
    env = {e["name"]: e["value"] for e in c.get("environment", [])}
    secrets = {s["name"]: s["valueFrom"] for s in c.get("secrets", [])}
    _require(env.get("PREFECT_SERVER_DATABASE_DRIVER") == "postgresql+asyncpg", "database driver is not asyncpg")
    _require("PREFECT_SERVER_DATABASE_PASSWORD" in secrets and secrets["PREFECT_SERVER_DATABASE_PASSWORD"].endswith(":password::"),
             "database password is not injected from the RDS-managed secret")
    _require(not any("password" in str(v).lower() or "://" in str(v) and "@" in str(v) for v in env.values()), "a plain-text database URL or password")
    return "Prefect server behind the HTTPS ALB, health check /api/health, asyncpg URL from the RDS-managed secret", {"target_port": 4200}


def prefect_service_resilient(plan: Plan) -> Result:
    svc = plan.one("aws:ecs/service:Service", "prefect-server")
    i = svc.inputs
    _require(int(i.get("desiredCount", 0)) >= 1, "desiredCount < 1")
    _require(i.get("deploymentCircuitBreaker", {}).get("rollback") is True, "no circuit breaker rollback")
    _require(int(i.get("healthCheckGracePeriodSeconds", 0)) >= 60, "health check grace period too short for migrations")
    c = _containers(_task(plan, "prefect-server"))[0]
    _require(bool(c.get("healthCheck")), "container has no health check")
    _require("PREFECT_SERVER_DATABASE_HOST" in {e["name"] for e in c.get("environment", [])}, "server state is not on RDS")
    return ("ECS replaces a stopped server task (desiredCount, ALB + container health checks, circuit breaker); state lives on RDS so a restart keeps it",
            {"desired_count": int(i["desiredCount"]), "grace_s": int(i["healthCheckGracePeriodSeconds"])})


def prefect_logs_to_cloudwatch(plan: Plan) -> Result:
    groups = {g.inputs.get("name"): g for g in plan.of_type("aws:cloudwatch/logGroup:LogGroup")}
    for task in ("prefect-server", "prefect-worker"):
        opts = _containers(_task(plan, task))[0].get("logConfiguration", {}).get("options", {})
        _require(opts.get("awslogs-group") in groups, f"{task} does not log to a managed CloudWatch group")
    return "Prefect server and worker log to CloudWatch groups with retention", {"groups": sorted(str(g) for g in groups if "prefect" in str(g))}


def prefect_worker_service(plan: Plan) -> Result:
    svc = plan.one("aws:ecs/service:Service", "prefect-worker")
    c = _containers(_task(plan, "prefect-worker"))[0]
    cmd = c.get("command", [])
    _require("--type" in cmd and cmd[cmd.index("--type") + 1] == "ecs", "worker does not serve an ECS work pool")
    pool = cmd[cmd.index("--pool") + 1]
    role = plan.one("aws:iam/rolePolicy:RolePolicy", "prefect-worker")
    policy = str(role.inputs.get("policy"))
    _require("ecs:RunTask" in policy and "iam:PassRole" in policy, "worker role cannot run ECS tasks")
    return f"ECS worker service for work pool {pool} with a role that can run flow-run tasks", {"work_pool": pool, "desired": svc.inputs.get("desiredCount")}


# ---- S11 / S20 -------------------------------------------------------------
def _dashboard(plan: Plan, suffix: str) -> str:
    return str(plan.one("aws:cloudwatch/dashboard:Dashboard", suffix).inputs.get("dashboardBody", ""))


def monitoring_dashboard(plan: Plan) -> Result:
    body = _dashboard(plan, "platform")
    for ns in ("AWS/ECS", "AWS/RDS", "AWS/S3"):
        _require(ns in body, f"dashboard has no {ns} metrics")
    widgets = len(json.loads(body)["widgets"])
    return f"platform dashboard with ECS, RDS and S3 metrics ({widgets} widgets)", {"widgets": widgets}


def monitoring_alarms(plan: Plan) -> Result:
    alarms = {a.inputs.get("metricName"): a for a in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    _require("RunningTaskCount" in alarms, "no ECS task alarm")
    _require(any(r.name.endswith("ecs-task-failed") for r in plan.of_type("aws:cloudwatch/eventRule:EventRule")), "no ECS task-failure event rule")
    _require("DatabaseConnections" in alarms, "no RDS connections alarm")
    _require(any("5XX" in str(m) for m in alarms), "no error-rate alarm")
    topic = plan.one("aws:sns/topic:Topic")
    _require(all(topic.name in str(a.inputs.get("alarmActions")) for a in alarms.values()), "an alarm does not notify the topic")
    return f"{len(alarms)} alarms (ECS tasks, RDS connections, 5xx error rates, ...) + ECS task-failure events -> SNS", {"alarms": sorted(str(k) for k in alarms)}


def alerts_topic(plan: Plan) -> Result:
    topic = plan.one("aws:sns/topic:Topic")
    _require(bool(topic.inputs.get("kmsMasterKeyId")), "alert topic not encrypted")
    plan.one("aws:sns/topicPolicy:TopicPolicy")
    return f"SNS topic {topic.inputs.get('name')} (encrypted; CloudWatch and EventBridge may publish)", {"topic": topic.inputs.get("name")}


def pipeline_dashboard_and_alerting(plan: Plan) -> Result:
    from infra.components.monitoring import PIPELINE_METRICS

    body = _dashboard(plan, "pipeline")
    for metric in PIPELINE_METRICS:
        _require(metric in body, f"pipeline dashboard lacks {metric}")
    alarms = {a.inputs.get("metricName") for a in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    _require({"DataQualityScore", "PipelineLatency"} <= alarms, "no alarm on data quality / pipeline latency")
    lam = plan.one("aws:lambda/function:Function")
    _require(lam.inputs.get("tracingConfig", {}).get("mode") == "Active", "API Lambda tracing off")
    return "pipeline dashboard (records, latency, quality, Glue, API) with quality/latency alarms to SNS; X-Ray tracing on the API", {"metrics": list(PIPELINE_METRICS)}


# ---- S12 / S13 / S19 -------------------------------------------------------
def dbt_task_definition(plan: Plan) -> Result:
    td = _task(plan, "dbt")
    c = _containers(td)[0]
    _require("/dbt:" in c.get("image", ""), "dbt task does not use the dbt image")
    _require("athena" in c.get("command", []), "dbt task does not target Athena")
    role = next((r for r in plan.of_type("aws:iam/rolePolicy:RolePolicy") if r.name.endswith("-pipeline-task-policy")), None)
    _require(role is not None and "athena:StartQueryExecution" in str(role.inputs.get("policy")), "dbt task role cannot query Athena")
    return f"ECS task {td.inputs.get('family')} runs `dbt {' '.join(c['command'])}` with Athena access", {"family": td.inputs.get("family")}


def glue_job_and_catalog(plan: Plan, root: Any) -> Result:
    from pathlib import Path

    from infra.components.glue import SCRIPT

    db = plan.one("aws:glue/catalogDatabase:CatalogDatabase")
    tables = plan.of_type("aws:glue/catalogTable:CatalogTable")
    crawler = plan.one("aws:glue/crawler:Crawler")
    job = plan.one("aws:glue/job:Job")
    obj = plan.one("aws:s3/bucketObjectv2:BucketObjectv2")
    key = obj.inputs.get("key", "")
    _require(str(job.inputs.get("command", {}).get("scriptLocation", "")).endswith(key), "job does not run the uploaded script")
    source = obj.inputs.get("source", {})
    _require(isinstance(source, dict) and Path(source.get("path", "")).resolve() == (Path(root) / SCRIPT).resolve(), "script asset is not jobs/glue_bronze_to_silver.py")
    _require((Path(root) / SCRIPT).is_file(), f"{SCRIPT} does not exist yet")
    return (f"Glue database {db.inputs.get('name')}, {len(tables)} silver tables, crawler {crawler.inputs.get('name')}, job {job.inputs.get('name')} running s3://…/{key}",
            {"tables": sorted(str(t.inputs.get("name")) for t in tables), "glue_version": job.inputs.get("glueVersion")})


def api_gateway_lambda(plan: Plan) -> Result:
    fn = plan.one("aws:lambda/function:Function")
    methods = plan.of_type("aws:apigateway/method:Method")
    _require(bool(methods) and all(m.inputs.get("apiKeyRequired") is True for m in methods), "a method does not require an API key")
    _require(all(m.inputs.get("requestValidatorId") for m in methods), "a method has no request validator")
    integrations = plan.of_type("aws:apigateway/integration:Integration")
    _require(all(i.inputs.get("type") == "AWS_PROXY" for i in integrations), "methods are not proxied to Lambda")
    plan.one("aws:apigateway/usagePlanKey:UsagePlanKey")
    usage = plan.one("aws:apigateway/usagePlan:UsagePlan")
    _require(bool(usage.inputs.get("throttleSettings")), "usage plan without throttling")
    _require("FINKS_ATHENA_WORKGROUP" in fn.inputs.get("environment", {}).get("variables", {}), "Lambda has no Athena workgroup")
    return f"REST API -> Lambda {fn.inputs.get('name')} (Athena), API key + usage plan, request validation", {"methods": len(methods)}


# ---- S21 -------------------------------------------------------------------
def security_hardening(plan: Plan) -> Result:
    from infra.policies import no_wildcard_iam

    plan.one("aws:guardduty/detector:Detector")
    rules = plan.of_type("aws:cfg/rule:Rule")
    _require(len(rules) >= 5, "fewer than 5 AWS Config rules")
    plan.one("aws:cfg/recorderStatus:RecorderStatus")
    trail = plan.one("aws:cloudtrail/trail:Trail")
    _require(trail.inputs.get("enableLogFileValidation") is True, "CloudTrail log validation off")
    endpoints = sorted(str(e.inputs.get("serviceName", "")).rsplit(".", 1)[-1] if "ecr" not in str(e.inputs.get("serviceName")) else str(e.inputs.get("serviceName")).split(".", 3)[-1] for e in plan.of_type("aws:ec2/vpcEndpoint:VpcEndpoint"))
    for svc in ("s3", "secretsmanager", "logs", "ecr.api", "ecr.dkr"):
        _require(svc in endpoints, f"no VPC endpoint for {svc}", endpoints=endpoints)
    _require(not list(no_wildcard_iam(plan)), "wildcard IAM present")
    return f"GuardDuty, {len(rules)} Config rules, CloudTrail, VPC endpoints {endpoints}, no wildcard IAM", {"config_rules": len(rules), "endpoints": endpoints}
