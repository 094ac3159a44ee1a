"""Database: RDS PostgreSQL for the Prefect server — private, encrypted, backed up.

The master password is managed by RDS in Secrets Manager; consumers read it
from the secret (`master_secret_arn`), never from config.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components.base import Common, FinksComponent

DB_NAME = "prefect"
DB_USER = "prefect"
DB_PORT = 5432


@dataclass(frozen=True)
class DatabaseArgs:
    common: Common
    vpc_id: pulumi.Input[str]
    private_subnet_ids: list[pulumi.Output[str]]
    kms_key_arn: pulumi.Input[str]
    instance_class: str
    allocated_storage_gb: int
    multi_az: bool
    backup_retention_days: int
    deletion_protection: bool


class Database(FinksComponent):
    kind = "Database"

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        c = args.common
        # Ingress is added by the Prefect server component (ECS tasks only).
        self.security_group = aws.ec2.SecurityGroup(
            self.child("sg"),
            vpc_id=args.vpc_id,
            description="PostgreSQL: reachable only from the Prefect server tasks",
            tags=c.with_name(self.child("sg")),
            opts=self.opts(),
        )
        subnets = aws.rds.SubnetGroup(
            self.child("subnets"),
            subnet_ids=args.private_subnet_ids,
            description="private subnets only",
            tags=c.tags,
            opts=self.opts(),
        )
        params = aws.rds.ParameterGroup(
            self.child("params"),
            family="postgres16",
            description="TLS required; slow statements logged",
            parameters=[
                aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1"),
                aws.rds.ParameterGroupParameterArgs(name="log_min_duration_statement", value="1000"),
            ],
            tags=c.tags,
            opts=self.opts(),
        )
        self.instance = aws.rds.Instance(
            self.child("postgres"),
            identifier=f"{c.prefix}-prefect",
            engine="postgres",
            engine_version="16",
            instance_class=args.instance_class,
            allocated_storage=args.allocated_storage_gb,
            max_allocated_storage=args.allocated_storage_gb * 4,
            storage_type="gp3",
            storage_encrypted=True,
            kms_key_id=args.kms_key_arn,
            db_name=DB_NAME,
            username=DB_USER,
            manage_master_user_password=True,
            port=DB_PORT,
            multi_az=args.multi_az,
            publicly_accessible=False,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[self.security_group.id],
            parameter_group_name=params.name,
            backup_retention_period=args.backup_retention_days,
            backup_window="06:00-07:00",
            maintenance_window="sun:07:30-sun:08:30",
            copy_tags_to_snapshot=True,
            deletion_protection=args.deletion_protection,
            skip_final_snapshot=not args.deletion_protection,
            final_snapshot_identifier=f"{c.prefix}-prefect-final" if args.deletion_protection else None,
            auto_minor_version_upgrade=True,
            performance_insights_enabled=True,
            performance_insights_kms_key_id=args.kms_key_arn,
            enabled_cloudwatch_logs_exports=["postgresql"],
            iam_database_authentication_enabled=True,
            tags=c.tags,
            opts=self.opts(),
        )
        self.address = self.instance.address
        self.identifier = self.instance.identifier
        self.master_secret_arn: pulumi.Output[str] = self.instance.master_user_secrets.apply(
            lambda secrets: (secrets[0].secret_arn or "") if secrets else ""
        )
        self.register_outputs(
            {"address": self.address, "master_secret_arn": self.master_secret_arn, "security_group_id": self.security_group.id}
        )
