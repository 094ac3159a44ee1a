"""Storage: the lake buckets (bronze, silver, gold) and the logs bucket.

Every bucket: versioning, lifecycle, server-side encryption, public-access
block, TLS-only policy; lake buckets log their access to the logs bucket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components.base import Common, FinksComponent, policy_document

LAKE_ZONES: tuple[str, ...] = ("bronze", "silver", "gold")

# The regional Elastic Load Balancing account that writes ALB access logs
# (regions older than 2022 use an account principal, not a service principal).
ELB_LOG_ACCOUNTS: dict[str, str] = {"ca-central-1": "985666609251", "us-east-1": "127311923021"}


@dataclass(frozen=True)
class StorageArgs:
    common: Common
    # Bronze keeps raw API responses: cheap tiers after these many days.
    bronze_ia_days: int = 30
    bronze_glacier_days: int = 90
    noncurrent_version_days: int = 90
    logs_expire_days: int = 365


def _deny_insecure_transport(arn: pulumi.Output[str]) -> dict[str, Any]:
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, pulumi.Output.concat(arn, "/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


class Storage(FinksComponent):
    kind = "Storage"

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        c = args.common
        self.kms_key = aws.kms.Key(
            self.child("kms"),
            description=f"{c.prefix} lake encryption",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=c.tags,
            opts=self.opts(),
        )
        aws.kms.Alias(self.child("kms-alias"), name=f"alias/{c.prefix}-lake", target_key_id=self.kms_key.key_id, opts=self.opts())

        # S3 server access logs cannot be delivered to an SSE-KMS bucket, so
        # the logs bucket uses S3-managed keys.
        self.logs = self._bucket(c, "logs", sse_algorithm="AES256", kms_key=None)
        self._lifecycle(
            "logs",
            self.logs,
            [
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-logs",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=args.logs_expire_days),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=30
                    ),
                )
            ],
        )
        elb_account = ELB_LOG_ACCOUNTS.get(c.region, ELB_LOG_ACCOUNTS["ca-central-1"])
        logs_arn = self.logs.arn
        aws.s3.BucketPolicy(
            self.child("logs-policy"),
            bucket=self.logs.id,
            policy=policy_document(
                [
                    _deny_insecure_transport(logs_arn),
                    {
                        "Sid": "S3ServerAccessLogs",
                        "Effect": "Allow",
                        "Principal": {"Service": "logging.s3.amazonaws.com"},
                        "Action": "s3:PutObject",
                        "Resource": pulumi.Output.concat(logs_arn, "/s3-access/*"),
                    },
                    {
                        "Sid": "AlbAccessLogs",
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{elb_account}:root"},
                        "Action": "s3:PutObject",
                        "Resource": pulumi.Output.concat(logs_arn, "/alb/*"),
                    },
                    {
                        "Sid": "AwsLogDeliveryAclCheck",
                        "Effect": "Allow",
                        "Principal": {
                            "Service": ["delivery.logs.amazonaws.com", "cloudtrail.amazonaws.com", "config.amazonaws.com"]
                        },
                        "Action": ["s3:GetBucketAcl", "s3:ListBucket"],
                        "Resource": logs_arn,
                    },
                    {
                        "Sid": "AwsLogDeliveryWrite",
                        "Effect": "Allow",
                        "Principal": {
                            "Service": ["delivery.logs.amazonaws.com", "cloudtrail.amazonaws.com", "config.amazonaws.com"]
                        },
                        "Action": "s3:PutObject",
                        "Resource": [
                            pulumi.Output.concat(logs_arn, "/vpc-flow-logs/*"),
                            pulumi.Output.concat(logs_arn, "/cloudtrail/*"),
                            pulumi.Output.concat(logs_arn, "/config/*"),
                        ],
                        "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}},
                    },
                ]
            ),
            opts=self.opts(depends_on=[self.logs]),
        )

        self.buckets: dict[str, aws.s3.Bucket] = {"logs": self.logs}
        for zone in LAKE_ZONES:
            bucket = self._bucket(c, zone, sse_algorithm="aws:kms", kms_key=self.kms_key)
            self.buckets[zone] = bucket
            rules = [
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-old-versions",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=args.noncurrent_version_days
                    ),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=7
                    ),
                )
            ]
            if zone == "bronze":
                # Raw responses are replayable history: rarely read after a month.
                rules.append(
                    aws.s3.BucketLifecycleConfigurationRuleArgs(
                        id="tier-raw-data",
                        status="Enabled",
                        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix="fmp/"),
                        transitions=[
                            aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
                                days=args.bronze_ia_days, storage_class="STANDARD_IA"
                            ),
                            aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
                                days=args.bronze_glacier_days, storage_class="GLACIER_IR"
                            ),
                        ],
                    )
                )
            self._lifecycle(zone, bucket, rules)
            aws.s3.BucketLogging(
                self.child(f"{zone}-logging"),
                bucket=bucket.id,
                target_bucket=self.logs.id,
                target_prefix=f"s3-access/{zone}/",
                opts=self.opts(),
            )
            aws.s3.BucketPolicy(
                self.child(f"{zone}-policy"),
                bucket=bucket.id,
                policy=policy_document([_deny_insecure_transport(bucket.arn)]),
                opts=self.opts(depends_on=[bucket]),
            )

        self.bucket_names = {zone: b.bucket for zone, b in self.buckets.items()}
        self.bucket_arns = {zone: b.arn for zone, b in self.buckets.items()}
        self.kms_key_arn = self.kms_key.arn
        self.register_outputs({"bucket_names": self.bucket_names, "kms_key_arn": self.kms_key_arn})

    def _bucket(self, c: Common, zone: str, sse_algorithm: str, kms_key: aws.kms.Key | None) -> aws.s3.Bucket:
        bucket = aws.s3.Bucket(
            self.child(zone),
            bucket=f"{c.prefix}-{zone}",
            force_destroy=False,
            tags={**c.tags, "Zone": zone},
            opts=self.opts(),
        )
        aws.s3.BucketOwnershipControls(
            self.child(f"{zone}-ownership"),
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=self.opts(),
        )
        aws.s3.BucketPublicAccessBlock(
            self.child(f"{zone}-public-access"),
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=self.opts(),
        )
        aws.s3.BucketVersioning(
            self.child(f"{zone}-versioning"),
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=self.opts(),
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            self.child(f"{zone}-sse"),
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm=sse_algorithm,
                        kms_master_key_id=kms_key.arn if kms_key is not None else None,
                    ),
                    bucket_key_enabled=kms_key is not None,
                )
            ],
            opts=self.opts(),
        )
        return bucket

    def _lifecycle(self, zone: str, bucket: aws.s3.Bucket, rules: list[aws.s3.BucketLifecycleConfigurationRuleArgs]) -> None:
        aws.s3.BucketLifecycleConfiguration(
            self.child(f"{zone}-lifecycle"), bucket=bucket.id, rules=rules, opts=self.opts()
        )
