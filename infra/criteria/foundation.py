"""S3: VPC and subnets, lake buckets, secrets, base IAM roles."""

from __future__ import annotations

from typing import Any

from infra.criteria.common import Result, attached, one, principals, require, rid
from infra.plan import Plan


def vpc_public_private_subnets(plan: Plan) -> Result:
    vpcs = plan.of_type("aws:ec2/vpc:Vpc")
    require(len(vpcs) == 1, "expected exactly one VPC", vpcs=len(vpcs))
    subnets = plan.of_type("aws:ec2/subnet:Subnet")
    public = [s for s in subnets if s.inputs.get("tags", {}).get("Tier") == "public"]
    private = [s for s in subnets if s.inputs.get("tags", {}).get("Tier") == "private"]
    zones_pub = {s.inputs.get("availabilityZone") for s in public}
    zones_priv = {s.inputs.get("availabilityZone") for s in private}
    require(len(zones_pub) >= 2 and zones_pub == zones_priv, "public and private subnets must span the same >= 2 zones",
             public=sorted(map(str, zones_pub)), private=sorted(map(str, zones_priv)))
    require(not any(s.inputs.get("mapPublicIpOnLaunch") for s in private), "a private subnet maps public IPs")
    tables = plan.of_type("aws:ec2/routeTable:RouteTable")
    igw_routes = [rt for rt in tables if any(r.get("gatewayId") for r in rt.inputs.get("routes", []))]
    require(len(igw_routes) >= 1 and len(plan.of_type("aws:ec2/internetGateway:InternetGateway")) == 1, "no internet gateway route for the public subnets")
    private_rts = [rt for rt in tables if rt.inputs.get("routes") and all(r.get("natGatewayId") for r in rt.inputs["routes"])]
    require(len(private_rts) == len(private), "each private subnet needs a route table through a NAT gateway",
             private_subnets=len(private), nat_route_tables=len(private_rts))
    return (f"VPC {vpcs[0].inputs.get('cidrBlock')} with {len(public)} public and {len(private)} private subnets over {len(zones_pub)} zones",
            {"public_subnets": len(public), "private_subnets": len(private), "zones": sorted(zones_pub)})


SSE_ALGORITHMS = ("aws:kms", "aws:kms:dsse", "AES256")
PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def lake_buckets_configured(plan: Plan) -> Result:
    buckets = {b.inputs.get("bucket", ""): b for b in plan.of_type("aws:s3/bucket:Bucket")}
    logs = next((b for n, b in buckets.items() if n.endswith("-logs")), None)
    require(logs is not None, "no access-log bucket (*-logs)", buckets=sorted(buckets))
    assert logs is not None
    figures: dict[str, Any] = {}
    for zone in ("bronze", "silver", "gold"):
        name = next((n for n in buckets if n.endswith(f"-{zone}")), None)
        require(name is not None, f"no {zone} bucket", buckets=sorted(buckets))
        assert name is not None
        b = buckets[name]
        versioning = attached(plan, "aws:s3/bucketVersioning:BucketVersioning", b)
        require(any(v.inputs.get("versioningConfiguration", {}).get("status") == "Enabled" for v in versioning), f"{name}: versioning not enabled")
        lifecycle = attached(plan, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", b)
        rules = [r for lc in lifecycle for r in lc.inputs.get("rules", []) if r.get("status") == "Enabled"]
        require(any((r.get("noncurrentVersionExpiration") or {}).get("noncurrentDays") for r in rules),
                 f"{name}: no lifecycle rule expiring old versions")
        if zone == "bronze":
            require(any(t.get("storageClass") for r in rules for t in r.get("transitions") or []),
                     f"{name}: no lifecycle transition to a cheaper tier")
        logging = attached(plan, "aws:s3/bucketLogging:BucketLogging", b)
        require(bool(logging), f"{name}: access logging off")
        require(logging[0].inputs.get("targetBucket") in (rid(logs), logs.inputs.get("bucket")),
                 f"{name}: access logs go to {logging[0].inputs.get('targetBucket')!r}, not the log bucket {logs.inputs.get('bucket')}")
        sse = [rule.get("applyServerSideEncryptionByDefault", {}).get("sseAlgorithm")
               for c in attached(plan, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", b)
               for rule in c.inputs.get("rules", [])]
        require(bool(sse) and all(a in SSE_ALGORITHMS for a in sse), f"{name}: no default encryption (SSE {sse})")
        blocks = attached(plan, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", b)
        open_flags = [f for f in PUBLIC_ACCESS_FLAGS if not any(pab.inputs.get(f) is True for pab in blocks)]
        require(bool(blocks) and not open_flags, f"{name}: public access not fully blocked ({open_flags or 'no block'})")
        policies = attached(plan, "aws:s3/bucketPolicy:BucketPolicy", b)
        require(any("aws:SecureTransport" in str(p.inputs.get("policy")) for p in policies), f"{name}: no TLS-only policy")
        figures[zone] = {"bucket": name, "lifecycle_rules": len(rules), "log_prefix": logging[0].inputs.get("targetPrefix"),
                         "sse": sorted({str(a) for a in sse})}
    return "bronze, silver, gold: versioning, lifecycle, access logging, SSE, public-access block, TLS-only", figures


def secrets_manager_configured(plan: Plan) -> Result:
    secrets = plan.of_type("aws:secretsmanager/secret:Secret")
    fmp = [s for s in secrets if str(s.inputs.get("name", "")).endswith("/fmp-api-key")]
    require(len(fmp) == 1, "no Secrets Manager secret for the FMP key", secrets=[s.inputs.get("name") for s in secrets])
    require(bool(fmp[0].inputs.get("kmsKeyId")), "FMP secret not encrypted with the platform key")
    require(not plan.of_type("aws:secretsmanager/secretVersion:SecretVersion"), "a secret value is in the program")
    db = one(plan, "aws:rds/instance:Instance")
    require(db.inputs.get("manageMasterUserPassword") is True and "password" not in db.inputs, "database password not managed by RDS")
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
    require(not missing, f"missing IAM roles: {missing}", roles=sorted(roles))
    for suffix, service in BASE_ROLES.items():
        role = next(r for n, r in roles.items() if n.endswith(f"-{suffix}"))
        trusted = principals(role.inputs.get("assumeRolePolicy"))
        require(trusted == {service}, f"role {role.inputs.get('name')} is assumable by {sorted(trusted)}, expected {service}")
    wild = list(no_wildcard_iam(plan))
    require(not wild, f"wildcard IAM: {wild[:1]}", violations=len(wild))
    return f"{len(roles)} roles ({', '.join(BASE_ROLES)}), each assumable by its service only, none with * on *", {"roles": sorted(roles)}
