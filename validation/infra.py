"""Checks of the infrastructure sessions (S2, S3, S5–S7, S11, S21 and the infra
parts of S8, S9, S12, S13, S19, S20).

AWS environments (dev/staging/prod) assert on the dry plan of their own
stack; `local` has no AWS stack and asserts on the dev stack's plan. Either
way the Evidence says "planned (Pulumi mocks)": nothing here claims a
deployment except `stack_deployed`, which asks the real stack.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

from core.environments import infra_stack
from finks.checks import CheckContext, CheckFailed, Evidence

Criterion = Callable[..., tuple[str, dict[str, Any]]]


def _planned(ctx: CheckContext, criterion: Criterion, *args: Any) -> Evidence:
    from infra.criteria import NotMet
    from infra.plan import plan_for

    stack = infra_stack(ctx.env)
    label = f"planned (Pulumi mocks), stack {stack}"
    try:
        message, figures = criterion(plan_for(ctx.settings), *args)
    except NotMet as exc:
        raise CheckFailed(f"{label}: {exc}", figures={"stack": stack, **exc.figures}) from None
    except LookupError as exc:
        raise CheckFailed(f"{label}: {exc}", figures={"stack": stack}) from None
    return Evidence(f"{label}: {message}", figures={"stack": stack, **figures})


def _config(ctx: CheckContext) -> Any:
    from infra.config import for_settings

    return for_settings(ctx.settings)


# ---- S2 ----------------------------------------------------------------------
def program_previews(ctx: CheckContext) -> Evidence:
    """The program runs to completion for the stack; on AWS envs also a real `pulumi preview`."""
    from infra.plan import plan_for
    from infra.policies import check

    stack = infra_stack(ctx.env)
    p = plan_for(ctx.settings)
    figures: dict[str, Any] = {"stack": stack, "resources": len(p.custom), "violations": len(check(p))}
    if stack != ctx.env:  # local has no AWS stack to preview
        return Evidence(f"planned (Pulumi mocks), stack {stack}: program ran, {len(p.custom)} resources", figures)
    from infra import deploy

    result = deploy.preview(stack)  # raises DeployUnavailable (error, could not run) without CLI/credentials
    return Evidence(f"pulumi preview of {stack} succeeded: {result.changes}", {**figures, "changes": result.changes})


def components_have_unit_tests(ctx: CheckContext) -> Evidence:
    """Every component module is exercised by a test, and those tests pass."""
    components = sorted(
        p.stem for p in (ctx.root / "infra" / "components").glob("*.py") if p.stem not in ("__init__", "base")
    )
    tests = ctx.root / "tests" / "test_infra_components.py"
    if not tests.is_file():
        raise CheckFailed(f"{tests} is missing")
    text = tests.read_text()
    untested = [c for c in components if f"infra.components.{c}" not in text]
    if untested:
        raise CheckFailed(f"components without unit tests: {untested}", figures={"components": components})
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
        cwd=ctx.root, check=False, capture_output=True, text=True, timeout=540,
    )
    summary = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
    if proc.returncode != 0:
        raise CheckFailed(f"component tests fail: {summary}", excerpt=proc.stdout[-2000:])
    return Evidence(f"{len(components)} components, each unit-tested under Pulumi mocks: {summary}",
                    figures={"components": components})


def mypy_passes(ctx: CheckContext) -> Evidence:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "infra"], cwd=ctx.root, check=False, capture_output=True, text=True, timeout=570,
    )
    last = (proc.stdout.strip().splitlines() or [""])[-1]
    if proc.returncode != 0:
        raise CheckFailed(f"mypy infra: {last}", excerpt=proc.stdout[-2000:])
    return Evidence(f"mypy infra: {last}")


def _lint(ctx: CheckContext) -> str:
    """actionlint over the workflows; the tool's absence is reported, not hidden."""
    from core.errors import ServiceError
    from infra.workflows import actionlint

    try:
        problems = actionlint(ctx.root)
    except ServiceError as exc:
        return f"actionlint unavailable ({exc}); structure checked only"
    if problems:
        raise CheckFailed(f"actionlint: {len(problems)} problem(s): {problems[0]}", excerpt="\n".join(map(str, problems)))
    return "actionlint clean"


def _workflow(ctx: CheckContext, name: str) -> dict[str, Any]:
    from infra.workflows import load

    path = ctx.root / ".github" / "workflows" / name
    if not path.is_file():
        raise CheckFailed(f"{path} is missing")
    return load(path)


def ci_workflow_triggers_on_pr(ctx: CheckContext) -> Evidence:
    from infra.workflows import steps_text, triggers

    ci = _workflow(ctx, "ci.yml")
    if "pull_request" not in triggers(ci):
        raise CheckFailed("ci.yml does not trigger on pull_request")
    if not any("pytest" in steps_text(job) for job in ci["jobs"].values()):
        raise CheckFailed("ci.yml runs no pytest")
    infra = _workflow(ctx, "infra.yml")
    if "pull_request" not in triggers(infra):
        raise CheckFailed("infra.yml does not trigger on pull_request")
    lint = _lint(ctx)
    return Evidence(f"ci.yml and infra.yml trigger on pull_request (tests, dry plan, pulumi preview); {lint}")


# ---- S3 ----------------------------------------------------------------------
def vpc_public_private_subnets(ctx: CheckContext) -> Evidence:
    from infra import criteria

    return _planned(ctx, criteria.vpc_public_private_subnets)


def lake_buckets_configured(ctx: CheckContext) -> Evidence:
    from infra import criteria

    return _planned(ctx, criteria.lake_buckets_configured)


def secrets_manager_configured(ctx: CheckContext) -> Evidence:
    from infra import criteria

    return _planned(ctx, criteria.secrets_manager_configured)


def base_iam_roles(ctx: CheckContext) -> Evidence:
    from infra import criteria

    return _planned(ctx, criteria.base_iam_roles)


def stack_deployed(ctx: CheckContext) -> Evidence:
    """The real stack exists: its outputs name the buckets and S3 answers for them."""
    import botocore.exceptions

    from core.aws import client as aws_client
    from infra import deploy

    outputs = deploy.stack_outputs(ctx.env)  # DeployUnavailable: an error naming the missing CLI/credentials
    buckets = outputs.get("buckets") or {}
    if not buckets:
        raise CheckFailed(f"stack {ctx.env} has no outputs: not deployed", figures={"outputs": sorted(outputs)})
    s3 = aws_client(ctx.settings, "s3")
    missing = []
    for name in buckets.values():
        try:
            s3.head_bucket(Bucket=name)
        except botocore.exceptions.ClientError:
            missing.append(name)
    if missing:
        raise CheckFailed(f"stack {ctx.env}: buckets not reachable: {missing}")
    return Evidence(f"stack {ctx.env} deployed; buckets {sorted(buckets.values())} answer", figures={"outputs": sorted(outputs)})


def deploy_stack(ctx: CheckContext) -> str:
    """Task action for S3 on AWS environments: `pulumi up` of the env's stack."""
    from infra import deploy

    result = deploy.up(ctx.env)
    return f"pulumi up {ctx.env}: {result.changes}"


# ---- S5 ----------------------------------------------------------------------
def ecs_fargate_cluster(ctx: CheckContext) -> Evidence:
    from infra import criteria

    return _planned(ctx, criteria.ecs_fargate_cluster)


def ecs_task_definitions(ctx: CheckContext) -> Evidence:
    from infra import criteria

    return _planned(ctx, criteria.ecs_task_definitions)


def ecr_repositories(ctx: CheckContext) -> Evidence:
    from infra import criteria

    return _planned(ctx, criteria.ecr_repositories)


def log_groups_with_retention(ctx: CheckContext) -> Evidence:
    from infra import criteria

    return _planned(ctx, criteria.log_groups_with_retention)


# ---- S6 ----------------------------------------------------------------------
def rds_postgres_multi_az(ctx: CheckContext) -> Evidence:
    """Multi-AZ where the stack asks for it (staging, prod; prod's config cannot turn it off)."""
    from infra import criteria
    from infra.config import load

    cfg = _config(ctx)
    evidence = _planned(ctx, criteria.rds_postgres_multi_az, cfg.db_multi_az)
    if not cfg.db_multi_az:
        if not load("prod", settings=ctx.settings).db_multi_az:
            raise CheckFailed("prod stack is not Multi-AZ")
        evidence.message += f"; {cfg.env} is single-AZ by its config (cost), prod's config is Multi-AZ (enforced by validation)"
    return evidence


def security_group_chain(ctx: CheckContext) -> Evidence:
    from infra import criteria

    return _planned(ctx, criteria.security_group_chain)


def alb_https(ctx: CheckContext) -> Evidence:
    from infra import criteria

    return _planned(ctx, criteria.alb_https)


def nat_gateways(ctx: CheckContext) -> Evidence:
    from infra import criteria

    return _planned(ctx, criteria.nat_gateways, _config(ctx).nat_gateways == "per_az")


# ---- S7 ----------------------------------------------------------------------
def infra_workflow_stages(ctx: CheckContext) -> Evidence:
    from infra.workflows import steps_text, triggers

    wf = _workflow(ctx, "infra.yml")
    on = triggers(wf)
    jobs = wf["jobs"]
    if "pull_request" not in on or "main" not in on.get("push", {}).get("branches", []):
        raise CheckFailed("infra.yml must trigger on pull_request and on push to main", figures={"on": list(on)})
    if not on.get("push", {}).get("tags"):
        raise CheckFailed("infra.yml does not trigger on tags")

    def job_with(command: str, stack: str, condition: str) -> str:
        for name, job in jobs.items():
            text = steps_text(job)
            if f'"command": "{command}"' in text and f'"stack-name": "{stack}"' in text and condition in str(job.get("if", "")):
                return name
        raise CheckFailed(f"infra.yml has no job running pulumi {command} on {stack} when {condition}")

    preview = next((n for n, j in jobs.items() if '"command": "preview"' in steps_text(j) and "pull_request" in str(j.get("if", ""))), None)
    if preview is None:
        raise CheckFailed("infra.yml has no pulumi preview job for pull requests")
    staging = job_with("up", "staging", "refs/heads/main")
    prod = job_with("up", "prod", "refs/tags/")
    lint = _lint(ctx)
    return Evidence(f"infra.yml: {preview} on PR, {staging} on merge to main, {prod} on tags; {lint}",
                    figures={"jobs": sorted(jobs)})


def image_workflows(ctx: CheckContext) -> Evidence:
    from infra.workflows import steps_text, triggers

    ci = _workflow(ctx, "ci.yml")
    if "pull_request" not in triggers(ci) or not any("pytest" in steps_text(j) for j in ci["jobs"].values()):
        raise CheckFailed("no test workflow on pull requests")
    wf = _workflow(ctx, "images.yml")
    build = wf["jobs"].get("build", {})
    include = build.get("strategy", {}).get("matrix", {}).get("include", [])
    images = {i["image"]: i for i in include}
    for want in ("fmp-connector", "dbt", "prefect"):
        if want not in images:
            raise CheckFailed(f"images.yml does not build {want}", figures={"images": sorted(images)})
    if "docker/build-push-action" not in steps_text(build) or "amazon-ecr-login" not in steps_text(build):
        raise CheckFailed("images.yml does not build and push to ECR")
    missing = [i["dockerfile"] for i in include if not (ctx.root / i["dockerfile"]).is_file()]
    if missing:
        raise CheckFailed(f"Dockerfiles the image workflow builds are missing: {missing}", figures={"images": sorted(images)})
    lint = _lint(ctx)
    return Evidence(f"tests on PR (ci.yml); images.yml builds and pushes {sorted(images)} to ECR; {lint}",
                    figures={"images": sorted(images)})


def status_badges(ctx: CheckContext) -> Evidence:
    readme = ctx.root / "README.md"
    if not readme.is_file():
        raise CheckFailed("README.md is missing")
    text = readme.read_text()
    workflows = sorted(p.name for p in (ctx.root / ".github" / "workflows").glob("*.yml"))
    missing = [w for w in workflows if f"actions/workflows/{w}/badge.svg" not in text]
    if missing:
        raise CheckFailed(f"README.md has no status badge for {missing}", figures={"workflows": workflows})
    return Evidence(f"README.md shows badges for {workflows}", figures={"workflows": workflows})


# ---- S8 / S9 -----------------------------------------------------------------
def prefect_behind_https_alb(ctx: CheckContext) -> Evidence:
    from infra import criteria

    return _planned(ctx, criteria.prefect_behind_https_alb)


def prefect_service_resilient(ctx: CheckContext) -> Evidence:
    from infra import criteria

    return _planned(ctx, criteria.prefect_service_resilient)


def prefect_logs_to_cloudwatch(ctx: CheckContext) -> Evidence:
    from infra import criteria

    return _planned(ctx, criteria.prefect_logs_to_cloudwatch)


def prefect_worker_service(ctx: CheckContext) -> Evidence:
    from infra import criteria

    return _planned(ctx, criteria.prefect_worker_service)


# ---- S11 / S20 ---------------------------------------------------------------
def monitoring_dashboard(ctx: CheckContext) -> Evidence:
    from infra import criteria

    return _planned(ctx, criteria.monitoring_dashboard)


def monitoring_alarms(ctx: CheckContext) -> Evidence:
    from infra import criteria

    return _planned(ctx, criteria.monitoring_alarms)


def alerts_topic(ctx: CheckContext) -> Evidence:
    from infra import criteria

    return _planned(ctx, criteria.alerts_topic)


def pipeline_dashboard_and_alerting(ctx: CheckContext) -> Evidence:
    from infra import criteria

    return _planned(ctx, criteria.pipeline_dashboard_and_alerting)


# ---- S12 / S13 / S19 ---------------------------------------------------------
def dbt_task_definition(ctx: CheckContext) -> Evidence:
    from infra import criteria

    return _planned(ctx, criteria.dbt_task_definition)


def glue_job_and_catalog(ctx: CheckContext) -> Evidence:
    from infra import criteria

    return _planned(ctx, criteria.glue_job_and_catalog, ctx.root)


def api_gateway_lambda(ctx: CheckContext) -> Evidence:
    from infra import criteria

    return _planned(ctx, criteria.api_gateway_lambda)


# ---- S21 ---------------------------------------------------------------------
def security_hardening(ctx: CheckContext) -> Evidence:
    from infra import criteria

    return _planned(ctx, criteria.security_hardening)


def policy_scan_clean(ctx: CheckContext) -> Evidence:
    from infra.plan import plan_for
    from infra.policies import RULES, check

    stack = infra_stack(ctx.env)
    p = plan_for(ctx.settings)
    violations = check(p)
    label = f"planned (Pulumi mocks), stack {stack}"
    if violations:
        raise CheckFailed(f"{label}: {len(violations)} policy violation(s)", figures={"violations": [str(v) for v in violations]},
                          excerpt="\n".join(map(str, violations)))
    return Evidence(f"{label}: {len(RULES)} policy rules, {len(p.custom)} resources, no violation",
                    figures={"stack": stack, "rules": list(RULES), "resources": len(p.custom)})
