"""Security: GuardDuty, AWS Config (recorder and managed rules), CloudTrail."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components.base import Common, FinksComponent, assume_role_policy

# AWS managed Config rules that watch the promises this program makes.
CONFIG_RULES: tuple[str, ...] = (
    "S3_BUCKET_PUBLIC_READ_PROHIBITED",
    "S3_BUCKET_SSL_REQUESTS_ONLY",
    "S3_BUCKET_SERVER_SIDE_ENCRYPTION_ENABLED",
    "S3_BUCKET_VERSIONING_ENABLED",
    "RDS_STORAGE_ENCRYPTED",
    "RDS_INSTANCE_PUBLIC_ACCESS_CHECK",
    "IAM_POLICY_NO_STATEMENTS_WITH_ADMIN_ACCESS",
    "INCOMING_SSH_DISABLED",
    "CLOUD_TRAIL_ENABLED",
    "VPC_FLOW_LOGS_ENABLED",
    "CW_LOGGROUP_RETENTION_PERIOD_CHECK",
    "ECR_PRIVATE_IMAGE_SCANNING_ENABLED",
)


@dataclass(frozen=True)
class SecurityArgs:
    common: Common
    logs_bucket: pulumi.Input[str]
    lake_bucket_arns: list[pulumi.Output[str]]
    multi_az_db: bool


class Security(FinksComponent):
    kind = "Security"

    def __init__(self, name: str, args: SecurityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        c = args.common
        self.detector = aws.guardduty.Detector(
            self.child("guardduty"), enable=True, finding_publishing_frequency="FIFTEEN_MINUTES", tags=c.tags,
            opts=self.opts(),
        )
        config_role = aws.iam.Role(
            self.child("config-role"), name=f"{c.prefix}-config", assume_role_policy=assume_role_policy("config.amazonaws.com"),
            tags=c.tags, opts=self.opts(),
        )
        aws.iam.RolePolicyAttachment(
            self.child("config-managed"), role=config_role.name,
            policy_arn="arn:aws:iam::aws:policy/service-role/AWS_ConfigRole", opts=self.opts(),
        )
        recorder = aws.cfg.Recorder(
            self.child("config-recorder"), name=f"{c.prefix}-recorder", role_arn=config_role.arn,
            recording_group=aws.cfg.RecorderRecordingGroupArgs(all_supported=True, include_global_resource_types=c.env == "prod"),
            opts=self.opts(),
        )
        channel = aws.cfg.DeliveryChannel(
            self.child("config-delivery"), name=f"{c.prefix}-delivery", s3_bucket_name=args.logs_bucket, s3_key_prefix="config",
            opts=self.opts(depends_on=[recorder]),
        )
        aws.cfg.RecorderStatus(
            self.child("config-status"), name=recorder.name, is_enabled=True, opts=self.opts(depends_on=[channel]),
        )
        rules = list(CONFIG_RULES) + (["RDS_MULTI_AZ_SUPPORT"] if args.multi_az_db else [])
        self.rules = [
            aws.cfg.Rule(
                self.child(f"rule-{rule.lower().replace('_', '-')}"),
                name=f"{c.prefix}-{rule.lower().replace('_', '-')}",
                source=aws.cfg.RuleSourceArgs(owner="AWS", source_identifier=rule),
                tags=c.tags,
                opts=self.opts(depends_on=[recorder]),
            )
            for rule in rules
        ]
        self.trail = aws.cloudtrail.Trail(
            self.child("trail"),
            name=f"{c.prefix}-trail",
            s3_bucket_name=args.logs_bucket,
            s3_key_prefix="cloudtrail",
            is_multi_region_trail=True,
            include_global_service_events=True,
            enable_log_file_validation=True,
            enable_logging=True,
            event_selectors=[
                aws.cloudtrail.TrailEventSelectorArgs(
                    read_write_type="WriteOnly",
                    include_management_events=True,
                    data_resources=[
                        aws.cloudtrail.TrailEventSelectorDataResourceArgs(
                            type="AWS::S3::Object",
                            values=[pulumi.Output.concat(arn, "/") for arn in args.lake_bucket_arns],
                        )
                    ],
                )
            ],
            tags=c.tags,
            opts=self.opts(),
        )
        self.register_outputs({"guardduty_detector": self.detector.id, "trail": self.trail.arn})
