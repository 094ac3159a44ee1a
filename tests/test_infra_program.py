"""The whole program for dev, staging and prod under Pulumi's mocks (one plan per stack per session)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core import lake
from core.environments import AWS_ENVIRONMENTS
from infra import criteria
from infra.config import load
from infra.plan import Plan, plan, plan_for
from infra.policies import check

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_aws")

COMPONENTS = ("Storage", "Networking", "Secrets", "Iam", "Database", "Ecs", "PrefectServer", "Glue", "Api", "Monitoring", "Security")


@pytest.fixture(scope="session")
def plans() -> dict[str, Plan]:
    # plan() is cached per process: each stack's program runs once per session.
    return {stack: plan(stack) for stack in AWS_ENVIRONMENTS}


@pytest.mark.parametrize("stack", AWS_ENVIRONMENTS)
def test_program_wires_every_component_and_leaves_no_orphan(plans: dict[str, Plan], stack: str) -> None:
    p = plans[stack]
    kinds = {r.type.rsplit(":", 1)[-1]: r.name for r in p.resources if r.type.startswith("finks:infra:")}
    assert set(kinds) == set(COMPONENTS)
    components = set(kinds.values())
    assert all(r.parent in components for r in p.custom), [r.name for r in p.custom if r.parent not in components]
    assert len({(r.type, r.name) for r in p.resources}) == len(p.resources)


@pytest.mark.parametrize("stack", AWS_ENVIRONMENTS)
def test_every_stack_passes_every_policy(plans: dict[str, Plan], stack: str) -> None:
    assert check(plans[stack]) == []


@pytest.mark.parametrize("stack", AWS_ENVIRONMENTS)
def test_every_criterion_holds_on_every_stack(plans: dict[str, Plan], stack: str) -> None:

    p, cfg = plans[stack], load(stack)
    for fn in (
        criteria.vpc_public_private_subnets, criteria.lake_buckets_configured, criteria.secrets_manager_configured,
        criteria.base_iam_roles, criteria.ecs_fargate_cluster, criteria.ecs_task_definitions, criteria.ecr_repositories,
        criteria.log_groups_with_retention, criteria.security_group_chain, criteria.alb_https,
        criteria.prefect_behind_https_alb, criteria.prefect_service_resilient, criteria.prefect_logs_to_cloudwatch,
        criteria.prefect_worker_service, criteria.monitoring_dashboard, criteria.monitoring_alarms, criteria.alerts_topic,
        criteria.pipeline_dashboard_and_alerting, criteria.dbt_task_definition, criteria.api_gateway_lambda,
        criteria.security_hardening,
    ):
        message, _ = fn(p)
        assert message
    criteria.rds_postgres_multi_az(p, cfg.db_multi_az)
    criteria.nat_gateways(p, cfg.nat_gateways == "per_az")
    criteria.glue_job_and_catalog(p, Path(__file__).resolve().parent.parent)


def test_prod_differs_from_dev_where_it_should(plans: dict[str, Plan]) -> None:
    dev, prod = plans["dev"], plans["prod"]
    assert len(dev.of_type("aws:ec2/natGateway:NatGateway")) == 1
    assert len(prod.of_type("aws:ec2/natGateway:NatGateway")) == 3
    assert prod.one("aws:rds/instance:Instance").inputs["multiAz"] is True
    assert dev.one("aws:rds/instance:Instance").inputs["multiAz"] is False
    assert prod.one("aws:rds/instance:Instance").inputs["deletionProtection"] is True


def test_criterion_reports_what_is_missing_when_multi_az_is_expected(plans: dict[str, Plan]) -> None:
    with pytest.raises(criteria.NotMet, match="multiAz is False"):
        criteria.rds_postgres_multi_az(plans["dev"], True)


def test_stack_outputs_name_the_lake_buckets_and_prefect_url(plans: dict[str, Plan]) -> None:
    out = plans["staging"].outputs
    assert out["buckets"] == {z: f"finks-staging-{z}" for z in ("logs", "bronze", "silver", "gold")}
    assert out["prefect_url"] == "https://prefect.staging.finks.example.com"


def test_buckets_match_the_settings_model(plans: dict[str, Plan]) -> None:
    from core.settings import load_settings

    settings = load_settings(env="prod")
    planned = {b.inputs["bucket"] for b in plans["prod"].of_type("aws:s3/bucket:Bucket")}
    assert planned == set(lake.buckets(settings).values())


def test_a_project_the_stack_file_does_not_set_comes_from_the_settings() -> None:
    from core.settings import load_settings

    settings = load_settings(env="local", project="acme")
    p = plan_for(settings)
    planned = {b.inputs["bucket"] for b in p.of_type("aws:s3/bucket:Bucket")}
    assert p.stack == "dev" and planned == {f"acme-dev-{z}" for z in ("logs", "bronze", "silver", "gold")}


def test_no_secret_value_reaches_any_input(plans: dict[str, Plan]) -> None:
    text = json.dumps([r.inputs for r in plans["prod"].resources]).lower()
    assert "postgresql+asyncpg://" not in text and '"password":' not in text


@pytest.mark.parametrize("env,stack", [("local", "dev"), ("prod", "prod")])
def test_plan_checks_say_their_evidence_is_a_mock_plan(plans: dict[str, Plan], tmp_path, env: str, stack: str) -> None:
    """The plan's own `plan:` checks, run as finks runs them (a child process per check)."""
    from finks.checks import CheckContext, run_check
    from finks.models import CheckSpec

    ctx = CheckContext(env=env, root=Path(__file__).resolve().parent.parent, state_dir=tmp_path, work_dir=tmp_path)
    for name in ("vpc_public_private_subnets", "security_group_chain", "nat_gateways"):
        result = run_check(CheckSpec(id=name.replace("_", "-"), plan=f"infra.criteria:{name}"), ctx)
        assert result.outcome == "passed" and result.grade == "planned", result.evidence.message
        assert result.evidence.message.startswith(f"planned (Pulumi mocks), stack {stack}")
    rds = run_check(CheckSpec(id="rds", plan="infra.criteria:rds_postgres_multi_az", args=(True,), stack="prod"), ctx)
    assert rds.outcome == "passed" and "multiAz=True" in rds.evidence.message


def test_the_dry_plan_is_kept_on_disk_and_follows_the_program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each check runs in its own process: a plan read back must equal a fresh one, and
    any change to what the plan depends on must miss the cache."""
    import json
    import re

    from infra import plan as plans

    monkeypatch.setenv("FINKS_STATE_DIR", str(tmp_path))
    path = plans._plan_cache_path("dev", "finks", "ca-central-1")
    fresh = plans.run_under_mocks(plans._program(), "dev", plans._config_values("dev", "finks", "ca-central-1"))
    plans._cached_plan.cache_clear()
    first = plans._cached_plan("dev", "finks", "ca-central-1")
    assert path.is_file()
    back = plans.Plan.from_dict(json.loads(path.read_text()))

    def rows(p: Plan) -> list[str]:  # registration order varies between runs; content does not
        text = (json.dumps(r.to_dict() | {"custom": r.custom}, sort_keys=True, default=str) for r in p.resources)
        return sorted(re.sub(r"<pulumi\.output\.Unknown object at 0x[0-9a-f]+>", "<unknown>", t) for t in text)

    assert rows(back) == rows(fresh) == rows(first)
    assert back.outputs == fresh.outputs
    assert plans._plan_cache_path("prod", "finks", "ca-central-1") != path
    assert plans._plan_cache_path("dev", "acme", "ca-central-1") != path
    plans._cached_plan.cache_clear()
