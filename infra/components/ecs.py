"""ECS: Fargate cluster, ECR repositories, log groups, task definitions.

Task definitions: Prefect server, Prefect worker, a generic worker, the FMP
connector and dbt. The server reaches PostgreSQL through asyncpg; its
password comes from the RDS-managed secret as an ECS secret, so the URL is
assembled by Prefect inside the container and never exists in plain text.

The flow-run task (the generic worker) carries the ADOT collector as a
sidecar: the flows export their spans over OTLP to localhost:4318
(flows/tracing.py) and the collector forwards them to X-Ray.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components.base import Common, FinksComponent, policy_document
from jobs.dbt.cli import ECS_COMMAND

REPOSITORIES: tuple[str, ...] = ("prefect", "fmp-connector", "dbt", "api")
PREFECT_PORT = 4200

# name -> (image repository, cpu, memory, command)
TASKS: dict[str, tuple[str, int, int, list[str] | None]] = {
    "prefect-server": ("prefect", 1024, 2048, ["prefect", "server", "start", "--host", "0.0.0.0", "--port", str(PREFECT_PORT)]),
    "prefect-worker": ("prefect", 512, 1024, None),
    "worker": ("prefect", 1024, 2048, None),
    "fmp-connector": ("fmp-connector", 512, 1024, None),
    # The dbt image runs jobs.dbt (write-audit-publish around `dbt build`), not bare dbt.
    "dbt": ("dbt", 1024, 2048, list(ECS_COMMAND)),
}

# Distributed tracing: the tasks whose flows run in them get the collector sidecar.
TRACED_TASKS: tuple[str, ...] = ("worker",)
ADOT_CONTAINER = "aws-otel-collector"
ADOT_IMAGE = "public.ecr.aws/aws-observability/aws-otel-collector:v0.42.0"
OTLP_ENDPOINT = "http://localhost:4318"  # awsvpc: the task's containers share localhost
# Traces only: the image's default config would also ship metrics as EMF logs, which
# the pipeline already sends to CloudWatch itself (flows/metrics.py). The SDK's random
# W3C trace ids are fine: the awsxray exporter no longer demands X-Ray's epoch prefix.
ADOT_CONFIG = """\
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:4318
processors:
  batch/traces:
    timeout: 1s
    send_batch_size: 50
exporters:
  awsxray:
    region: {region}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch/traces]
      exporters: [awsxray]
"""


@dataclass(frozen=True)
class EcsArgs:
    common: Common
    image_tag: str
    log_retention_days: int
    execution_role: aws.iam.Role
    task_role_arn: pulumi.Input[str]
    prefect_server_role_arn: pulumi.Input[str]
    prefect_worker_role_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    fmp_secret_arn: pulumi.Input[str]
    db_address: pulumi.Input[str]
    db_secret_arn: pulumi.Input[str]
    prefect_api_url: str
    work_pool: str
    vpc_id: pulumi.Input[str]
    private_subnet_ids: list[pulumi.Output[str]]


class Ecs(FinksComponent):
    kind = "Ecs"

    def __init__(self, name: str, args: EcsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        c = args.common
        self.cluster = aws.ecs.Cluster(
            self.child("cluster"),
            # flows/blocks.py addresses the cluster as `<project>-<env>`.
            name=c.prefix,
            settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")],
            tags=c.tags,
            opts=self.opts(),
        )
        aws.ecs.ClusterCapacityProviders(
            self.child("capacity"),
            cluster_name=self.cluster.name,
            capacity_providers=["FARGATE", "FARGATE_SPOT"],
            default_capacity_provider_strategies=[
                aws.ecs.ClusterCapacityProvidersDefaultCapacityProviderStrategyArgs(capacity_provider="FARGATE", weight=1, base=1)
            ],
            opts=self.opts(),
        )

        # Flow-run and pipeline tasks: no ingress; HTTPS out to AWS APIs, FMP and Prefect.
        self.tasks_sg = aws.ec2.SecurityGroup(
            self.child("tasks-sg"), vpc_id=args.vpc_id, description="Pipeline and flow-run tasks: no ingress",
            tags=c.with_name(self.child("tasks-sg")), opts=self.opts(),
        )
        aws.vpc.SecurityGroupEgressRule(
            self.child("tasks-out-https"), security_group_id=self.tasks_sg.id, ip_protocol="tcp",
            from_port=443, to_port=443, cidr_ipv4="0.0.0.0/0", description="HTTPS to AWS APIs, FMP, Prefect",
            tags=c.tags, opts=self.opts(),
        )
        # flows/blocks.py reads the network for RunTask from these (comma-separated).
        network_env = [
            {"name": "FINKS_ECS_SUBNETS", "value": pulumi.Output.all(*args.private_subnet_ids).apply(",".join)},
            {"name": "FINKS_ECS_SECURITY_GROUPS", "value": self.tasks_sg.id},
        ]

        self.repositories: dict[str, aws.ecr.Repository] = {}
        for repo in REPOSITORIES:
            r = aws.ecr.Repository(
                self.child(f"ecr-{repo}"),
                name=f"{c.prefix}/{repo}",
                image_tag_mutability="IMMUTABLE",
                image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
                encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS", kms_key=args.kms_key_arn)],
                tags=c.tags,
                opts=self.opts(),
            )
            aws.ecr.LifecyclePolicy(
                self.child(f"ecr-{repo}-lifecycle"),
                repository=r.name,
                policy=(
                    '{"rules":[{"rulePriority":1,"description":"keep the last 30 images",'
                    '"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":30},'
                    '"action":{"type":"expire"}}]}'
                ),
                opts=self.opts(),
            )
            self.repositories[repo] = r

        self.log_groups: dict[str, aws.cloudwatch.LogGroup] = {
            task: aws.cloudwatch.LogGroup(
                self.child(f"logs-{task}"),
                name=f"/finks/{c.env}/ecs/{task}",
                retention_in_days=args.log_retention_days,
                tags=c.tags,
                opts=self.opts(),
            )
            for task in TASKS
        }

        # The execution role pulls these secrets into the containers at start.
        aws.iam.RolePolicy(
            self.child("execution-secrets"),
            role=args.execution_role.id,
            policy=policy_document(
                [
                    {
                        "Sid": "InjectSecrets",
                        "Effect": "Allow",
                        "Action": "secretsmanager:GetSecretValue",
                        "Resource": [args.fmp_secret_arn, args.db_secret_arn],
                    },
                    {"Sid": "SecretKey", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": args.kms_key_arn},
                ]
            ),
            opts=self.opts(),
        )

        common_env = [
            {"name": "FINKS_ENV", "value": c.env},
            # core.settings derives every bucket (finks-<env>-<zone>) from this.
            {"name": "FINKS_BUCKET_PREFIX", "value": c.prefix},
            {"name": "DO_NOT_TRACK", "value": "1"},
            {"name": "PREFECT_SERVER_ANALYTICS_ENABLED", "value": "false"},
        ]
        db_secret = pulumi.Output.from_input(args.db_secret_arn)
        per_task: dict[str, tuple[list[Any], list[Any], pulumi.Input[str]]] = {
            "prefect-server": (
                [
                    {"name": "PREFECT_SERVER_DATABASE_DRIVER", "value": "postgresql+asyncpg"},
                    {"name": "PREFECT_SERVER_DATABASE_HOST", "value": args.db_address},
                    {"name": "PREFECT_SERVER_DATABASE_PORT", "value": "5432"},
                    {"name": "PREFECT_SERVER_DATABASE_NAME", "value": "prefect"},
                    {"name": "PREFECT_SERVER_API_HOST", "value": "0.0.0.0"},
                    {"name": "PREFECT_UI_API_URL", "value": args.prefect_api_url},
                ],
                [
                    # RDS-managed secret is JSON {username, password}: ECS picks keys.
                    {"name": "PREFECT_SERVER_DATABASE_USER", "valueFrom": pulumi.Output.concat(db_secret, ":username::")},
                    {"name": "PREFECT_SERVER_DATABASE_PASSWORD", "valueFrom": pulumi.Output.concat(db_secret, ":password::")},
                ],
                args.prefect_server_role_arn,
            ),
            "prefect-worker": (
                [{"name": "PREFECT_API_URL", "value": args.prefect_api_url}, *network_env],
                [],
                args.prefect_worker_role_arn,
            ),
            "worker": (
                [{"name": "PREFECT_API_URL", "value": args.prefect_api_url}, *network_env],
                [{"name": "FMP_API_KEY", "valueFrom": args.fmp_secret_arn}],
                args.task_role_arn,
            ),
            "fmp-connector": (
                [],
                [{"name": "FMP_API_KEY", "valueFrom": args.fmp_secret_arn}],
                args.task_role_arn,
            ),
            "dbt": ([], [], args.task_role_arn),
        }

        self.task_definitions: dict[str, aws.ecs.TaskDefinition] = {}
        for task, (repo, cpu, memory, command) in TASKS.items():
            environment, secrets, role_arn = per_task[task]
            if task == "prefect-worker":
                command = ["prefect", "worker", "start", "--pool", args.work_pool, "--type", "ecs"]
            container: dict[str, Any] = {
                "name": task,
                "image": pulumi.Output.concat(self.repositories[repo].repository_url, ":", args.image_tag),
                "essential": True,
                "environment": [*common_env, *environment],
                "secrets": secrets,
                "readonlyRootFilesystem": False,
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": self.log_groups[task].name,
                        "awslogs-region": c.region,
                        "awslogs-stream-prefix": task,
                    },
                },
            }
            if command:
                container["command"] = command
            containers = [container]
            if task in TRACED_TASKS:
                containers.append(self._collector(task, c))
                container["environment"] += [
                    {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": OTLP_ENDPOINT},
                    {"name": "OTEL_RESOURCE_ATTRIBUTES", "value": f"deployment.environment={c.env}"},
                ]
                container["dependsOn"] = [{"containerName": ADOT_CONTAINER, "condition": "START"}]
            if task == "prefect-server":
                container["portMappings"] = [{"containerPort": PREFECT_PORT, "protocol": "tcp"}]
                container["healthCheck"] = {
                    "command": ["CMD-SHELL", f"python -c \"import urllib.request as u; u.urlopen('http://localhost:{PREFECT_PORT}/api/health')\""],
                    "interval": 30,
                    "timeout": 5,
                    "retries": 3,
                    # Migrations run at start-up: give the server time before judging it.
                    "startPeriod": 120,
                }
            self.task_definitions[task] = aws.ecs.TaskDefinition(
                self.child(f"task-{task}"),
                family=f"{c.prefix}-{task}",
                cpu=str(cpu),
                memory=str(memory),
                network_mode="awsvpc",
                requires_compatibilities=["FARGATE"],
                runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
                    operating_system_family="LINUX", cpu_architecture="X86_64"
                ),
                execution_role_arn=args.execution_role.arn,
                task_role_arn=role_arn,
                container_definitions=pulumi.Output.json_dumps(containers),
                tags=c.tags,
                opts=self.opts(),
            )

        self.cluster_name = self.cluster.name
        self.register_outputs(
            {
                "cluster_arn": self.cluster.arn,
                "repository_urls": {k: r.repository_url for k, r in self.repositories.items()},
                "task_definition_arns": {k: t.arn for k, t in self.task_definitions.items()},
            }
        )

    def _collector(self, task: str, c: Common) -> dict[str, Any]:
        """The ADOT collector sidecar: OTLP/HTTP in on localhost, X-Ray out (the task role may write traces)."""
        return {
            "name": ADOT_CONTAINER,
            "image": ADOT_IMAGE,
            # A collector that stops costs the run's trace, not the run.
            "essential": False,
            "environment": [{"name": "AOT_CONFIG_CONTENT", "value": ADOT_CONFIG.format(region=c.region)}],
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": self.log_groups[task].name,
                    "awslogs-region": c.region,
                    "awslogs-stream-prefix": ADOT_CONTAINER,
                },
            },
        }
