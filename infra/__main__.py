"""The Finks Pulumi program: only wiring; each concern lives in infra/components/."""

import sys
from pathlib import Path

import pulumi

# `pulumi up` runs this file from infra/; the package lives one level up.
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from infra import config
from infra.components.api import Api, ApiArgs
from infra.components.base import Common
from infra.components.database import Database, DatabaseArgs
from infra.components.ecs import Ecs, EcsArgs
from infra.components.glue import Glue, GlueArgs
from infra.components.iam import Iam, IamArgs
from infra.components.monitoring import Monitoring, MonitoringArgs
from infra.components.networking import Networking, NetworkingArgs
from infra.components.pagerduty import PagerDutyArgs, integration_key
from infra.components.prefect_server import PrefectServer, PrefectServerArgs
from infra.components.secrets import Secrets, SecretsArgs
from infra.components.security import Security, SecurityArgs
from infra.components.storage import Storage, StorageArgs

cfg = config.from_pulumi()
common = Common(env=cfg.env, region=cfg.region, prefix=cfg.prefix, tags=cfg.tags)
p = cfg.prefix

storage = Storage(f"{p}-storage", StorageArgs(common))
network = Networking(
    f"{p}-net",
    NetworkingArgs(
        common,
        cfg.vpc_cidr,
        cfg.availability_zones,
        nat_per_az=cfg.nat_gateways == "per_az",
        flow_logs_bucket_arn=storage.bucket_arns["logs"],
    ),
)
secrets = Secrets(f"{p}-secrets", SecretsArgs(common, kms_key_arn=storage.kms_key_arn))
iam = Iam(
    f"{p}-iam",
    IamArgs(common, storage.bucket_arns, kms_key_arn=storage.kms_key_arn, fmp_secret_arn=secrets.fmp_secret_arn),
)
database = Database(
    f"{p}-db",
    DatabaseArgs(
        common,
        vpc_id=network.vpc_id,
        private_subnet_ids=network.private_subnet_ids,
        kms_key_arn=storage.kms_key_arn,
        instance_class=cfg.db_instance_class,
        allocated_storage_gb=cfg.db_allocated_storage_gb,
        multi_az=cfg.db_multi_az,
        backup_retention_days=cfg.db_backup_retention_days,
        deletion_protection=cfg.deletion_protection,
    ),
)
prefect_url = f"https://{cfg.prefect_domain}"
ecs = Ecs(
    f"{p}-ecs",
    EcsArgs(
        common,
        image_tag=cfg.image_tag,
        log_retention_days=cfg.log_retention_days,
        execution_role=iam.execution_role,
        task_role_arn=iam.task_role.arn,
        prefect_server_role_arn=iam.prefect_server_role.arn,
        prefect_worker_role_arn=iam.prefect_worker_role.arn,
        kms_key_arn=storage.kms_key_arn,
        fmp_secret_arn=secrets.fmp_secret_arn,
        db_address=database.address,
        db_secret_arn=database.master_secret_arn,
        prefect_api_url=f"{prefect_url}/api",
        work_pool=f"{p}-ecs",
        vpc_id=network.vpc_id,
        private_subnet_ids=network.private_subnet_ids,
    ),
)
prefect = PrefectServer(
    f"{p}-prefect",
    PrefectServerArgs(
        common,
        vpc_id=network.vpc_id,
        public_subnet_ids=network.public_subnet_ids,
        private_subnet_ids=network.private_subnet_ids,
        db_security_group_id=database.security_group.id,
        cluster_arn=ecs.cluster.arn,
        server_task_definition_arn=ecs.task_definitions["prefect-server"].arn,
        worker_task_definition_arn=ecs.task_definitions["prefect-worker"].arn,
        tasks_security_group_id=ecs.tasks_sg.id,
        domain=cfg.prefect_domain,
        logs_bucket=storage.bucket_names["logs"],
        server_count=cfg.prefect_server_count,
        hosted_zone_id=cfg.hosted_zone_id,
    ),
)
glue = Glue(
    f"{p}-glue",
    GlueArgs(common, role_arn=iam.glue_role.arn, buckets=storage.bucket_names, kms_key_arn=storage.kms_key_arn, repo_root=REPO_ROOT),
)
api = Api(
    f"{p}-api",
    ApiArgs(
        common,
        role_arn=iam.lambda_role.arn,
        image_uri=pulumi.Output.concat(ecs.repositories["api"].repository_url, ":", cfg.image_tag),
        handler=cfg.api_lambda_handler,
        logs_bucket=storage.bucket_names["logs"],
        glue_database=glue.database.name,
        log_retention_days=cfg.log_retention_days,
    ),
)
# PagerDuty pages once the stack file says finks:pagerduty: true (the key is then read from
# its secret at `pulumi up`); without it the secret is declared and no one is paged.
pages = cfg.pagerduty
monitoring = Monitoring(
    f"{p}-monitoring",
    MonitoringArgs(
        common,
        cluster_name=ecs.cluster_name,
        cluster_arn=ecs.cluster.arn,
        server_service_name=prefect.server_service.name,
        db_identifier=database.identifier,
        db_max_connections=cfg.db_max_connections,
        alb_arn_suffix=prefect.alb.arn_suffix,
        buckets=storage.bucket_names,
        api_name=api.rest_api_name,
        function_name=api.function_name,
        glue_job_name=glue.job.name,
        alert_email=cfg.alert_email,
        pagerduty=PagerDutyArgs(storage.kms_key_arn, integration_key(common) if pages else None),
    ),
)
security = Security(
    f"{p}-security",
    SecurityArgs(
        common,
        logs_bucket=storage.bucket_names["logs"],
        lake_bucket_arns=[storage.bucket_arns[z] for z in ("bronze", "silver", "gold")],
        multi_az_db=cfg.db_multi_az,
    ),
)

pulumi.export("buckets", storage.bucket_names)
pulumi.export("vpc_id", network.vpc_id)
pulumi.export("prefect_url", prefect_url)
pulumi.export("prefect_alb_dns", prefect.alb.dns_name)
pulumi.export("api_url", api.url)
pulumi.export("alerts_topic_arn", monitoring.topic.arn)
pulumi.export("ecr_repositories", {k: r.repository_url for k, r in ecs.repositories.items()})
# What the Prefect ECS work pool's job template needs (flows/ecs.py reads these).
pulumi.export("ecs_cluster_arn", ecs.cluster.arn)
pulumi.export("ecs_work_pool", f"{p}-ecs")
pulumi.export("private_subnet_ids", network.private_subnet_ids)
pulumi.export("flow_run_security_group_id", ecs.tasks_sg.id)
pulumi.export("flow_run_task_role_arn", iam.task_role.arn)
pulumi.export("flow_run_execution_role_arn", iam.execution_role.arn)
pulumi.export("glue_job", glue.job.name)
# What the live probes (validation/aws/) look at: names and ids of the deployed resources,
# recorded by `finks infra up` in <state>/state/<env>/stack-outputs.json. Never a secret.
pulumi.export("public_subnet_ids", network.public_subnet_ids)
pulumi.export("security_groups", {"alb": prefect.alb_sg.id, "prefect_server": prefect.service_sg.id,
                                  "database": database.security_group.id, "tasks": ecs.tasks_sg.id,
                                  "endpoints": network.endpoint_sg.id})
pulumi.export("fmp_secret_name", secrets.fmp_api_key.name)
pulumi.export("iam_roles", {key: role.name for key, role in {
    "ecs-execution": iam.execution_role, "pipeline-task": iam.task_role, "prefect-server": iam.prefect_server_role,
    "prefect-worker": iam.prefect_worker_role, "glue": iam.glue_role, "api-lambda": iam.lambda_role}.items()})
pulumi.export("ecs_cluster_name", ecs.cluster_name)
pulumi.export("ecs_task_families", {k: t.family for k, t in ecs.task_definitions.items()})
pulumi.export("log_groups", {k: g.name for k, g in ecs.log_groups.items()})
pulumi.export("db_identifier", database.identifier)
pulumi.export("dashboards", {"platform": monitoring.dashboard.dashboard_name,
                             "pipeline": monitoring.pipeline_dashboard.dashboard_name})
pulumi.export("alarms", {k: a.name for k, a in monitoring.alarms.items()})
pulumi.export("guardduty_detector_id", security.detector.id)
pulumi.export("glue_database", glue.database.name)
pulumi.export("glue_crawler", glue.crawler.name)
pulumi.export("api_rest_api_id", api.rest_api.id)
pulumi.export("api_function_name", api.function_name)
pulumi.export("pagerduty_secret_name", monitoring.pagerduty_secret.name)
pulumi.export("ecs_services", {"prefect-server": prefect.server_service.name, "prefect-worker": prefect.worker_service.name})
