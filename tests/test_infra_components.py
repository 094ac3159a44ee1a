"""Each component alone under Pulumi's mocks: its resources, names and parentage."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pulumi
import pytest

from infra.components.api import Api, ApiArgs
from infra.components.base import Common
from infra.components.database import Database, DatabaseArgs
from infra.components.ecs import Ecs, EcsArgs
from infra.components.glue import Glue, GlueArgs
from infra.components.iam import Iam, IamArgs
from infra.components.monitoring import Monitoring, MonitoringArgs
from infra.components.networking import Networking, NetworkingArgs, carve
from infra.components.pagerduty import PagerDutyArgs
from infra.components.prefect_server import PrefectServer, PrefectServerArgs
from infra.components.secrets import Secrets, SecretsArgs
from infra.components.security import Security, SecurityArgs
from infra.components.storage import Storage, StorageArgs
from infra.plan import Plan, run_under_mocks

COMMON = Common(env="dev", region="ca-central-1", prefix="finks-dev", tags={"Project": "finks", "Environment": "dev", "ManagedBy": "pulumi"})
ARN = "arn:aws:kms:ca-central-1:123456789012:key/k"
ROOT = Path(__file__).resolve().parent.parent

# pulumi_aws warns about its own deprecated aliases when a module is imported.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_aws")


def _out(value: str) -> pulumi.Output[str]:
    return pulumi.Output.from_input(value)


def _buckets() -> dict[str, pulumi.Output[str]]:
    return {z: _out(f"finks-dev-{z}") for z in ("logs", "bronze", "silver", "gold")}


def _run(build: Callable[[], object]) -> Plan:
    return run_under_mocks(build, "dev", config={})


def _assert_owned(plan: Plan, component: str, kind: str) -> None:
    """Every child is parented to the component and named after it."""
    (root,) = [r for r in plan.resources if r.type == f"finks:infra:{kind}"]
    assert root.name == component
    children = plan.custom
    assert children, "component created nothing"
    for r in children:
        assert r.parent == component, f"{r.name} parent {r.parent!r}"
        assert r.name.startswith(f"{component}-"), r.name


def test_carve_gives_disjoint_public_and_private_blocks() -> None:
    public, private = carve("10.0.0.0/16", 3)
    assert public == ["10.0.0.0/20", "10.0.16.0/20", "10.0.32.0/20"]
    assert private[0] == "10.0.128.0/20" and not set(public) & set(private)


@pytest.mark.parametrize("per_az,nats", [(False, 1), (True, 3)])
def test_networking_nat_count_follows_config(per_az: bool, nats: int) -> None:
    zones = ["ca-central-1a", "ca-central-1b", "ca-central-1d"]
    plan = _run(lambda: Networking("net", NetworkingArgs(COMMON, "10.0.0.0/16", zones, nat_per_az=per_az)))
    _assert_owned(plan, "net", "Networking")
    assert len(plan.of_type("aws:ec2/natGateway:NatGateway")) == nats
    assert len(plan.of_type("aws:ec2/subnet:Subnet")) == 6
    endpoints = sorted(e.inputs["serviceName"] for e in plan.of_type("aws:ec2/vpcEndpoint:VpcEndpoint"))
    assert endpoints == sorted(f"com.amazonaws.ca-central-1.{s}" for s in ("s3", "secretsmanager", "ecr.api", "ecr.dkr", "logs"))
    # Private route tables send 0.0.0.0/0 through a NAT gateway, never the IGW.
    private_rts = plan.named("aws:ec2/routeTable:RouteTable", "private-rt")
    assert len(private_rts) == 3 and all(rt.inputs["routes"][0].get("natGatewayId") for rt in private_rts)


def test_storage_buckets_are_versioned_encrypted_private_and_logged() -> None:
    plan = _run(lambda: Storage("st", StorageArgs(COMMON)))
    _assert_owned(plan, "st", "Storage")
    names = sorted(b.inputs["bucket"] for b in plan.of_type("aws:s3/bucket:Bucket"))
    assert names == ["finks-dev-bronze", "finks-dev-gold", "finks-dev-logs", "finks-dev-silver"]
    assert len(plan.of_type("aws:s3/bucketVersioning:BucketVersioning")) == 4
    assert len(plan.of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")) == 4
    logging = {r.inputs["targetPrefix"] for r in plan.of_type("aws:s3/bucketLogging:BucketLogging")}
    assert logging == {"s3-access/bronze/", "s3-access/silver/", "s3-access/gold/"}
    sse = {r.name: r.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] for r in plan.of_type("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")}
    # Access-log targets cannot be SSE-KMS; the lake can.
    assert sse == {"st-logs-sse": "AES256", "st-bronze-sse": "aws:kms", "st-silver-sse": "aws:kms", "st-gold-sse": "aws:kms"}
    bronze = plan.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "bronze")
    classes = [t["storageClass"] for r in bronze.inputs["rules"] for t in r.get("transitions", [])]
    assert classes == ["STANDARD_IA", "GLACIER_IR"]
    for policy in plan.of_type("aws:s3/bucketPolicy:BucketPolicy"):
        deny = json.loads(policy.inputs["policy"])["Statement"][0]
        assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_secrets_holds_the_fmp_secret_but_no_value() -> None:
    plan = _run(lambda: Secrets("sec", SecretsArgs(COMMON, kms_key_arn=ARN)))
    _assert_owned(plan, "sec", "Secrets")
    secret = plan.one("aws:secretsmanager/secret:Secret")
    assert secret.inputs["name"] == "finks/dev/fmp-api-key" and secret.inputs["kmsKeyId"] == ARN
    assert not plan.of_type("aws:secretsmanager/secretVersion:SecretVersion")


def test_iam_roles_trust_their_service_and_never_grant_star_on_star() -> None:
    plan = _run(lambda: Iam("iam", IamArgs(COMMON, _buckets(), kms_key_arn=ARN, fmp_secret_arn="arn:fmp")))
    _assert_owned(plan, "iam", "Iam")
    trust = {r.inputs["name"]: json.loads(r.inputs["assumeRolePolicy"])["Statement"][0]["Principal"]["Service"] for r in plan.of_type("aws:iam/role:Role")}
    assert trust["finks-dev-glue"] == "glue.amazonaws.com" and trust["finks-dev-api-lambda"] == "lambda.amazonaws.com"
    for pol in plan.of_type("aws:iam/rolePolicy:RolePolicy"):
        for st in json.loads(pol.inputs["policy"])["Statement"]:
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            assert "*" not in actions and not (any(a.endswith(":*") for a in actions) and st["Resource"] == "*"), (pol.name, st)
    # The Lambda reads gold only: no write to the lake.
    lam = plan.one("aws:iam/rolePolicy:RolePolicy", "api-lambda")
    assert "finks-dev-gold" in lam.inputs["policy"] and "finks-dev-bronze" not in lam.inputs["policy"]


def test_iam_lets_the_pipeline_task_write_traces_to_xray() -> None:
    plan = _run(lambda: Iam("iam", IamArgs(COMMON, _buckets(), kms_key_arn=ARN, fmp_secret_arn="arn:fmp")))
    xray = [r for r in plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
            if r.inputs["policyArn"].endswith("/AWSXRayDaemonWriteAccess")]
    assert sorted(r.name for r in xray) == ["iam-api-lambda-xray", "iam-pipeline-task-xray"]


def _database(multi_az: bool) -> Database:
    return Database("db", DatabaseArgs(COMMON, vpc_id="vpc-1", private_subnet_ids=[_out("s-1"), _out("s-2")], kms_key_arn=ARN,
                                       instance_class="db.t4g.micro", allocated_storage_gb=20, multi_az=multi_az,
                                       backup_retention_days=7, deletion_protection=multi_az))


@pytest.mark.parametrize("multi_az", [False, True])
def test_database_is_private_encrypted_with_managed_password(multi_az: bool) -> None:
    plan = _run(lambda: _database(multi_az))
    _assert_owned(plan, "db", "Database")
    i = plan.one("aws:rds/instance:Instance").inputs
    assert i["multiAz"] is multi_az and i["publiclyAccessible"] is False and i["storageEncrypted"] is True
    assert i["manageMasterUserPassword"] is True and "password" not in i
    assert i["deletionProtection"] is multi_az and i["skipFinalSnapshot"] is (not multi_az)


def _ecs() -> Ecs:
    import pulumi_aws as aws

    execution = aws.iam.Role("exec", assume_role_policy="{}")
    return Ecs("ecs", EcsArgs(COMMON, image_tag="v1", log_retention_days=30, execution_role=execution, task_role_arn="arn:task",
                              prefect_server_role_arn="arn:server", prefect_worker_role_arn="arn:worker", kms_key_arn=ARN,
                              fmp_secret_arn="arn:fmp", db_address="db.host", db_secret_arn="arn:db",
                              prefect_api_url="https://prefect.x/api", work_pool="finks-dev-ecs", vpc_id="vpc-1",
                              private_subnet_ids=[_out("s-1"), _out("s-2")]))


def test_ecs_defines_the_five_fargate_tasks_with_logs_and_no_plain_password() -> None:
    plan = _run(_ecs)
    families = sorted(t.inputs["family"] for t in plan.of_type("aws:ecs/taskDefinition:TaskDefinition"))
    assert families == sorted(f"finks-dev-{n}" for n in ("prefect-server", "prefect-worker", "worker", "fmp-connector", "dbt"))
    groups = {g.inputs["name"]: g.inputs["retentionInDays"] for g in plan.of_type("aws:cloudwatch/logGroup:LogGroup")}
    assert all(days == 30 for days in groups.values())
    server = json.loads(plan.one("aws:ecs/taskDefinition:TaskDefinition", "prefect-server").inputs["containerDefinitions"])[0]
    assert {s["name"]: s["valueFrom"] for s in server["secrets"]}["PREFECT_SERVER_DATABASE_PASSWORD"] == "arn:db:password::"
    assert {e["name"]: e["value"] for e in server["environment"]}["PREFECT_SERVER_DATABASE_DRIVER"] == "postgresql+asyncpg"
    assert server["logConfiguration"]["options"]["awslogs-group"] in groups
    worker = json.loads(plan.one("aws:ecs/taskDefinition:TaskDefinition", "ecs-task-worker").inputs["containerDefinitions"])[0]
    env = {e["name"]: e["value"] for e in worker["environment"]}
    assert env["FINKS_ECS_SUBNETS"] == "s-1,s-2" and env["FINKS_ECS_SECURITY_GROUPS"] == "ecs-tasks-sg-id"
    assert plan.one("aws:ecs/cluster:Cluster").inputs["name"] == "finks-dev"
    ecs_children = [r for r in plan.custom if r.name.startswith("ecs-")]
    assert ecs_children and all(r.parent == "ecs" for r in ecs_children)


def test_the_flow_run_task_carries_the_adot_collector_and_sends_it_spans() -> None:
    import yaml

    plan = _run(_ecs)
    worker, collector = json.loads(plan.one("aws:ecs/taskDefinition:TaskDefinition", "ecs-task-worker").inputs["containerDefinitions"])
    assert worker["essential"] is True and collector["name"] == "aws-otel-collector" and collector["essential"] is False
    assert collector["image"].startswith("public.ecr.aws/aws-observability/aws-otel-collector:v")
    assert {e["name"]: e["value"] for e in worker["environment"]}["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://localhost:4318"
    assert worker["dependsOn"] == [{"containerName": "aws-otel-collector", "condition": "START"}]
    config = yaml.safe_load({e["name"]: e["value"] for e in collector["environment"]}["AOT_CONFIG_CONTENT"])
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    assert config["service"]["pipelines"]["traces"] == {"receivers": ["otlp"], "processors": ["batch/traces"], "exporters": ["awsxray"]}
    assert config["exporters"]["awsxray"]["region"] == "ca-central-1"
    assert collector["logConfiguration"]["options"]["awslogs-group"] == worker["logConfiguration"]["options"]["awslogs-group"]
    # Only the flow-run task is traced: the connector and dbt tasks keep one container.
    for task in ("fmp-connector", "dbt", "prefect-server"):
        assert len(json.loads(plan.one("aws:ecs/taskDefinition:TaskDefinition", f"ecs-task-{task}").inputs["containerDefinitions"])) == 1


def _prefect(hosted_zone: str | None) -> PrefectServer:
    return PrefectServer("pf", PrefectServerArgs(
        COMMON, vpc_id="vpc-1", public_subnet_ids=[_out("pub-1")], private_subnet_ids=[_out("priv-1")],
        db_security_group_id="db-sg", cluster_arn="arn:cluster", server_task_definition_arn="arn:td-server",
        worker_task_definition_arn="arn:td-worker", tasks_security_group_id="tasks-sg", domain="prefect.example.com", logs_bucket="finks-dev-logs",
        hosted_zone_id=hosted_zone))


def test_prefect_server_sits_behind_https_with_the_sg_chain() -> None:
    plan = _run(lambda: _prefect(None))
    _assert_owned(plan, "pf", "PrefectServer")
    https = next(li for li in plan.of_type("aws:lb/listener:Listener") if li.inputs["protocol"] == "HTTPS")
    assert https.inputs["port"] == 443 and https.inputs["certificateArn"]
    assert plan.one("aws:lb/targetGroup:TargetGroup").inputs["healthCheck"]["path"] == "/api/health"
    db_rule = plan.one("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "db-in")
    assert db_rule.inputs["securityGroupId"] == "db-sg" and db_rule.inputs["referencedSecurityGroupId"] == "pf-service-sg-id"
    assert not plan.of_type("aws:route53/record:Record")


def test_prefect_server_validates_the_certificate_when_a_zone_is_given() -> None:
    plan = _run(lambda: _prefect("Z123"))
    assert len(plan.of_type("aws:route53/record:Record")) == 2
    plan.one("aws:acm/certificateValidation:CertificateValidation")


def test_glue_uploads_the_script_and_runs_it() -> None:
    plan = _run(lambda: Glue("glue", GlueArgs(COMMON, role_arn="arn:glue", buckets=_buckets(), kms_key_arn=ARN, repo_root=ROOT)))
    _assert_owned(plan, "glue", "Glue")
    obj = plan.one("aws:s3/bucketObjectv2:BucketObjectv2")
    assert obj.inputs["source"]["path"] == str(ROOT / "jobs" / "glue_bronze_to_silver.py")
    job = plan.one("aws:glue/job:Job")
    assert job.inputs["command"]["scriptLocation"] == f"s3://finks-dev-logs/{obj.inputs['key']}"
    assert sorted(t.inputs["name"] for t in plan.of_type("aws:glue/catalogTable:CatalogTable")) == ["silver_eod_prices", "silver_profiles", "silver_quotes"]


def test_api_requires_a_key_on_every_method() -> None:
    plan = _run(lambda: Api("api", ApiArgs(COMMON, role_arn="arn:role", image_uri="repo:v1", handler="api.lambda_handler.handler",
                                           logs_bucket="finks-dev-logs", glue_database="finks_dev", log_retention_days=30)))
    _assert_owned(plan, "api", "Api")
    assert all(m.inputs["apiKeyRequired"] for m in plan.of_type("aws:apigateway/method:Method"))
    plan.one("aws:apigateway/usagePlanKey:UsagePlanKey")
    assert plan.one("aws:lambda/function:Function").inputs["imageConfig"]["commands"] == ["api.lambda_handler.handler"]


def test_monitoring_alarms_all_notify_the_topic() -> None:
    plan = _run(lambda: Monitoring("mon", MonitoringArgs(
        COMMON, cluster_name="c", cluster_arn="arn:c", server_service_name="s", db_identifier="db", db_max_connections=100,
        alb_arn_suffix="app/x/1", buckets=_buckets(), api_name="api", function_name="fn", glue_job_name="job",
        alert_email="ops@example.com")))
    _assert_owned(plan, "mon", "Monitoring")
    topic_arn = "arn:aws:sns:ca-central-1:123456789012:mon-alerts"
    alarms = plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert alarms and all(a.inputs["alarmActions"] == [topic_arn] for a in alarms)
    rds = plan.one("aws:cloudwatch/metricAlarm:MetricAlarm", "rds-connections")
    assert rds.inputs["threshold"] == 80
    plan.one("aws:sns/topicSubscription:TopicSubscription")


@pytest.mark.parametrize("key", [None, "the-integration-key"])
def test_monitoring_pages_pagerduty_only_with_a_key_and_always_declares_its_secret(key: str | None) -> None:
    plan = _run(lambda: Monitoring("mon", MonitoringArgs(
        COMMON, cluster_name="c", cluster_arn="arn:c", server_service_name="s", db_identifier="db", db_max_connections=100,
        alb_arn_suffix="app/x/1", buckets=_buckets(), api_name="api", function_name="fn", glue_job_name="job",
        pagerduty=PagerDutyArgs(ARN, key))))
    secret = plan.one("aws:secretsmanager/secret:Secret", "pagerduty-key").inputs
    assert secret["name"] == "finks/dev/pagerduty-integration-key" and secret["kmsKeyId"] == ARN
    subs = plan.of_type("aws:sns/topicSubscription:TopicSubscription")
    if key is None:
        assert subs == []
        return
    (sub,) = subs
    assert sub.inputs["protocol"] == "https" and sub.inputs["endpointAutoConfirms"] is True
    assert sub.inputs["endpoint"] == "https://events.pagerduty.com/integration/the-integration-key/enqueue"


def test_security_enables_guardduty_config_and_cloudtrail() -> None:
    plan = _run(lambda: Security("sec", SecurityArgs(COMMON, logs_bucket="finks-dev-logs", lake_bucket_arns=[_out("arn:aws:s3:::b")], multi_az_db=False)))
    _assert_owned(plan, "sec", "Security")
    assert plan.one("aws:guardduty/detector:Detector").inputs["enable"] is True
    rules = {r.inputs["source"]["sourceIdentifier"] for r in plan.of_type("aws:cfg/rule:Rule")}
    assert {"S3_BUCKET_SSL_REQUESTS_ONLY", "RDS_INSTANCE_PUBLIC_ACCESS_CHECK"} <= rules and "RDS_MULTI_AZ_SUPPORT" not in rules
    assert plan.one("aws:cloudtrail/trail:Trail").inputs["enableLogFileValidation"] is True


def test_a_plan_runs_on_a_loop_of_its_own_and_leaves_the_callers_current() -> None:
    """Pulumi waits for every task of the loop it runs on: a task some earlier code left pending
    on the thread's loop must not be waited for, and the caller's loop is current again after."""
    import asyncio
    import threading

    seen: list[asyncio.AbstractEventLoop] = []
    try:
        before: asyncio.AbstractEventLoop | None = asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:                              # an asyncio.run() before left none current
        before = None
    caller = asyncio.new_event_loop()
    asyncio.set_event_loop(caller)
    try:
        caller.create_task(asyncio.sleep(3600))       # pending for ever on the caller's loop
        plan = _run(lambda: (seen.append(asyncio.get_event_loop()), Storage("st", StorageArgs(COMMON))))
        assert plan.resources and seen[0] is not caller and seen[0].is_closed()
        assert asyncio.get_event_loop() is caller
    finally:
        for task in asyncio.all_tasks(caller):
            task.cancel()
        caller.run_until_complete(asyncio.sleep(0))
        caller.close()
        asyncio.set_event_loop(before)

    from_thread: list[int] = []                        # a thread with no loop of its own plans too
    worker = threading.Thread(target=lambda: from_thread.append(len(_run(lambda: _out("x")).resources)))
    worker.start()
    worker.join(60)
    assert from_thread == [0]
