"""Live probe for S3's "Deploy and test in dev environment": the stack `finks infra up` recorded is there.

The recorded outputs (``infra.deploy.record_outputs``) name what each component
made; the probe asks AWS for each of them — the VPC, the lake buckets, the FMP
key's secret, the ECS cluster, the database, the alert topic — so a stack that
was deployed and then deleted (or half torn down by hand) is not "deployed".
Without recorded outputs it finds the resources by the program's tags
(:mod:`validation.aws.live`), like every probe.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from finks.checks import CheckContext, CheckFailed, Evidence
from validation.aws.live import Live


def _probes(live: Live) -> dict[str, Callable[[], str]]:
    """component -> a read of its resource that raises when it is gone; returns what it found."""
    from botocore.exceptions import ClientError

    def vpc() -> str:
        vid = live.vpc_id()
        state = live.client("ec2").describe_vpcs(VpcIds=[vid])["Vpcs"][0]["State"]
        if state != "available":
            raise LookupError(f"VPC {vid} is {state}")
        return vid

    def buckets() -> str:
        names = live.buckets()
        if not names:
            raise LookupError("no lake buckets")
        s3, gone = live.client("s3"), []
        for zone, name in sorted(names.items()):
            try:
                s3.head_bucket(Bucket=name)
            except ClientError:
                gone.append(f"{name} ({zone})")
        if gone:
            raise LookupError(f"bucket {', '.join(gone)} does not answer")
        return ", ".join(sorted(names.values()))

    def secret() -> str:
        name = live.secret_name()
        desc = live.client("secretsmanager").describe_secret(SecretId=name)
        if desc.get("DeletedDate"):
            raise LookupError(f"secret {name} is scheduled for deletion")
        return name

    def cluster() -> str:
        name = live.cluster_name()
        found = live.client("ecs").describe_clusters(clusters=[name])["clusters"]
        if not found or found[0].get("status") != "ACTIVE":
            raise LookupError(f"ECS cluster {name} is {found[0].get('status') if found else 'missing'}")
        return name

    def database() -> str:
        ident = live.db_identifier()
        try:
            db = live.client("rds").describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
        except ClientError as exc:
            raise LookupError(f"RDS instance {ident} does not exist") from exc
        return f"{ident} ({db.get('DBInstanceStatus')})"

    def topic() -> str:
        arn = live.topic_arn()
        try:
            live.client("sns").get_topic_attributes(TopicArn=arn)
        except ClientError as exc:
            raise LookupError(f"SNS topic {arn.rsplit(':', 1)[-1]} does not exist") from exc
        return arn.rsplit(":", 1)[-1]

    return {"networking": vpc, "storage": buckets, "secrets": secret, "ecs": cluster, "database": database,
            "monitoring": topic}


def stack_deployed(ctx: CheckContext) -> Evidence:
    """Every component's main resource that the recorded outputs (or tags) name is live in the account."""
    live = Live.of(ctx)
    found: dict[str, str] = {}
    problems: list[str] = []
    for component, probe in _probes(live).items():
        try:
            found[component] = probe()
        except CheckFailed as exc:  # nothing of it deployed: say so the way discovery does
            problems.append(f"{component}: {exc.evidence.message.split(';')[0]}")
        except LookupError as exc:
            problems.append(f"{component}: {exc}")
    figures: dict[str, Any] = {"found": found, "components": sorted(found)}
    if not found:
        raise live.nothing_deployed("stack")
    if problems:
        raise live.fail(problems, figures)
    return live.evidence(f"stack {ctx.env} deployed: " + "; ".join(f"{c} {v}" for c, v in found.items()), figures)
