"""Live probe for S6: the Prefect database as deployed (RDS PostgreSQL)."""

from __future__ import annotations

from finks.checks import CheckContext, Evidence
from validation.aws.live import Live
from validation.aws.network import subnets


def rds_postgres(ctx: CheckContext) -> Evidence:
    """PostgreSQL, available, Multi-AZ where the stack says so (always on prod), not publicly
    accessible, storage encrypted, automated backups kept as long as the stack says, in private
    subnets only; deletion protection where the stack wants it."""
    from botocore.exceptions import ClientError

    live = Live.of(ctx)
    ident = live.db_identifier()
    try:
        db = live.client("rds").describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "DBInstanceNotFound":
            raise live.fail([f"RDS instance {ident} does not exist"], {"db": ident}) from None
        raise
    cfg = live.config
    want_multi_az = cfg.db_multi_az or ctx.env == "prod"
    subnet_ids = {s["SubnetIdentifier"] for s in (db.get("DBSubnetGroup") or {}).get("Subnets", [])}
    vpc = (db.get("DBSubnetGroup") or {}).get("VpcId") or live.vpc_id()
    public = sorted(s.label for s in subnets(live, vpc) if s.tier == "public" and s.id in subnet_ids)
    figures = {"db": ident, "engine": f"{db.get('Engine')} {db.get('EngineVersion')}", "status": db.get("DBInstanceStatus"),
               "multi_az": bool(db.get("MultiAZ")), "publicly_accessible": bool(db.get("PubliclyAccessible")),
               "storage_encrypted": bool(db.get("StorageEncrypted")), "backup_days": db.get("BackupRetentionPeriod", 0),
               "deletion_protection": bool(db.get("DeletionProtection")), "subnets": sorted(subnet_ids)}
    problems = []
    if db.get("Engine") != "postgres":
        problems.append(f"RDS instance {ident} runs {db.get('Engine')}, not PostgreSQL")
    if db.get("DBInstanceStatus") != "available":
        problems.append(f"RDS instance {ident} is {db.get('DBInstanceStatus')}, not available")
    if want_multi_az and not db.get("MultiAZ"):
        problems.append(f"RDS instance {ident} is single-AZ: {ctx.env} wants Multi-AZ (dbMultiAz in "
                        f"infra/Pulumi.{ctx.env}.yaml) — one zone's outage stops Prefect")
    if db.get("PubliclyAccessible"):
        problems.append(f"RDS instance {ident} is publicly accessible")
    if not db.get("StorageEncrypted"):
        problems.append(f"RDS instance {ident} stores its data unencrypted")
    if int(db.get("BackupRetentionPeriod") or 0) < cfg.db_backup_retention_days:
        problems.append(f"RDS instance {ident} keeps backups {db.get('BackupRetentionPeriod', 0)} days, "
                        f"the stack wants {cfg.db_backup_retention_days}")
    if cfg.deletion_protection and not db.get("DeletionProtection"):
        problems.append(f"RDS instance {ident} has deletion protection off")
    if public:
        problems.append(f"RDS instance {ident} may be placed in public subnets {public}")
    if problems:
        raise live.fail(problems, figures)
    shape = "Multi-AZ" if db.get("MultiAZ") else f"single-AZ (as infra/Pulumi.{ctx.env}.yaml says)"
    return live.evidence(f"RDS {ident}: {figures['engine']} available, {shape}, private, encrypted, "
                         f"backups {figures['backup_days']} days", figures,
                         ["Multi-AZ is a recorded flag: no standby runs and no failover is exercised"])
