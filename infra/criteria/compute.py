"""S5, S6: ECS cluster, task definitions, ECR, log groups, RDS, security groups, ALB, NAT."""

from __future__ import annotations

from infra.criteria.common import Result, container, env_of, one, require, rid, some, task_def
from infra.plan import Plan


def ecs_fargate_cluster(plan: Plan) -> Result:
    cluster = one(plan, "aws:ecs/cluster:Cluster")
    cap = one(plan, "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders")
    require("FARGATE" in cap.inputs.get("capacityProviders", []), "cluster has no FARGATE capacity provider")
    insights = {s.get("name"): s.get("value") for s in cluster.inputs.get("settings", [])}
    require(insights.get("containerInsights") == "enabled", "Container Insights off")
    tds = some(plan, "aws:ecs/taskDefinition:TaskDefinition", "ECS task definition")
    not_fargate = [t.inputs.get("family") for t in tds if t.inputs.get("requiresCompatibilities") != ["FARGATE"]]
    require(not not_fargate, f"task definitions not on Fargate: {not_fargate}")
    return (f"cluster {cluster.inputs.get('name')} on Fargate (+Spot), Container Insights on, {len(tds)} Fargate task definitions",
            {"capacity_providers": cap.inputs.get("capacityProviders"), "task_definitions": len(tds)})


def ecs_task_definitions(plan: Plan) -> Result:
    families = {}
    for name in ("prefect-server", "prefect-worker", "worker"):
        td = task_def(plan, name)
        c = container(td)
        require(c.get("logConfiguration", {}).get("logDriver") == "awslogs", f"{name}: no awslogs logging")
        require(td.inputs.get("networkMode") == "awsvpc" and bool(td.inputs.get("executionRoleArn")), f"{name}: needs awsvpc and an execution role")
        families[name] = td.inputs.get("family")
    worker = container(task_def(plan, "prefect-worker"))
    require("worker" in worker.get("command", []) and bool(env_of(worker).get("PREFECT_API_URL")),
             "prefect worker must start `prefect worker` with PREFECT_API_URL")
    return "task definitions: Prefect server, Prefect worker (the plan's agent), generic worker", {"families": families}


def ecr_repositories(plan: Plan) -> Result:
    repos = plan.of_type("aws:ecr/repository:Repository")
    names = sorted(str(r.inputs.get("name")) for r in repos)
    for want in ("prefect", "fmp-connector", "dbt"):
        require(any(n.endswith(f"/{want}") for n in names), f"no ECR repository for {want}", repositories=names)
    unscanned = [r.inputs.get("name") for r in repos if not r.inputs.get("imageScanningConfiguration", {}).get("scanOnPush")]
    require(not unscanned, f"scan on push off: {unscanned}")
    mutable = [r.inputs.get("name") for r in repos if r.inputs.get("imageTagMutability") != "IMMUTABLE"]
    require(not mutable, f"mutable image tags: {mutable}")
    return f"{len(repos)} ECR repositories (immutable tags, scan on push)", {"repositories": names}


def log_groups_with_retention(plan: Plan) -> Result:
    groups = some(plan, "aws:cloudwatch/logGroup:LogGroup", "CloudWatch log group")
    bad = [g.inputs.get("name") for g in groups if not g.inputs.get("retentionInDays")]
    require(not bad, f"log groups without retention: {bad}")
    names = {g.inputs.get("name") for g in groups}
    for td in some(plan, "aws:ecs/taskDefinition:TaskDefinition", "ECS task definition"):
        group = container(td).get("logConfiguration", {}).get("options", {}).get("awslogs-group")
        require(group in names, f"{td.inputs.get('family')} logs to an unmanaged group {group}")
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
    db = one(plan, "aws:rds/instance:Instance")
    i = db.inputs
    require(i.get("engine") == "postgres", "database is not PostgreSQL")
    require(i.get("publiclyAccessible") is False, "database is publicly accessible")
    require(i.get("storageEncrypted") is True, "database storage not encrypted")
    require(int(i.get("backupRetentionPeriod", 0)) >= 1, "automated backups off")
    group = one(plan, "aws:rds/subnetGroup:SubnetGroup")
    private_ids = {rid(s) for s in plan.of_type("aws:ec2/subnet:Subnet") if s.inputs.get("tags", {}).get("Tier") == "private"}
    subnet_ids = set(group.inputs.get("subnetIds", []))
    require(len(subnet_ids) >= 2 and subnet_ids <= private_ids, "database subnet group must span >= 2 private subnets and no other",
             subnets=sorted(subnet_ids))
    if expect_multi_az is None:
        expect_multi_az = True if plan.stack not in SINGLE_AZ_STACKS else bool(i.get("multiAz"))
    require(bool(i.get("multiAz")) == expect_multi_az, f"multiAz is {i.get('multiAz')}, stack {plan.stack} needs {expect_multi_az}")
    return (f"PostgreSQL {i.get('engineVersion')} {i.get('instanceClass')}, multiAz={i.get('multiAz')}, private, encrypted, backups {int(i['backupRetentionPeriod'])} days",
            {"multi_az": bool(i.get("multiAz")), "backup_days": int(i["backupRetentionPeriod"])})


def security_group_chain(plan: Plan) -> Result:
    from infra.policies import no_open_ingress

    sgs = {rid(s): s.name for s in plan.of_type("aws:ec2/securityGroup:SecurityGroup")}

    def group(suffix: str) -> str:
        found = [n for n in sgs.values() if n.endswith(suffix)]
        require(len(found) == 1, f"expected one security group *{suffix}, found {found}", groups=sorted(sgs.values()))
        return found[0]

    alb, svc, db = group("alb-sg"), group("service-sg"), group("db-sg")
    edges = []
    for rule in plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        src = rule.inputs.get("referencedSecurityGroupId") or rule.inputs.get("cidrIpv4")
        edges.append((sgs.get(str(src), str(src)), sgs.get(str(rule.inputs.get("securityGroupId")), "?"), int(rule.inputs.get("fromPort", 0))))
    require(("0.0.0.0/0", alb, 443) in edges, "ALB does not accept HTTPS from the internet", edges=edges)
    require((alb, svc, 4200) in edges, "ECS service does not accept the ALB", edges=edges)
    require((svc, db, 5432) in edges, "RDS does not accept the ECS service", edges=edges)
    into_db = [e for e in edges if e[1] == db]
    require(into_db == [(svc, db, 5432)], f"RDS reachable from more than the ECS service: {into_db}")
    open_ = list(no_open_ingress(plan))
    require(not open_, f"open ingress: {open_[:1]}")
    return "security groups chain internet:443 -> ALB -> ECS:4200 -> RDS:5432 and nothing else", {"edges": [list(e) for e in edges]}


def alb_https(plan: Plan) -> Result:
    lb = one(plan, "aws:lb/loadBalancer:LoadBalancer")
    listeners = plan.of_type("aws:lb/listener:Listener")
    https = [r for r in listeners if r.inputs.get("protocol") == "HTTPS"]
    require(len(https) == 1 and int(https[0].inputs.get("port", 0)) == 443, "no HTTPS listener on 443")
    require(bool(https[0].inputs.get("certificateArn")), "HTTPS listener without certificate")
    require(str(https[0].inputs.get("sslPolicy", "")).startswith("ELBSecurityPolicy-TLS13"), "TLS policy below TLS 1.2/1.3")
    cert = one(plan, "aws:acm/certificate:Certificate")
    for r in listeners:
        if r.inputs.get("protocol") == "HTTP":
            action = (r.inputs.get("defaultActions") or [{}])[0]
            require(action.get("type") == "redirect" and (action.get("redirect") or {}).get("protocol") == "HTTPS",
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
    require(len(nats) == want and want >= 1, f"{len(nats)} NAT gateways, expected {want}", zones=sorted(map(str, zones)))
    public_ids = {rid(s) for s in plan.of_type("aws:ec2/subnet:Subnet") if s.inputs.get("tags", {}).get("Tier") == "public"}
    require(all(n.inputs.get("subnetId") in public_ids for n in nats), "a NAT gateway is not in a public subnet")
    return f"{len(nats)} NAT gateway(s) in public subnets ({'one per zone' if per_az else 'single'})", {"nat_gateways": len(nats)}
