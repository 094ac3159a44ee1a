"""The plan's success criteria as assertions over a dry plan, one module per area.

Each function takes a :class:`~infra.plan.Plan` and returns ``(message,
figures)`` when the criterion holds, or raises :class:`NotMet` saying what
is missing. The plan names them as ``plan: infra.criteria:<function>``
checks (graded *planned*); the tests call them directly. A plan that lacks a
resource a criterion needs is a criterion not met (``NotMet``), never a
crash: every lookup goes through ``one``/``require``, and "all of none"
never counts as holding.

    common          NotMet, Result and the lookups every area uses
    foundation      S3: VPC and subnets, lake buckets, secrets, base IAM roles
    compute         S5, S6: ECS, ECR, logs, RDS, security groups, ALB, NAT
    prefect         S8, S9: the Prefect server and worker on ECS
    observability   S11, S20: dashboards, alarms, the alerts topic
    data            S12, S13, S19: dbt task_def, Glue, the API
    security        S21: hardening and the policy scan
"""

from __future__ import annotations

from infra.criteria.common import NotMet, Result
from infra.criteria.compute import (
    SINGLE_AZ_STACKS,
    alb_https,
    ecr_repositories,
    ecs_fargate_cluster,
    ecs_task_definitions,
    log_groups_with_retention,
    nat_gateways,
    rds_postgres_multi_az,
    security_group_chain,
)
from infra.criteria.data import (
    SILVER_TABLES,
    api_gateway_lambda,
    dbt_task_definition,
    glue_job_and_catalog,
)
from infra.criteria.foundation import (
    BASE_ROLES,
    PUBLIC_ACCESS_FLAGS,
    SSE_ALGORITHMS,
    base_iam_roles,
    lake_buckets_configured,
    secrets_manager_configured,
    vpc_public_private_subnets,
)
from infra.criteria.observability import (
    alerts_topic,
    monitoring_alarms,
    monitoring_dashboard,
    pipeline_dashboard_and_alerting,
)
from infra.criteria.prefect import (
    prefect_behind_https_alb,
    prefect_logs_to_cloudwatch,
    prefect_service_resilient,
    prefect_worker_service,
)
from infra.criteria.security import policy_scan_clean, security_hardening

__all__ = [
    "BASE_ROLES",
    "NotMet",
    "PUBLIC_ACCESS_FLAGS",
    "Result",
    "SILVER_TABLES",
    "SINGLE_AZ_STACKS",
    "SSE_ALGORITHMS",
    "alb_https",
    "alerts_topic",
    "api_gateway_lambda",
    "base_iam_roles",
    "dbt_task_definition",
    "ecr_repositories",
    "ecs_fargate_cluster",
    "ecs_task_definitions",
    "glue_job_and_catalog",
    "lake_buckets_configured",
    "log_groups_with_retention",
    "monitoring_alarms",
    "monitoring_dashboard",
    "nat_gateways",
    "pipeline_dashboard_and_alerting",
    "policy_scan_clean",
    "prefect_behind_https_alb",
    "prefect_logs_to_cloudwatch",
    "prefect_service_resilient",
    "prefect_worker_service",
    "rds_postgres_multi_az",
    "secrets_manager_configured",
    "security_group_chain",
    "security_hardening",
    "vpc_public_private_subnets",
]
