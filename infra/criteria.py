"""The plan's success criteria as assertions over a dry plan.

Each function takes a :class:`~infra.plan.Plan` and returns ``(message,
figures)`` when the criterion holds, or raises :class:`NotMet` saying what
is missing. `validation/infra.py` adapts them to finks checks; the tests
call them directly. A plan that lacks a resource a criterion needs is a
criterion not met (``NotMet``), never a crash: every lookup goes through
``_one``/``_require``, and "all of none" never counts as holding.
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


def _one(plan: Plan, type_: str, contains: str = "") -> PlannedResource:
    """The one resource of a type (named *contains*); a missing or doubled one is NotMet."""
    try:
        return plan.one(type_, contains)
    except LookupError as exc:
        raise NotMet(str(exc), {"type": type_}) from None


def _some(plan: Plan, type_: str, what: str) -> list[PlannedResource]:
    """Every resource of a type, at least one: an assertion over none of them proves nothing."""
    found = plan.of_type(type_)
    _require(bool(found), f"no {what} in the plan", type=type_)
    return found


def _id(r: PlannedResource) -> str:
    return f"{r.name}-id"


def _containers(td: PlannedResource) -> list[dict[str, Any]]:
    raw = td.inputs.get("containerDefinitions", "[]")
    try:
        found = json.loads(raw) if isinstance(raw, str) else list(raw)
    except ValueError:
        found = []
    _require(bool(found) and all(isinstance(c, dict) for c in found),
             f"task definition {td.inputs.get('family')} has no container definitions")
    return found


def _container(td: PlannedResource) -> dict[str, Any]:
    return _containers(td)[0]


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {str(e.get("name")): e.get("value") for e in container.get("environment", []) if isinstance(e, dict)}


def _principals(policy: Any) -> set[str]:
    """The service principals a policy document names."""
    try:
        doc = json.loads(policy) if isinstance(policy, str) else (policy or {})
    except ValueError:
        return set()
    found: set[str] = set()
    statements = doc.get("Statement", []) if isinstance(doc, dict) else []
    for st in statements if isinstance(statements, list) else [statements]:
        service = (st.get("Principal") or {}).get("Service", []) if isinstance(st.get("Principal"), dict) else []
        found.update([service] if isinstance(service, str) else service)
    return found


def _task(plan: Plan, family_suffix: str) -> PlannedResource:
    family = f"finks-{plan.stack}-{family_suffix}"
    found = [t for t in plan.of_type("aws:ecs/taskDefinition:TaskDefinition") if t.inputs.get("family") == family]
    _require(len(found) == 1, f"expected one ECS task definition for {family_suffix}, found {len(found)}",
             families=[t.inputs.get("family") for t in plan.of_type("aws:ecs/taskDefinition:TaskDefinition")])
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
             public=sorted(map(str, zones_pub)), private=sorted(map(str, zones_priv)))
    _require(not any(s.inputs.get("mapPublicIpOnLaunch") for s in private), "a private subnet maps public IPs")
    tables = plan.of_type("aws:ec2/routeTable:RouteTable")
    igw_routes = [rt for rt in tables if any(r.get("gatewayId") for r in rt.inputs.get("routes", []))]
    _require(len(igw_routes) >= 1 and len(plan.of_type("aws:ec2/internetGateway:InternetGateway")) == 1, "no internet gateway route for the public subnets")
    private_rts = [rt for rt in tables if rt.inputs.get("routes") and all(r.get("natGatewayId") for r in rt.inputs["routes"])]
    _require(len(private_rts) == len(private), "each private subnet needs a route table through a NAT gateway",
             private_subnets=len(private), nat_route_tables=len(private_rts))
    return (f"VPC {vpcs[0].inputs.get('cidrBlock')} with {len(public)} public and {len(private)} private subnets over {len(zones_pub)} zones",
            {"public_subnets": len(public), "private_subnets": len(private), "zones": sorted(zones_pub)})


SSE_ALGORITHMS = ("aws:kms", "aws:kms:dsse", "AES256")
PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def lake_buckets_configured(plan: Plan) -> Result:
    buckets = {b.inputs.get("bucket", ""): b for b in plan.of_type("aws:s3/bucket:Bucket")}
    logs = next((b for n, b in buckets.items() if n.endswith("-logs")), None)
    _require(logs is not None, "no access-log bucket (*-logs)", buckets=sorted(buckets))
    assert logs is not None
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
        _require(any((r.get("noncurrentVersionExpiration") or {}).get("noncurrentDays") for r in rules),
                 f"{name}: no lifecycle rule expiring old versions")
        if zone == "bronze":
            _require(any(t.get("storageClass") for r in rules for t in r.get("transitions") or []),
                     f"{name}: no lifecycle transition to a cheaper tier")
        logging = _attached(plan, "aws:s3/bucketLogging:BucketLogging", b)
        _require(bool(logging), f"{name}: access logging off")
        _require(logging[0].inputs.get("targetBucket") in (_id(logs), logs.inputs.get("bucket")),
                 f"{name}: access logs go to {logging[0].inputs.get('targetBucket')!r}, not the log bucket {logs.inputs.get('bucket')}")
        sse = [rule.get("applyServerSideEncryptionByDefault", {}).get("sseAlgorithm")
               for c in _attached(plan, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", b)
               for rule in c.inputs.get("rules", [])]
        _require(bool(sse) and all(a in SSE_ALGORITHMS for a in sse), f"{name}: no default encryption (SSE {sse})")
        blocks = _attached(plan, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", b)
        open_flags = [f for f in PUBLIC_ACCESS_FLAGS if not any(pab.inputs.get(f) is True for pab in blocks)]
        _require(bool(blocks) and not open_flags, f"{name}: public access not fully blocked ({open_flags or 'no block'})")
        policies = _attached(plan, "aws:s3/bucketPolicy:BucketPolicy", b)
        _require(any("aws:SecureTransport" in str(p.inputs.get("policy")) for p in policies), f"{name}: no TLS-only policy")
        figures[zone] = {"bucket": name, "lifecycle_rules": len(rules), "log_prefix": logging[0].inputs.get("targetPrefix"),
                         "sse": sorted({str(a) for a in sse})}
    return "bronze, silver, gold: versioning, lifecycle, access logging, SSE, public-access block, TLS-only", figures


def secrets_manager_configured(plan: Plan) -> Result:
    secrets = plan.of_type("aws:secretsmanager/secret:Secret")
    fmp = [s for s in secrets if str(s.inputs.get("name", "")).endswith("/fmp-api-key")]
    _require(len(fmp) == 1, "no Secrets Manager secret for the FMP key", secrets=[s.inputs.get("name") for s in secrets])
    _require(bool(fmp[0].inputs.get("kmsKeyId")), "FMP secret not encrypted with the platform key")
    _require(not plan.of_type("aws:secretsmanager/secretVersion:SecretVersion"), "a secret value is in the program")
    db = _one(plan, "aws:rds/instance:Instance")
    _require(db.inputs.get("manageMasterUserPassword") is True and "password" not in db.inputs, "database password not managed by RDS")
    return (f"secret {fmp[0].inputs['name']} (KMS, value set out of band); DB master password managed by RDS in Secrets Manager",
            {"secrets": [s.inputs.get("name") for s in secrets], "db_managed_password": True})


# The base roles and who may assume each: a role the wrong service can assume is no role for the job.
BASE_ROLES = {
    "ecs-execution": "ecs-tasks.amazonaws.com",
    "pipeline-task": "ecs-tasks.amazonaws.com",
    "prefect-server": "ecs-tasks.amazonaws.com",
    "prefect-worker": "ecs-tasks.amazonaws.com",
    "glue": "glue.amazonaws.com",
    "api-lambda": "lambda.amazonaws.com",
}


def base_iam_roles(plan: Plan) -> Result:
    from infra.policies import no_wildcard_iam

    roles = {str(r.inputs.get("name", "")): r for r in plan.of_type("aws:iam/role:Role")}
    missing = [e for e in BASE_ROLES if not any(n.endswith(f"-{e}") for n in roles)]
    _require(not missing, f"missing IAM roles: {missing}", roles=sorted(roles))
    for suffix, service in BASE_ROLES.items():
        role = next(r for n, r in roles.items() if n.endswith(f"-{suffix}"))
        trusted = _principals(role.inputs.get("assumeRolePolicy"))
        _require(trusted == {service}, f"role {role.inputs.get('name')} is assumable by {sorted(trusted)}, expected {service}")
    wild = list(no_wildcard_iam(plan))
    _require(not wild, f"wildcard IAM: {wild[:1]}", violations=len(wild))
    return f"{len(roles)} roles ({', '.join(BASE_ROLES)}), each assumable by its service only, none with * on *", {"roles": sorted(roles)}


# ---- S5 --------------------------------------------------------------------
def ecs_fargate_cluster(plan: Plan) -> Result:
    cluster = _one(plan, "aws:ecs/cluster:Cluster")
    cap = _one(plan, "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders")
    _require("FARGATE" in cap.inputs.get("capacityProviders", []), "cluster has no FARGATE capacity provider")
    insights = {s.get("name"): s.get("value") for s in cluster.inputs.get("settings", [])}
    _require(insights.get("containerInsights") == "enabled", "Container Insights off")
    tds = _some(plan, "aws:ecs/taskDefinition:TaskDefinition", "ECS task definition")
    not_fargate = [t.inputs.get("family") for t in tds if t.inputs.get("requiresCompatibilities") != ["FARGATE"]]
    _require(not not_fargate, f"task definitions not on Fargate: {not_fargate}")
    return (f"cluster {cluster.inputs.get('name')} on Fargate (+Spot), Container Insights on, {len(tds)} Fargate task definitions",
            {"capacity_providers": cap.inputs.get("capacityProviders"), "task_definitions": len(tds)})


def ecs_task_definitions(plan: Plan) -> Result:
    families = {}
    for name in ("prefect-server", "prefect-worker", "worker"):
        td = _task(plan, name)
        c = _container(td)
        _require(c.get("logConfiguration", {}).get("logDriver") == "awslogs", f"{name}: no awslogs logging")
        _require(td.inputs.get("networkMode") == "awsvpc" and bool(td.inputs.get("executionRoleArn")), f"{name}: needs awsvpc and an execution role")
        families[name] = td.inputs.get("family")
    worker = _container(_task(plan, "prefect-worker"))
    _require("worker" in worker.get("command", []) and bool(_env(worker).get("PREFECT_API_URL")),
             "prefect worker must start `prefect worker` with PREFECT_API_URL")
    return "task definitions: Prefect server, Prefect worker (the plan's agent), generic worker", {"families": families}


def ecr_repositories(plan: Plan) -> Result:
    repos = plan.of_type("aws:ecr/repository:Repository")
    names = sorted(str(r.inputs.get("name")) for r in repos)
    for want in ("prefect", "fmp-connector", "dbt"):
        _require(any(n.endswith(f"/{want}") for n in names), f"no ECR repository for {want}", repositories=names)
    unscanned = [r.inputs.get("name") for r in repos if not r.inputs.get("imageScanningConfiguration", {}).get("scanOnPush")]
    _require(not unscanned, f"scan on push off: {unscanned}")
    mutable = [r.inputs.get("name") for r in repos if r.inputs.get("imageTagMutability") != "IMMUTABLE"]
    _require(not mutable, f"mutable image tags: {mutable}")
    return f"{len(repos)} ECR repositories (immutable tags, scan on push)", {"repositories": names}


def log_groups_with_retention(plan: Plan) -> Result:
    groups = _some(plan, "aws:cloudwatch/logGroup:LogGroup", "CloudWatch log group")
    bad = [g.inputs.get("name") for g in groups if not g.inputs.get("retentionInDays")]
    _require(not bad, f"log groups without retention: {bad}")
    names = {g.inputs.get("name") for g in groups}
    for td in _some(plan, "aws:ecs/taskDefinition:TaskDefinition", "ECS task definition"):
        group = _container(td).get("logConfiguration", {}).get("options", {}).get("awslogs-group")
        _require(group in names, f"{td.inputs.get('family')} logs to an unmanaged group {group}")
    days = sorted({int(g.inputs["retentionInDays"]) for g in groups})
    return f"{len(groups)} log groups, retention {days} days, every task logs to one", {"log_groups": sorted(str(n) for n in names)}


# ---- S6 --------------------------------------------------------------------
# Dev's database is single-AZ by design (cost; infra/Pulumi.dev.yaml); every other stack's is Multi-AZ,
# and prod's cannot be anything else (infra/config.py refuses it).
SINGLE_AZ_STACKS = ("dev",)


def rds_postgres_multi_az(plan: Plan, expect_multi_az: bool | None = None) -> Result:
    """PostgreSQL, private, encrypted, backed up; Multi-AZ as ``expect_multi_az`` says, by default
    as the stack must be: Multi-AZ on every stack but dev (where either is fine), always on prod."""
    if plan.stack == "prod":
        expect_multi_az = True
    db = _one(plan, "aws:rds/instance:Instance")
    i = db.inputs
    _require(i.get("engine") == "postgres", "database is not PostgreSQL")
    _require(i.get("publiclyAccessible") is False, "database is publicly accessible")
    _require(i.get("storageEncrypted") is True, "database storage not encrypted")
    _require(int(i.get("backupRetentionPeriod", 0)) >= 1, "automated backups off")
    group = _one(plan, "aws:rds/subnetGroup:SubnetGroup")
    private_ids = {_id(s) for s in plan.of_type("aws:ec2/subnet:Subnet") if s.inputs.get("tags", {}).get("Tier") == "private"}
    subnet_ids = set(group.inputs.get("subnetIds", []))
    _require(len(subnet_ids) >= 2 and subnet_ids <= private_ids, "database subnet group must span >= 2 private subnets and no other",
             subnets=sorted(subnet_ids))
    if expect_multi_az is None:
        expect_multi_az = True if plan.stack not in SINGLE_AZ_STACKS else bool(i.get("multiAz"))
    _require(bool(i.get("multiAz")) == expect_multi_az, f"multiAz is {i.get('multiAz')}, stack {plan.stack} needs {expect_multi_az}")
    return (f"PostgreSQL {i.get('engineVersion')} {i.get('instanceClass')}, multiAz={i.get('multiAz')}, private, encrypted, backups {int(i['backupRetentionPeriod'])} days",
            {"multi_az": bool(i.get("multiAz")), "backup_days": int(i["backupRetentionPeriod"])})


def security_group_chain(plan: Plan) -> Result:
    from infra.policies import no_open_ingress

    sgs = {_id(s): s.name for s in plan.of_type("aws:ec2/securityGroup:SecurityGroup")}

    def group(suffix: str) -> str:
        found = [n for n in sgs.values() if n.endswith(suffix)]
        _require(len(found) == 1, f"expected one security group *{suffix}, found {found}", groups=sorted(sgs.values()))
        return found[0]

    alb, svc, db = group("alb-sg"), group("service-sg"), group("db-sg")
    edges = []
    for rule in plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        src = rule.inputs.get("referencedSecurityGroupId") or rule.inputs.get("cidrIpv4")
        edges.append((sgs.get(str(src), str(src)), sgs.get(str(rule.inputs.get("securityGroupId")), "?"), int(rule.inputs.get("fromPort", 0))))
    _require(("0.0.0.0/0", alb, 443) in edges, "ALB does not accept HTTPS from the internet", edges=edges)
    _require((alb, svc, 4200) in edges, "ECS service does not accept the ALB", edges=edges)
    _require((svc, db, 5432) in edges, "RDS does not accept the ECS service", edges=edges)
    into_db = [e for e in edges if e[1] == db]
    _require(into_db == [(svc, db, 5432)], f"RDS reachable from more than the ECS service: {into_db}")
    open_ = list(no_open_ingress(plan))
    _require(not open_, f"open ingress: {open_[:1]}")
    return "security groups chain internet:443 -> ALB -> ECS:4200 -> RDS:5432 and nothing else", {"edges": [list(e) for e in edges]}


def alb_https(plan: Plan) -> Result:
    lb = _one(plan, "aws:lb/loadBalancer:LoadBalancer")
    listeners = plan.of_type("aws:lb/listener:Listener")
    https = [r for r in listeners if r.inputs.get("protocol") == "HTTPS"]
    _require(len(https) == 1 and int(https[0].inputs.get("port", 0)) == 443, "no HTTPS listener on 443")
    _require(bool(https[0].inputs.get("certificateArn")), "HTTPS listener without certificate")
    _require(str(https[0].inputs.get("sslPolicy", "")).startswith("ELBSecurityPolicy-TLS13"), "TLS policy below TLS 1.2/1.3")
    cert = _one(plan, "aws:acm/certificate:Certificate")
    for r in listeners:
        if r.inputs.get("protocol") == "HTTP":
            action = (r.inputs.get("defaultActions") or [{}])[0]
            _require(action.get("type") == "redirect" and (action.get("redirect") or {}).get("protocol") == "HTTPS",
                     f"plain HTTP listener {r.name} does not redirect to HTTPS")
    return (f"ALB {lb.inputs.get('name')}: HTTPS 443 with ACM certificate for {cert.inputs.get('domainName')}, {https[0].inputs.get('sslPolicy')}, HTTP redirects",
            {"domain": cert.inputs.get("domainName"), "ssl_policy": https[0].inputs.get("sslPolicy")})


def nat_gateways(plan: Plan, per_az: bool | None = None) -> Result:
    """NAT gateways in public subnets: one per zone when ``per_az`` (by default: as the stack file says)."""
    if per_az is None:
        from infra.config import load

        per_az = load(plan.stack).nat_gateways == "per_az"
    nats = plan.of_type("aws:ec2/natGateway:NatGateway")
    zones = {s.inputs.get("availabilityZone") for s in plan.of_type("aws:ec2/subnet:Subnet")}
    want = len(zones) if per_az else 1
    _require(len(nats) == want and want >= 1, f"{len(nats)} NAT gateways, expected {want}", zones=sorted(map(str, zones)))
    public_ids = {_id(s) for s in plan.of_type("aws:ec2/subnet:Subnet") if s.inputs.get("tags", {}).get("Tier") == "public"}
    _require(all(n.inputs.get("subnetId") in public_ids for n in nats), "a NAT gateway is not in a public subnet")
    return f"{len(nats)} NAT gateway(s) in public subnets ({'one per zone' if per_az else 'single'})", {"nat_gateways": len(nats)}


# ---- S8 / S9 ---------------------------------------------------------------
def prefect_behind_https_alb(plan: Plan) -> Result:
    alb_https(plan)
    tg = _one(plan, "aws:lb/targetGroup:TargetGroup")
    _require(tg.inputs.get("healthCheck", {}).get("path") == "/api/health", "target group health check is not /api/health")
    svc = _one(plan, "aws:ecs/service:Service", "prefect-server")
    lbs = svc.inputs.get("loadBalancers", [])
    _require(bool(lbs) and lbs[0].get("containerPort") == 4200, "Prefect server service not registered with the ALB")
    c = _container(_task(plan, "prefect-server"))
    env = _env(c)
    secrets = {s.get("name"): str(s.get("valueFrom", "")) for s in c.get("secrets", [])}
    _require(env.get("PREFECT_SERVER_DATABASE_DRIVER") == "postgresql+asyncpg", "database driver is not asyncpg")
    _require(secrets.get("PREFECT_SERVER_DATABASE_PASSWORD", "").endswith(":password::"),
             "database password is not injected from the RDS-managed secret")
    _require(not any("password" in str(v).lower() or "://" in str(v) and "@" in str(v) for v in env.values()), "a plain-text database URL or password")
    return "Prefect server behind the HTTPS ALB, health check /api/health, asyncpg URL from the RDS-managed secret", {"target_port": 4200}


def prefect_service_resilient(plan: Plan) -> Result:
    svc = _one(plan, "aws:ecs/service:Service", "prefect-server")
    i = svc.inputs
    _require(int(i.get("desiredCount", 0)) >= 1, "desiredCount < 1")
    _require(i.get("deploymentCircuitBreaker", {}).get("rollback") is True, "no circuit breaker rollback")
    _require(int(i.get("healthCheckGracePeriodSeconds", 0)) >= 60, "health check grace period too short for migrations")
    c = _container(_task(plan, "prefect-server"))
    _require(bool(c.get("healthCheck")), "container has no health check")
    _require("PREFECT_SERVER_DATABASE_HOST" in _env(c), "server state is not on RDS")
    return ("ECS replaces a stopped server task (desiredCount, ALB + container health checks, circuit breaker); state lives on RDS so a restart keeps it",
            {"desired_count": int(i["desiredCount"]), "grace_s": int(i["healthCheckGracePeriodSeconds"])})


def prefect_logs_to_cloudwatch(plan: Plan) -> Result:
    groups = {g.inputs.get("name"): g for g in plan.of_type("aws:cloudwatch/logGroup:LogGroup")}
    for task in ("prefect-server", "prefect-worker"):
        opts = _container(_task(plan, task)).get("logConfiguration", {}).get("options", {})
        group = groups.get(opts.get("awslogs-group"))
        _require(group is not None, f"{task} does not log to a managed CloudWatch group")
        assert group is not None
        _require(bool(group.inputs.get("retentionInDays")), f"{task}'s log group keeps logs forever (no retention)")
    return "Prefect server and worker log to CloudWatch groups with retention", {"groups": sorted(str(g) for g in groups if "prefect" in str(g))}


def _arg(cmd: list[Any], flag: str) -> Any:
    return cmd[cmd.index(flag) + 1] if flag in cmd and cmd.index(flag) + 1 < len(cmd) else None


def prefect_worker_service(plan: Plan) -> Result:
    svc = _one(plan, "aws:ecs/service:Service", "prefect-worker")
    _require(int(svc.inputs.get("desiredCount", 0)) >= 1, "worker service runs no task (desiredCount < 1)")
    c = _container(_task(plan, "prefect-worker"))
    cmd = list(c.get("command", []))
    _require(_arg(cmd, "--type") == "ecs", "worker does not serve an ECS work pool", command=cmd)
    pool = _arg(cmd, "--pool")
    _require(bool(pool), "worker names no work pool (--pool)", command=cmd)
    role = _one(plan, "aws:iam/rolePolicy:RolePolicy", "prefect-worker")
    policy = str(role.inputs.get("policy"))
    _require("ecs:RunTask" in policy and "iam:PassRole" in policy, "worker role cannot run ECS tasks")
    return f"ECS worker service for work pool {pool} with a role that can run flow-run tasks", {"work_pool": pool, "desired": svc.inputs.get("desiredCount")}


# ---- S11 / S20 -------------------------------------------------------------
def _dashboard(plan: Plan, suffix: str) -> dict[str, Any]:
    body = _one(plan, "aws:cloudwatch/dashboard:Dashboard", suffix).inputs.get("dashboardBody", "")
    try:
        parsed = json.loads(body) if isinstance(body, str) else body
    except ValueError:
        parsed = None
    _require(isinstance(parsed, dict) and bool(parsed.get("widgets")), f"{suffix} dashboard has no widgets")
    assert isinstance(parsed, dict)
    return parsed


def monitoring_dashboard(plan: Plan) -> Result:
    dashboard = _dashboard(plan, "platform")
    body = json.dumps(dashboard)
    for ns in ("AWS/ECS", "AWS/RDS", "AWS/S3"):
        _require(ns in body, f"dashboard has no {ns} metrics")
    widgets = len(dashboard["widgets"])
    return f"platform dashboard with ECS, RDS and S3 metrics ({widgets} widgets)", {"widgets": widgets}


def monitoring_alarms(plan: Plan) -> Result:
    alarms = plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    metrics = {str(a.inputs.get("metricName")) for a in alarms}
    _require("RunningTaskCount" in metrics, "no ECS task alarm")
    rule = next((r for r in plan.of_type("aws:cloudwatch/eventRule:EventRule") if r.name.endswith("ecs-task-failed")), None)
    _require(rule is not None, "no ECS task-failure event rule")
    _require("DatabaseConnections" in metrics, "no RDS connections alarm")
    _require(any("5XX" in m for m in metrics), "no error-rate alarm")
    topic = _one(plan, "aws:sns/topic:Topic")
    silent = [a.inputs.get("name") for a in alarms if topic.name not in str(a.inputs.get("alarmActions"))]
    _require(not silent, f"alarms that notify no one: {silent}")
    assert rule is not None
    targets = [t for t in plan.of_type("aws:cloudwatch/eventTarget:EventTarget") if t.inputs.get("rule") in (rule.name, _id(rule))]
    _require(any(topic.name in str(t.inputs.get("arn")) for t in targets), "ECS task-failure events do not reach the SNS topic")
    return f"{len(alarms)} alarms (ECS tasks, RDS connections, 5xx error rates, ...) + ECS task-failure events -> SNS", {"alarms": sorted(metrics)}


def alerts_topic(plan: Plan) -> Result:
    topic = _one(plan, "aws:sns/topic:Topic")
    _require(bool(topic.inputs.get("kmsMasterKeyId")), "alert topic not encrypted")
    policy = _one(plan, "aws:sns/topicPolicy:TopicPolicy")
    publishers = _principals(policy.inputs.get("policy"))
    _require({"cloudwatch.amazonaws.com", "events.amazonaws.com"} <= publishers,
             f"CloudWatch and EventBridge may not publish to the topic (policy allows {sorted(publishers)})")
    return f"SNS topic {topic.inputs.get('name')} (encrypted; CloudWatch and EventBridge may publish)", {"topic": topic.inputs.get("name")}


def pipeline_dashboard_and_alerting(plan: Plan) -> Result:
    from infra.components.monitoring import PIPELINE_METRICS

    body = json.dumps(_dashboard(plan, "pipeline"))
    for metric in PIPELINE_METRICS:
        _require(metric in body, f"pipeline dashboard lacks {metric}")
    alarms = {a.inputs.get("metricName") for a in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    _require({"DataQualityScore", "PipelineLatency"} <= alarms, "no alarm on data quality / pipeline latency")
    lam = _one(plan, "aws:lambda/function:Function")
    _require(lam.inputs.get("tracingConfig", {}).get("mode") == "Active", "API Lambda tracing off")
    return "pipeline dashboard (records, latency, quality, Glue, API) with quality/latency alarms to SNS; X-Ray tracing on the API", {"metrics": list(PIPELINE_METRICS)}


# ---- S12 / S13 / S19 -------------------------------------------------------
def dbt_task_definition(plan: Plan) -> Result:
    td = _task(plan, "dbt")
    c = _container(td)
    _require("/dbt:" in c.get("image", ""), "dbt task does not use the dbt image")
    _require("athena" in c.get("command", []), "dbt task does not target Athena")
    role = next((r for r in plan.of_type("aws:iam/rolePolicy:RolePolicy") if r.name.endswith("-pipeline-task-policy")), None)
    _require(role is not None and "athena:StartQueryExecution" in str(role.inputs.get("policy")), "dbt task role cannot query Athena")
    return f"ECS task {td.inputs.get('family')} runs `dbt {' '.join(map(str, c['command']))}` with Athena access", {"family": td.inputs.get("family")}


SILVER_TABLES = ("eod_prices", "quotes", "profiles")


def glue_job_and_catalog(plan: Plan, root: Any = None) -> Result:
    from pathlib import Path

    from infra.components.glue import SCRIPT

    root = Path(root) if root is not None else Path(__file__).resolve().parent.parent
    db = _one(plan, "aws:glue/catalogDatabase:CatalogDatabase")
    tables = plan.of_type("aws:glue/catalogTable:CatalogTable")
    names = sorted(str(t.inputs.get("name") or t.name.rsplit("-", 1)[-1]) for t in tables)
    missing = [t for t in SILVER_TABLES if not any(n.endswith(t) for n in names)]
    _require(not missing, f"no Glue tables for silver {missing}", tables=names)
    crawler = _one(plan, "aws:glue/crawler:Crawler")
    _require(bool(crawler.inputs.get("s3Targets")), "crawler has no S3 target")
    job = _one(plan, "aws:glue/job:Job")
    obj = _one(plan, "aws:s3/bucketObjectv2:BucketObjectv2")
    key = obj.inputs.get("key", "")
    _require(bool(key) and str(job.inputs.get("command", {}).get("scriptLocation", "")).endswith(key), "job does not run the uploaded script")
    source = obj.inputs.get("source", {})
    _require(isinstance(source, dict) and Path(source.get("path", "")).resolve() == (root / SCRIPT).resolve(), "script asset is not jobs/glue_bronze_to_silver.py")
    _require((root / SCRIPT).is_file(), f"{SCRIPT} does not exist yet")
    return (f"Glue database {db.inputs.get('name')}, {len(tables)} silver tables, crawler {crawler.inputs.get('name')}, job {job.inputs.get('name')} running s3://…/{key}",
            {"tables": names, "glue_version": job.inputs.get("glueVersion")})


def api_gateway_lambda(plan: Plan) -> Result:
    fn = _one(plan, "aws:lambda/function:Function")
    methods = _some(plan, "aws:apigateway/method:Method", "API Gateway method")
    _require(all(m.inputs.get("apiKeyRequired") is True for m in methods), "a method does not require an API key")
    _require(all(m.inputs.get("requestValidatorId") for m in methods), "a method has no request validator")
    integrations = plan.of_type("aws:apigateway/integration:Integration")
    routed = {(i.inputs.get("resourceId"), i.inputs.get("httpMethod")) for i in integrations
              if i.inputs.get("type") == "AWS_PROXY" and fn.name in str(i.inputs.get("uri"))}
    unrouted = [m.name for m in methods if (m.inputs.get("resourceId"), m.inputs.get("httpMethod")) not in routed]
    _require(not unrouted, f"methods not proxied to the Lambda: {unrouted}")
    _one(plan, "aws:apigateway/usagePlanKey:UsagePlanKey")
    usage = _one(plan, "aws:apigateway/usagePlan:UsagePlan")
    _require(bool(usage.inputs.get("throttleSettings")), "usage plan without throttling")
    _require("FINKS_ATHENA_WORKGROUP" in fn.inputs.get("environment", {}).get("variables", {}), "Lambda has no Athena workgroup")
    return f"REST API -> Lambda {fn.inputs.get('name')} (Athena), API key + usage plan, request validation", {"methods": len(methods)}


# ---- S21 -------------------------------------------------------------------
def _endpoint_service(e: PlannedResource) -> str:
    name = str(e.inputs.get("serviceName", ""))
    return name.split(".", 3)[-1] if ".ecr." in name else name.rsplit(".", 1)[-1]


def security_hardening(plan: Plan) -> Result:
    from infra.policies import no_wildcard_iam

    _one(plan, "aws:guardduty/detector:Detector")
    rules = plan.of_type("aws:cfg/rule:Rule")
    _require(len(rules) >= 5, "fewer than 5 AWS Config rules", rules=len(rules))
    _one(plan, "aws:cfg/recorderStatus:RecorderStatus")
    trail = _one(plan, "aws:cloudtrail/trail:Trail")
    _require(trail.inputs.get("enableLogFileValidation") is True, "CloudTrail log validation off")
    endpoints = sorted(_endpoint_service(e) for e in plan.of_type("aws:ec2/vpcEndpoint:VpcEndpoint"))
    for svc in ("s3", "secretsmanager", "logs", "ecr.api", "ecr.dkr"):
        _require(svc in endpoints, f"no VPC endpoint for {svc}", endpoints=endpoints)
    _require(not list(no_wildcard_iam(plan)), "wildcard IAM present")
    return f"GuardDuty, {len(rules)} Config rules, CloudTrail, VPC endpoints {endpoints}, no wildcard IAM", {"config_rules": len(rules), "endpoints": endpoints}


def policy_scan_clean(plan: Plan) -> Result:
    """Every policy rule of infra/policies.py holds for every planned resource."""
    from infra.policies import RULES, check

    _require(bool(plan.custom), "the plan holds no resources: nothing was scanned")
    violations = check(plan)
    _require(not violations, f"{len(violations)} policy violation(s): {violations[0] if violations else ''}",
             violations=[str(v) for v in violations])
    return (f"{len(RULES)} policy rules, {len(plan.custom)} resources, no violation",
            {"rules": list(RULES), "resources": len(plan.custom)})
