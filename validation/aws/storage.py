"""Live probes for S3: the lake buckets as deployed, and the FMP key's secret."""

from __future__ import annotations

from typing import Any

from finks.checks import CheckContext, Evidence
from validation.aws.live import Live


def _bucket_problems(s3: Any, name: str, zone: str, logs_bucket: str | None) -> tuple[list[str], dict[str, Any]]:
    from botocore.exceptions import ClientError

    def read(call: Any, missing: str, **kwargs: Any) -> dict[str, Any] | None:
        try:
            return call(Bucket=name, **kwargs)  # type: ignore[no-any-return]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in (missing, "NoSuchBucket"):
                return None
            raise

    problems: list[str] = []
    if read(s3.head_bucket, "404") is None:
        return [f"bucket {name} ({zone}) does not exist"], {}
    versioning = (read(s3.get_bucket_versioning, "") or {}).get("Status", "never enabled")
    if versioning != "Enabled":
        problems.append(f"bucket {name} ({zone}): versioning is {versioning}, not Enabled — an overwrite loses data")
    lifecycle = read(s3.get_bucket_lifecycle_configuration, "NoSuchLifecycleConfiguration") or {}
    rules = [r.get("ID", "?") for r in lifecycle.get("Rules", []) if r.get("Status") == "Enabled"]
    if not rules:
        problems.append(f"bucket {name} ({zone}) has no enabled lifecycle rule: old versions are kept forever")
    encryption = read(s3.get_bucket_encryption, "ServerSideEncryptionConfigurationNotFoundError") or {}
    defaults = [r.get("ApplyServerSideEncryptionByDefault", {})
                for r in encryption.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])]
    algorithms = sorted({d.get("SSEAlgorithm", "") for d in defaults} - {""})
    if not algorithms:
        problems.append(f"bucket {name} ({zone}) has no default encryption")
    elif zone != "logs" and "aws:kms" not in algorithms:
        problems.append(f"bucket {name} ({zone}) encrypts with {algorithms}, not the lake's KMS key (aws:kms)")
    block = (read(s3.get_public_access_block, "NoSuchPublicAccessBlockConfiguration") or {}).get(
        "PublicAccessBlockConfiguration", {})
    open_settings = [k for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
                     if not block.get(k)]
    if open_settings:
        problems.append(f"bucket {name} ({zone}): public access block lacks {', '.join(open_settings)}")
    logging: dict[str, Any] = {}
    if zone != "logs":  # S3 cannot deliver a bucket's own access logs to itself: logs is the target
        logging = (read(s3.get_bucket_logging, "") or {}).get("LoggingEnabled") or {}
        if not logging:
            problems.append(f"bucket {name} ({zone}) has no access logging")
        elif logs_bucket and logging.get("TargetBucket") != logs_bucket:
            problems.append(f"bucket {name} ({zone}) logs to {logging.get('TargetBucket')}, not {logs_bucket}")
    figures = {"versioning": versioning, "lifecycle_rules": rules, "encryption": algorithms,
               "public_access_block": not open_settings,
               "access_logs": f"{logging.get('TargetBucket')}/{logging.get('TargetPrefix', '')}" if logging else None}
    return problems, figures


def buckets_configured(ctx: CheckContext) -> Evidence:
    """Every bucket of the stack (logs, bronze, silver, gold): versioned, with enabled lifecycle
    rules, default encryption (the lake's KMS key for lake zones), the public access block on, and
    — for the lake zones — access logs delivered to the logs bucket."""
    from infra.components.storage import LAKE_ZONES

    live = Live.of(ctx)
    buckets = live.buckets()
    if not buckets:
        raise live.nothing_deployed("buckets")
    s3 = live.client("s3")
    problems = [f"no {zone} bucket found ({live.found_by})" for zone in (*LAKE_ZONES, "logs") if zone not in buckets]
    seen: dict[str, Any] = {}
    for zone, name in sorted(buckets.items()):
        found, figures = _bucket_problems(s3, name, zone, buckets.get("logs"))
        problems += found
        seen[name] = {"zone": zone, **figures}
    if problems:
        raise live.fail(problems, {"buckets": seen})
    return live.evidence(f"{len(seen)} buckets ({', '.join(sorted(seen))}): versioned, lifecycle rules, encrypted, "
                         "public access blocked; lake zones log to " + str(buckets.get("logs")), {"buckets": seen},
                         ["lifecycle transitions and access-log delivery are stored, not carried out"])


def secret_exists(ctx: CheckContext) -> Evidence:
    """The FMP key's secret exists, encrypted with the stack's KMS key, and holds a value
    (its AWSCURRENT version): the connector can start. The value itself is never read."""
    from botocore.exceptions import ClientError

    live = Live.of(ctx)
    name = live.secret_name()
    try:
        secret = live.client("secretsmanager").describe_secret(SecretId=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise live.fail([f"secret {name} does not exist"], {"secret": name}) from None
        raise
    stages = {stage for stages in (secret.get("VersionIdsToStages") or {}).values() for stage in stages}
    figures = {"secret": name, "kms_key": secret.get("KmsKeyId"), "stages": sorted(stages),
               "rotation": bool(secret.get("RotationEnabled"))}
    problems = []
    if secret.get("DeletedDate"):
        problems.append(f"secret {name} is scheduled for deletion ({secret['DeletedDate']})")
    if not secret.get("KmsKeyId"):
        problems.append(f"secret {name} is encrypted with the default key, not the stack's KMS key")
    if problems:
        raise live.fail(problems, figures)
    if "AWSCURRENT" not in stages:
        raise live.fail([f"secret {name} has no value yet (no AWSCURRENT version)"], figures,
                        f"put the key: `aws secretsmanager put-secret-value --secret-id {name} --secret-string <FMP key>`")
    return live.evidence(f"secret {name} exists, KMS-encrypted, with a current value", figures)
