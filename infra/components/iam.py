"""IAM: least-privilege roles for ECS tasks and execution, the Prefect worker, Glue, Lambda.

No statement grants `*` on `*`; where AWS requires `Resource: *` (ECS
RegisterTaskDefinition, CloudWatch PutMetricData) the actions are named and,
where possible, narrowed by a condition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components.base import Common, FinksComponent, assume_role_policy, policy_document

METRICS_NAMESPACE = "Finks/Pipeline"


@dataclass(frozen=True)
class IamArgs:
    common: Common
    bucket_arns: dict[str, pulumi.Output[str]]
    kms_key_arn: pulumi.Input[str]
    fmp_secret_arn: pulumi.Input[str]


def _objects(arn: pulumi.Output[str]) -> pulumi.Output[str]:
    return pulumi.Output.concat(arn, "/*")


class Iam(FinksComponent):
    kind = "Iam"

    def __init__(self, name: str, args: IamArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        c = args.common
        lake = [args.bucket_arns[z] for z in ("bronze", "silver", "gold")]
        lake_rw: list[dict[str, Any]] = [
            {"Sid": "LakeList", "Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"], "Resource": lake},
            {
                "Sid": "LakeObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": [_objects(a) for a in lake],
            },
            {
                "Sid": "LakeKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": args.kms_key_arn,
            },
        ]
        put_metrics = {
            "Sid": "PipelineMetrics",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
        }

        self.execution_role = self._role("ecs-execution", "ecs-tasks.amazonaws.com", c)
        aws.iam.RolePolicyAttachment(
            self.child("ecs-execution-managed"),
            role=self.execution_role.name,
            policy_arn="arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy",
            opts=self.opts(),
        )

        # Connector, generic worker and dbt tasks: the lake, the FMP key, Athena.
        self.task_role = self._role("pipeline-task", "ecs-tasks.amazonaws.com", c)
        self._inline(
            "pipeline-task",
            self.task_role,
            [
                *lake_rw,
                {"Sid": "FmpKey", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": args.fmp_secret_arn},
                put_metrics,
                {
                    "Sid": "Athena",
                    "Effect": "Allow",
                    "Action": [
                        "athena:StartQueryExecution",
                        "athena:GetQueryExecution",
                        "athena:GetQueryResults",
                        "athena:StopQueryExecution",
                        "athena:GetWorkGroup",
                    ],
                    "Resource": f"arn:aws:athena:{c.region}:*:workgroup/{c.prefix}-*",
                },
                {
                    "Sid": "Catalog",
                    "Effect": "Allow",
                    "Action": [
                        "glue:GetDatabase",
                        "glue:GetDatabases",
                        "glue:GetTable",
                        "glue:GetTables",
                        "glue:GetPartition",
                        "glue:GetPartitions",
                        "glue:CreateTable",
                        "glue:UpdateTable",
                        "glue:DeleteTable",
                        "glue:BatchCreatePartition",
                        "glue:StartJobRun",
                        "glue:GetJobRun",
                        "glue:BatchStopJobRun",
                    ],
                    "Resource": [
                        f"arn:aws:glue:{c.region}:*:catalog",
                        f"arn:aws:glue:{c.region}:*:database/{c.prefix.replace('-', '_')}*",
                        f"arn:aws:glue:{c.region}:*:table/{c.prefix.replace('-', '_')}*/*",
                        f"arn:aws:glue:{c.region}:*:job/{c.prefix}-*",
                    ],
                },
            ],
        )

        # Flow runs' spans reach X-Ray through the ADOT collector sidecar (infra/components/ecs.py).
        aws.iam.RolePolicyAttachment(
            self.child("pipeline-task-xray"),
            role=self.task_role.name,
            policy_arn="arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
            opts=self.opts(),
        )

        # Flows start the connector and dbt as ECS tasks (flows/ecs.py).
        self._inline(
            "pipeline-run-tasks",
            self.task_role,
            [
                {
                    "Sid": "RunCloudSteps",
                    "Effect": "Allow",
                    "Action": ["ecs:RunTask", "ecs:DescribeTasks", "ecs:StopTask"],
                    "Resource": [
                        f"arn:aws:ecs:{c.region}:*:task-definition/{c.prefix}-*",
                        f"arn:aws:ecs:{c.region}:*:task/{c.prefix}/*",
                    ],
                },
                {
                    "Sid": "PassTaskRoles",
                    "Effect": "Allow",
                    "Action": "iam:PassRole",
                    "Resource": [self.execution_role.arn, self.task_role.arn],
                    "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
                },
            ],
        )

        # The Prefect server itself needs no AWS API: an empty task role.
        self.prefect_server_role = self._role("prefect-server", "ecs-tasks.amazonaws.com", c)

        # The worker launches flow runs as ECS tasks of our own task families.
        self.prefect_worker_role = self._role("prefect-worker", "ecs-tasks.amazonaws.com", c)
        self._inline(
            "prefect-worker",
            self.prefect_worker_role,
            [
                {
                    "Sid": "RunFlowTasks",
                    "Effect": "Allow",
                    "Action": ["ecs:RunTask", "ecs:StopTask", "ecs:DescribeTasks", "ecs:TagResource"],
                    "Resource": [
                        f"arn:aws:ecs:{c.region}:*:task-definition/{c.prefix}-*",
                        f"arn:aws:ecs:{c.region}:*:task/{c.prefix}/*",
                    ],
                },
                {
                    # These ECS APIs do not support resource-level permissions.
                    "Sid": "TaskDefinitions",
                    "Effect": "Allow",
                    "Action": ["ecs:RegisterTaskDefinition", "ecs:DescribeTaskDefinition", "ecs:DeregisterTaskDefinition", "ec2:DescribeSubnets", "ec2:DescribeVpcs"],
                    "Resource": "*",
                },
                {
                    "Sid": "PassTaskRoles",
                    "Effect": "Allow",
                    "Action": "iam:PassRole",
                    "Resource": [self.execution_role.arn, self.task_role.arn],
                    "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
                },
                {
                    "Sid": "FlowLogs",
                    "Effect": "Allow",
                    "Action": ["logs:GetLogEvents", "logs:DescribeLogStreams"],
                    "Resource": f"arn:aws:logs:{c.region}:*:log-group:/finks/{c.env}/*",
                },
            ],
        )

        self.glue_role = self._role("glue", "glue.amazonaws.com", c)
        aws.iam.RolePolicyAttachment(
            self.child("glue-managed"),
            role=self.glue_role.name,
            policy_arn="arn:aws:iam::aws:policy/service-role/AWSGlueServiceRole",
            opts=self.opts(),
        )
        self._inline("glue", self.glue_role, [*lake_rw, put_metrics])

        self.lambda_role = self._role("api-lambda", "lambda.amazonaws.com", c)
        aws.iam.RolePolicyAttachment(
            self.child("api-lambda-logs"),
            role=self.lambda_role.name,
            policy_arn="arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
            opts=self.opts(),
        )
        aws.iam.RolePolicyAttachment(
            self.child("api-lambda-xray"),
            role=self.lambda_role.name,
            policy_arn="arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
            opts=self.opts(),
        )
        gold = args.bucket_arns["gold"]
        logs = args.bucket_arns["logs"]
        self._inline(
            "api-lambda",
            self.lambda_role,
            [
                {"Sid": "GoldRead", "Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": [gold, _objects(gold)]},
                {
                    "Sid": "AthenaResults",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:GetBucketLocation"],
                    "Resource": [logs, pulumi.Output.concat(logs, "/athena-results/*")],
                },
                {"Sid": "GoldKey", "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": args.kms_key_arn},
                {
                    "Sid": "AthenaQueries",
                    "Effect": "Allow",
                    "Action": ["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults"],
                    "Resource": f"arn:aws:athena:{c.region}:*:workgroup/{c.prefix}-*",
                },
                {
                    "Sid": "CatalogRead",
                    "Effect": "Allow",
                    "Action": ["glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"],
                    "Resource": [
                        f"arn:aws:glue:{c.region}:*:catalog",
                        f"arn:aws:glue:{c.region}:*:database/{c.prefix.replace('-', '_')}*",
                        f"arn:aws:glue:{c.region}:*:table/{c.prefix.replace('-', '_')}*/*",
                    ],
                },
            ],
        )
        self.register_outputs(
            {
                "execution_role_arn": self.execution_role.arn,
                "task_role_arn": self.task_role.arn,
                "prefect_worker_role_arn": self.prefect_worker_role.arn,
                "glue_role_arn": self.glue_role.arn,
                "lambda_role_arn": self.lambda_role.arn,
            }
        )

    def _role(self, suffix: str, service: str, c: Common) -> aws.iam.Role:
        return aws.iam.Role(
            self.child(suffix),
            name=f"{c.prefix}-{suffix}",
            assume_role_policy=assume_role_policy(service),
            max_session_duration=3600,
            tags=c.tags,
            opts=self.opts(),
        )

    def _inline(self, suffix: str, role: aws.iam.Role, statements: list[dict[str, Any]]) -> aws.iam.RolePolicy:
        return aws.iam.RolePolicy(
            self.child(f"{suffix}-policy"), role=role.id, policy=policy_document(statements), opts=self.opts()
        )
