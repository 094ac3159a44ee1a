"""Data-plane resources in the emulator, derived from the settings.

The moto server keeps everything in memory, so `up` runs this every time;
each step is idempotent (re-applying a configuration is harmless).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import lake
from core.aws import client as aws_client
from core.errors import ConfigError
from core.lake import ZONES

if TYPE_CHECKING:
    from core.settings import Settings

LOG_DELIVERY = "logging.s3.amazonaws.com"
# Mirrors the lifecycle the AWS stacks plan: raw data cools down, old versions expire.
LIFECYCLE_DAYS = {"bronze": 30, "silver": 90, "gold": 180, "logs": 30}


def _lifecycle(zone: str) -> dict[str, Any]:
    days = LIFECYCLE_DAYS[zone]
    rule: dict[str, Any] = {
        "ID": f"{zone}-retention",
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "NoncurrentVersionExpiration": {"NoncurrentDays": days},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
    }
    if zone == "logs":
        rule["Expiration"] = {"Days": days}
    else:
        rule["Transitions"] = [{"Days": days, "StorageClass": "STANDARD_IA"}]
    return {"Rules": [rule]}


def _ensure_bucket(s3: Any, name: str, region: str) -> bool:
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if name in existing:
        return False
    args: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":
        args["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**args)
    return True


def bootstrap_data_plane(settings: Settings) -> dict[str, Any]:
    """Create buckets, the FMP secret, the Glue database and the local lake dirs."""
    if not settings.s3_endpoint:
        # Real AWS resources belong to the Pulumi program, never to this shortcut.
        raise ConfigError(f"no emulator endpoint for env {settings.env!r}: refusing to bootstrap AWS",
                          hint="set FINKS_S3_ENDPOINT_URL to an emulator, or use 'finks infra'")
    s3 = aws_client(settings, "s3")
    created: list[str] = []
    logs = lake.bucket(settings, "logs")
    for zone in ZONES:
        name = lake.bucket(settings, zone)
        if _ensure_bucket(s3, name, settings.region):
            created.append(f"s3://{name}")
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                       "BucketKeyEnabled": True}]})
        s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration=_lifecycle(zone))
    # Access logs are delivered by the S3 logging service, which needs a policy
    # on the target bucket before any bucket may point its logging at it.
    s3.put_bucket_policy(Bucket=logs, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "S3ServerAccessLogs", "Effect": "Allow",
                       "Principal": {"Service": LOG_DELIVERY}, "Action": ["s3:PutObject"],
                       "Resource": f"arn:aws:s3:::{logs}/*"}]}))
    for zone in ZONES:
        name = lake.bucket(settings, zone)
        if zone != "logs":
            s3.put_bucket_logging(Bucket=name, BucketLoggingStatus={
                "LoggingEnabled": {"TargetBucket": logs, "TargetPrefix": f"s3/{name}/"}})
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True,
            "BlockPublicPolicy": True, "RestrictPublicBuckets": True})

    created += _ensure_secret(settings)
    created += _ensure_glue_database(settings)
    lake_dirs = _ensure_lake_dirs(settings)
    return {"buckets": lake.buckets(settings), "secret": settings.fmp_secret_name,
            "glue_database": settings.glue_database, "lake_dirs": lake_dirs, "created": created}


def _ensure_secret(settings: Settings) -> list[str]:
    sm = aws_client(settings, "secretsmanager")
    # Locally the simulator needs no key; the placeholder keeps the secret's shape.
    value = settings.fmp_api_key.get_secret_value() if settings.fmp_api_key else "simulator"
    try:
        sm.describe_secret(SecretId=settings.fmp_secret_name)
    except sm.exceptions.ResourceNotFoundException:
        sm.create_secret(Name=settings.fmp_secret_name, SecretString=value,
                         Description="FMP API key for the Finks connector")
        return [f"secret {settings.fmp_secret_name}"]
    sm.put_secret_value(SecretId=settings.fmp_secret_name, SecretString=value)
    return []


def _ensure_glue_database(settings: Settings) -> list[str]:
    glue = aws_client(settings, "glue")
    try:
        glue.get_database(Name=settings.glue_database)
        return []
    except glue.exceptions.EntityNotFoundException:
        glue.create_database(DatabaseInput={
            "Name": settings.glue_database,
            "Description": "Finks lake catalog (bronze/silver/gold tables)"})
        return [f"glue database {settings.glue_database}"]


def _ensure_lake_dirs(settings: Settings) -> list[str]:
    if lake.lake_root(settings).startswith("s3://"):
        return []
    dirs = []
    for zone in ("bronze", "silver", "gold"):
        path = Path(lake.zone_uri(settings, zone))
        path.mkdir(parents=True, exist_ok=True)
        dirs.append(str(path))
    return dirs


def describe_data_plane(settings: Settings) -> dict[str, Any]:
    """What the emulator currently holds for our settings (used by checks and tests)."""
    s3 = aws_client(settings, "s3")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    buckets: dict[str, Any] = {}
    for zone, name in lake.buckets(settings).items():
        if name not in existing:
            buckets[zone] = None
            continue
        logging = s3.get_bucket_logging(Bucket=name).get("LoggingEnabled")
        enc = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]
        pab = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
        buckets[zone] = {
            "name": name,
            "versioning": s3.get_bucket_versioning(Bucket=name).get("Status"),
            "lifecycle_rules": len(s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]),
            "logging_target": logging["TargetBucket"] if logging else None,
            "encryption": enc["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"],
            "public_access_blocked": all(pab.values()),
        }
    sm = aws_client(settings, "secretsmanager")
    try:
        sm.describe_secret(SecretId=settings.fmp_secret_name)
        secret = True
    except sm.exceptions.ResourceNotFoundException:
        secret = False
    glue = aws_client(settings, "glue")
    try:
        glue.get_database(Name=settings.glue_database)
        glue_db = True
    except glue.exceptions.EntityNotFoundException:
        glue_db = False
    return {"buckets": buckets, "secret": secret, "glue_database": glue_db}
