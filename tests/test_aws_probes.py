"""The live probes (validation/aws/) on a "deployed" moto stack: each passes on the healthy
stack and fails, naming the resource, when exactly one thing is broken."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from finks.checks import CheckContext, CheckFailed, CheckSkipped
from validation.aws import database, ecs, iam, monitoring, network, security, storage

if TYPE_CHECKING:
    from tests.fixtures.deployed import Deployed

# The deployed_dev / deployed_prod / emulator fixtures (only these tests need them).
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_aws")


def _planned(d: Deployed, type_: str, contains: str) -> str:
    """The name of the one planned resource of ``type_`` whose name contains ``contains``."""
    return str(d.stack.seeded.plan.one(type_, contains).name)


# ---- the healthy stack --------------------------------------------------------------------
PROBES = [
    network.vpc_public_private_subnets, network.nat_gateways_available, network.security_group_chain,
    network.vpc_endpoints, storage.buckets_configured, storage.secret_exists, iam.roles_and_policies,
    ecs.fargate_cluster, ecs.task_definitions, ecs.ecr_repositories, ecs.log_groups_receive_events,
    database.rds_postgres, monitoring.dashboards, monitoring.alarms_wired, monitoring.alerts_topic_subscribed,
    monitoring.custom_metrics_datapoints, monitoring.pipeline_dashboard, security.guardduty_enabled,
    security.config_recording,
]


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: f"{p.__module__.rsplit('.', 1)[-1]}:{p.__name__}")
def test_probe_passes_on_the_deployed_dev_stack(deployed_dev: Deployed, probe) -> None:  # type: ignore[no-untyped-def]
    evidence = probe(deployed_dev.ctx())
    assert evidence.figures["endpoint"] == deployed_dev.url
    assert evidence.figures["found_by"].startswith("stack outputs")


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: f"{p.__module__.rsplit('.', 1)[-1]}:{p.__name__}")
def test_probe_finds_the_stack_by_its_tags_without_recorded_outputs(deployed_dev: Deployed, probe,  # type: ignore[no-untyped-def]
                                                                    tmp_path: Path) -> None:
    evidence = probe(deployed_dev.ctx(tmp_path / "no-outputs"))
    assert evidence.figures["found_by"] == "tags Project=finks, Environment=dev"


@pytest.mark.parametrize("probe", [network.nat_gateways_available, database.rds_postgres, network.vpc_public_private_subnets],
                         ids=lambda p: p.__name__)
def test_probe_passes_on_the_deployed_prod_stack(deployed_prod: Deployed, probe) -> None:  # type: ignore[no-untyped-def]
    probe(deployed_prod.ctx())


def test_probes_say_what_the_emulator_cannot_show(deployed_prod: Deployed) -> None:
    evidence = database.rds_postgres(deployed_prod.ctx())
    assert evidence.figures["multi_az"] is True
    assert "no standby runs" in evidence.message and evidence.figures["emulator_limits"]


def test_probes_skip_on_local(tmp_path: Path) -> None:
    from core.paths import REPO_ROOT

    with pytest.raises(CheckSkipped, match="local has no AWS stack"):
        storage.buckets_configured(CheckContext("local", REPO_ROOT, tmp_path, tmp_path / "w"))


@pytest.mark.check_fails("validation.aws.network:vpc_public_private_subnets")
@pytest.mark.check_fails("validation.aws.storage:buckets_configured")
def test_probes_on_an_account_where_nothing_is_deployed_say_to_deploy(emulator: str, tmp_path: Path) -> None:
    from core.paths import REPO_ROOT

    ctx = CheckContext("dev", REPO_ROOT, tmp_path, tmp_path / "w")
    with pytest.raises(CheckFailed, match=r"no VPC on dev: no stack outputs .* nothing tagged Project=finks, "
                                          r"Environment=dev; run `finks infra up --env dev --yes`"):
        network.vpc_public_private_subnets(ctx)
    with pytest.raises(CheckFailed, match="no buckets on dev"):
        storage.buckets_configured(ctx)


# ---- S3 ------------------------------------------------------------------------------------
@pytest.mark.check_fails("validation.aws.network:vpc_public_private_subnets")
def test_subnets_probe_fails_when_a_private_subnet_routes_to_the_internet_gateway(deployed_dev: Deployed) -> None:
    ec2 = deployed_dev.client("ec2")
    vpc = deployed_dev.outputs["vpc_id"]
    private_b = next(s for s in network.subnets(_live(deployed_dev), vpc) if s.tier == "private" and s.zone.endswith("b"))
    igw = ec2.describe_internet_gateways()["InternetGateways"][0]["InternetGatewayId"]
    deployed_dev.undo(lambda: ec2.replace_route(RouteTableId=private_b.route_table, DestinationCidrBlock="0.0.0.0/0",
                                                NatGatewayId=private_b.target))
    ec2.replace_route(RouteTableId=private_b.route_table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    with pytest.raises(CheckFailed, match=r"ca-central-1b has no private subnet .*finks infra up --env dev") as exc:
        network.vpc_public_private_subnets(deployed_dev.ctx())
    assert exc.value.evidence.figures["problems"] == [
        f"VPC {vpc}: ca-central-1b has no private subnet (one whose 0.0.0.0/0 route goes to a NAT gateway)"]


@pytest.mark.check_fails("validation.aws.storage:buckets_configured")
def test_buckets_probe_fails_on_a_bucket_without_versioning(deployed_dev: Deployed) -> None:
    s3 = deployed_dev.client("s3")
    bronze = deployed_dev.outputs["buckets"]["bronze"]
    deployed_dev.undo(lambda: s3.put_bucket_versioning(Bucket=bronze, VersioningConfiguration={"Status": "Enabled"}))
    s3.put_bucket_versioning(Bucket=bronze, VersioningConfiguration={"Status": "Suspended"})
    with pytest.raises(CheckFailed, match=r"^bucket finks-dev-bronze \(bronze\): versioning is Suspended, not Enabled") as exc:
        storage.buckets_configured(deployed_dev.ctx())
    assert len(exc.value.evidence.figures["problems"]) == 1


@pytest.mark.check_fails("validation.aws.storage:buckets_configured")
def test_buckets_probe_fails_on_a_lake_bucket_without_access_logs(deployed_dev: Deployed) -> None:
    s3 = deployed_dev.client("s3")
    gold = deployed_dev.outputs["buckets"]["gold"]
    deployed_dev.undo(deployed_dev.again(_planned(deployed_dev, "aws:s3/bucketLogging:BucketLogging", "gold")))
    s3.put_bucket_logging(Bucket=gold, BucketLoggingStatus={})
    with pytest.raises(CheckFailed, match=r"^bucket finks-dev-gold \(gold\) has no access logging;"):
        storage.buckets_configured(deployed_dev.ctx())


@pytest.mark.check_fails("validation.aws.storage:secret_exists")
def test_secret_probe_fails_when_the_secret_is_scheduled_for_deletion(deployed_dev: Deployed) -> None:
    sm = deployed_dev.client("secretsmanager")
    name = deployed_dev.outputs["fmp_secret_name"]
    deployed_dev.undo(lambda: sm.restore_secret(SecretId=name))
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    with pytest.raises(CheckFailed, match="secret finks/dev/fmp-api-key is scheduled for deletion"):
        storage.secret_exists(deployed_dev.ctx())


@pytest.mark.check_fails("validation.aws.iam:roles_and_policies")
def test_iam_probe_fails_when_the_execution_role_loses_its_managed_policy(deployed_dev: Deployed) -> None:
    client = deployed_dev.client("iam")
    role = deployed_dev.outputs["iam_roles"]["ecs-execution"]
    arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
    deployed_dev.undo(lambda: client.attach_role_policy(RoleName=role, PolicyArn=arn))
    client.detach_role_policy(RoleName=role, PolicyArn=arn)
    with pytest.raises(CheckFailed, match="role finks-dev-ecs-execution lacks managed policy AmazonECSTaskExecutionRolePolicy"):
        iam.roles_and_policies(deployed_dev.ctx())


@pytest.mark.check_fails("validation.aws.iam:roles_and_policies")
def test_iam_probe_fails_on_an_admin_policy_attached_by_hand(deployed_dev: Deployed) -> None:
    client = deployed_dev.client("iam")
    role = deployed_dev.outputs["iam_roles"]["pipeline-task"]
    arn = "arn:aws:iam::aws:policy/AdministratorAccess"
    deployed_dev.undo(lambda: client.detach_role_policy(RoleName=role, PolicyArn=arn))
    client.attach_role_policy(RoleName=role, PolicyArn=arn)
    with pytest.raises(CheckFailed, match="role finks-dev-pipeline-task has admin policy AdministratorAccess attached"):
        iam.roles_and_policies(deployed_dev.ctx())


# ---- S5 ------------------------------------------------------------------------------------
@pytest.mark.check_fails("validation.aws.ecs:fargate_cluster")
def test_cluster_probe_fails_without_the_fargate_capacity_provider(deployed_dev: Deployed) -> None:
    client = deployed_dev.client("ecs")
    cluster = deployed_dev.outputs["ecs_cluster_name"]
    deployed_dev.undo(lambda: client.put_cluster_capacity_providers(
        cluster=cluster, capacityProviders=["FARGATE", "FARGATE_SPOT"],
        defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1, "base": 1}]))
    client.put_cluster_capacity_providers(cluster=cluster, capacityProviders=["FARGATE_SPOT"],
                                          defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}])
    with pytest.raises(CheckFailed, match="ECS cluster finks-dev does not offer the FARGATE capacity provider"):
        ecs.fargate_cluster(deployed_dev.ctx())


@pytest.mark.check_fails("validation.aws.ecs:task_definitions")
def test_task_definitions_probe_fails_when_a_family_has_no_active_revision(deployed_dev: Deployed) -> None:
    client = deployed_dev.client("ecs")
    family = deployed_dev.outputs["ecs_task_families"]["worker"]
    current = client.describe_task_definition(taskDefinition=family)["taskDefinition"]["taskDefinitionArn"]
    deployed_dev.undo(deployed_dev.again(_planned(deployed_dev, "aws:ecs/taskDefinition:TaskDefinition", "task-worker")))
    client.deregister_task_definition(taskDefinition=current)
    with pytest.raises(CheckFailed, match="task family finks-dev-worker has no ACTIVE revision"):
        ecs.task_definitions(deployed_dev.ctx())


@pytest.mark.check_fails("validation.aws.ecs:ecr_repositories")
def test_ecr_probe_fails_on_a_repository_with_mutable_tags(deployed_dev: Deployed) -> None:
    client = deployed_dev.client("ecr")
    deployed_dev.undo(lambda: client.put_image_tag_mutability(repositoryName="finks-dev/prefect",
                                                              imageTagMutability="IMMUTABLE"))
    client.put_image_tag_mutability(repositoryName="finks-dev/prefect", imageTagMutability="MUTABLE")
    with pytest.raises(CheckFailed, match=r"ECR repository finks-dev/prefect lets a tag be pushed over \(MUTABLE\)"):
        ecs.ecr_repositories(deployed_dev.ctx())


@pytest.mark.check_fails("validation.aws.ecs:log_groups_receive_events")
def test_log_groups_probe_fails_on_an_empty_log_group(deployed_dev: Deployed) -> None:
    logs = deployed_dev.client("logs")
    group = deployed_dev.outputs["log_groups"]["prefect-worker"]
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]

    def refill() -> None:
        for s in streams:
            logs.create_log_stream(logGroupName=group, logStreamName=s["logStreamName"])
            logs.put_log_events(logGroupName=group, logStreamName=s["logStreamName"],
                                logEvents=[{"timestamp": int(time.time() * 1000), "message": "worker started"}])

    deployed_dev.undo(refill)
    for s in streams:
        logs.delete_log_stream(logGroupName=group, logStreamName=s["logStreamName"])
    with pytest.raises(CheckFailed, match=r"log group /finks/dev/ecs/prefect-worker \(prefect-worker\) received no event "
                                          r"in 7 days: .* start the task"):
        ecs.log_groups_receive_events(deployed_dev.ctx())


# ---- S6 ------------------------------------------------------------------------------------
@pytest.mark.check_fails("validation.aws.database:rds_postgres")
def test_rds_probe_fails_on_a_single_az_database_in_prod(deployed_prod: Deployed) -> None:
    rds = deployed_prod.client("rds")
    ident = deployed_prod.outputs["db_identifier"]
    deployed_prod.undo(lambda: rds.modify_db_instance(DBInstanceIdentifier=ident, MultiAZ=True, ApplyImmediately=True))
    rds.modify_db_instance(DBInstanceIdentifier=ident, MultiAZ=False, ApplyImmediately=True)
    with pytest.raises(CheckFailed, match=r"RDS instance finks-prod-prefect is single-AZ: prod wants Multi-AZ") as exc:
        database.rds_postgres(deployed_prod.ctx())
    assert len(exc.value.evidence.figures["problems"]) == 1


def test_rds_probe_accepts_dev_single_az_by_its_stack_file(deployed_dev: Deployed) -> None:
    evidence = database.rds_postgres(deployed_dev.ctx())
    assert evidence.figures["multi_az"] is False and "single-AZ (as infra/Pulumi.dev.yaml says)" in evidence.message


@pytest.mark.check_fails("validation.aws.database:rds_postgres")
def test_rds_probe_fails_on_a_publicly_accessible_database(deployed_dev: Deployed) -> None:
    rds = deployed_dev.client("rds")
    ident = deployed_dev.outputs["db_identifier"]
    deployed_dev.undo(lambda: rds.modify_db_instance(DBInstanceIdentifier=ident, PubliclyAccessible=False,
                                                     ApplyImmediately=True))
    rds.modify_db_instance(DBInstanceIdentifier=ident, PubliclyAccessible=True, ApplyImmediately=True)
    with pytest.raises(CheckFailed, match="RDS instance finks-dev-prefect is publicly accessible"):
        database.rds_postgres(deployed_dev.ctx())


@pytest.mark.check_fails("validation.aws.network:security_group_chain")
def test_security_group_probe_fails_on_postgres_open_to_the_internet(deployed_dev: Deployed) -> None:
    ec2 = deployed_dev.client("ec2")
    db_sg = deployed_dev.outputs["security_groups"]["database"]
    rule = [{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    deployed_dev.undo(lambda: ec2.revoke_security_group_ingress(GroupId=db_sg, IpPermissions=rule))
    ec2.authorize_security_group_ingress(GroupId=db_sg, IpPermissions=rule)
    with pytest.raises(CheckFailed, match=rf"database security group {db_sg} allows tcp 5432 from 0.0.0.0/0: "
                                          rf"only tcp 5432 from sg-\w+ belongs there"):
        network.security_group_chain(deployed_dev.ctx())


@pytest.mark.check_fails("validation.aws.network:nat_gateways_available")
def test_nat_probe_fails_in_prod_when_a_zone_routes_through_another_zones_nat(deployed_prod: Deployed) -> None:
    ec2 = deployed_prod.client("ec2")
    private = [s for s in network.subnets(_live(deployed_prod), deployed_prod.outputs["vpc_id"]) if s.tier == "private"]
    a, d = next(s for s in private if s.zone.endswith("a")), next(s for s in private if s.zone.endswith("d"))
    deployed_prod.undo(lambda: ec2.replace_route(RouteTableId=d.route_table, DestinationCidrBlock="0.0.0.0/0",
                                                 NatGatewayId=d.target))
    ec2.replace_route(RouteTableId=d.route_table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=a.target)
    with pytest.raises(CheckFailed, match=rf"private subnet {d.id} .* in ca-central-1d routes through NAT {a.target} in "
                                          r"ca-central-1a: stack prod wants a NAT gateway per zone"):
        network.nat_gateways_available(deployed_prod.ctx())


@pytest.mark.check_fails("validation.aws.network:nat_gateways_available")
def test_nat_probe_fails_when_the_nat_gateway_is_deleted(deployed_dev: Deployed) -> None:
    ec2 = deployed_dev.client("ec2")
    nat = ec2.describe_nat_gateways()["NatGateways"][0]["NatGatewayId"]
    deployed_dev.undo(_spoil(deployed_dev))  # a deleted NAT gateway cannot come back under its id
    ec2.delete_nat_gateway(NatGatewayId=nat)
    with pytest.raises(CheckFailed, match=rf"NAT gateway {nat} \(route of subnet-\w+ .*\) is deleted, not available"):
        network.nat_gateways_available(deployed_dev.ctx())


# ---- S11 / S20 -------------------------------------------------------------------------------
@pytest.mark.check_fails("validation.aws.monitoring:dashboards")
def test_dashboard_probe_fails_on_a_missing_widget(deployed_dev: Deployed) -> None:
    cw = deployed_dev.client("cloudwatch")
    name = deployed_dev.outputs["dashboards"]["platform"]
    body = cw.get_dashboard(DashboardName=name)["DashboardBody"]
    deployed_dev.undo(lambda: cw.put_dashboard(DashboardName=name, DashboardBody=body))
    doc = json.loads(body)
    doc["widgets"] = [w for w in doc["widgets"] if w["properties"]["title"] != "RDS free storage"]
    cw.put_dashboard(DashboardName=name, DashboardBody=json.dumps(doc))
    with pytest.raises(CheckFailed, match="dashboard finks-dev-platform lacks the widget 'RDS free storage'"):
        monitoring.dashboards(deployed_dev.ctx())


@pytest.mark.check_fails("validation.aws.monitoring:alarms_wired")
def test_alarms_probe_fails_on_an_alarm_that_notifies_nobody(deployed_dev: Deployed) -> None:
    name = deployed_dev.outputs["alarms"]["rds-connections"]
    cw = deployed_dev.client("cloudwatch")
    alarm = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
    deployed_dev.undo(deployed_dev.again(_planned(deployed_dev, "aws:cloudwatch/metricAlarm:MetricAlarm", "rds-connections")))
    cw.put_metric_alarm(**{k: alarm[k] for k in ("AlarmName", "Namespace", "MetricName", "Dimensions", "Statistic",
                                                 "ComparisonOperator", "Threshold", "Period", "EvaluationPeriods")},
                        AlarmActions=[])
    with pytest.raises(CheckFailed, match=r"alarm finks-dev-rds-connections does not notify the alert topic \(no action\)"):
        monitoring.alarms_wired(deployed_dev.ctx())


@pytest.mark.check_fails("validation.aws.monitoring:alerts_topic_subscribed")
def test_topic_probe_fails_without_a_subscription(deployed_dev: Deployed) -> None:
    sns = deployed_dev.client("sns")
    topic = deployed_dev.outputs["alerts_topic_arn"]
    subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    deployed_dev.undo(deployed_dev.again(_planned(deployed_dev, "aws:sns/topicSubscription:TopicSubscription", "alerts")))
    for s in subs:
        sns.unsubscribe(SubscriptionArn=s["SubscriptionArn"])
    with pytest.raises(CheckFailed, match=r"SNS topic finks-dev-alerts has no confirmed subscription: alarms alert nobody; "
                                          r"set finks:alertEmail in infra/Pulumi.dev.yaml"):
        monitoring.alerts_topic_subscribed(deployed_dev.ctx())


@pytest.mark.check_fails("validation.aws.monitoring:custom_metrics_datapoints")
def test_metrics_probe_fails_when_one_metric_has_no_datapoint_in_the_last_day(emulator: str, tmp_path: Path) -> None:
    """CloudWatch keeps datapoints (none can be deleted): an account whose pipeline last reported
    its quality score two days ago, and its other metrics an hour ago."""
    import datetime as dt

    from core.aws import client
    from core.paths import REPO_ROOT
    from core.settings import load_settings

    cw = client(load_settings(env="dev"), "cloudwatch")
    now = dt.datetime.now(dt.UTC)
    for metric, when in (("RecordsProcessed", now), ("PipelineLatency", now), ("DataQualityScore", now - dt.timedelta(days=2))):
        cw.put_metric_data(Namespace="Finks/Pipeline", MetricData=[{
            "MetricName": metric, "Value": 1.0, "Timestamp": when - dt.timedelta(hours=1),
            "Dimensions": [{"Name": "Environment", "Value": "dev"}, {"Name": "Step", "Value": "pipeline"}]}])
    ctx = CheckContext("dev", REPO_ROOT, tmp_path, tmp_path / "w")
    with pytest.raises(CheckFailed, match=r"^no DataQualityScore datapoint in Finks/Pipeline \(Environment=dev\) in the "
                                          r"last 24 h; run the daily pipeline on dev") as exc:
        monitoring.custom_metrics_datapoints(ctx)
    assert len(exc.value.evidence.figures["problems"]) == 1


@pytest.mark.check_fails("validation.aws.monitoring:pipeline_dashboard")
def test_pipeline_dashboard_probe_fails_when_a_custom_metric_is_not_graphed(deployed_dev: Deployed) -> None:
    cw = deployed_dev.client("cloudwatch")
    name = deployed_dev.outputs["dashboards"]["pipeline"]
    body = cw.get_dashboard(DashboardName=name)["DashboardBody"]
    deployed_dev.undo(lambda: cw.put_dashboard(DashboardName=name, DashboardBody=body))
    doc = json.loads(body)
    doc["widgets"] = [w for w in doc["widgets"] if "DataQualityScore" not in json.dumps(w)]
    cw.put_dashboard(DashboardName=name, DashboardBody=json.dumps(doc))
    with pytest.raises(CheckFailed, match="dashboard finks-dev-pipeline lacks the widget 'DataQualityScore'") as exc:
        monitoring.pipeline_dashboard(deployed_dev.ctx())
    assert "dashboard finks-dev-pipeline does not graph DataQualityScore" in exc.value.evidence.figures["problems"]


# ---- S21 -----------------------------------------------------------------------------------
@pytest.mark.check_fails("validation.aws.security:guardduty_enabled")
def test_guardduty_probe_fails_on_a_disabled_detector(deployed_dev: Deployed) -> None:
    gd = deployed_dev.client("guardduty")
    detector = deployed_dev.outputs["guardduty_detector_id"]
    deployed_dev.undo(lambda: gd.update_detector(DetectorId=detector, Enable=True))
    gd.update_detector(DetectorId=detector, Enable=False)
    with pytest.raises(CheckFailed, match=rf"GuardDuty detector {detector} is DISABLED, not ENABLED"):
        security.guardduty_enabled(deployed_dev.ctx())


@pytest.mark.check_fails("validation.aws.security:config_recording")
def test_config_probe_fails_on_a_stopped_recorder(deployed_dev: Deployed) -> None:
    config = deployed_dev.client("config")
    deployed_dev.undo(lambda: config.start_configuration_recorder(ConfigurationRecorderName="finks-dev-recorder"))
    config.stop_configuration_recorder(ConfigurationRecorderName="finks-dev-recorder")
    with pytest.raises(CheckFailed, match="Config recorder finks-dev-recorder is stopped: changes go unrecorded"):
        security.config_recording(deployed_dev.ctx())


@pytest.mark.check_fails("validation.aws.network:vpc_endpoints")
def test_endpoints_probe_fails_without_the_logs_endpoint(deployed_dev: Deployed) -> None:
    ec2 = deployed_dev.client("ec2")
    vpc = deployed_dev.outputs["vpc_id"]
    endpoint = ec2.describe_vpc_endpoints(Filters=[
        {"Name": "vpc-id", "Values": [vpc]}, {"Name": "service-name", "Values": ["com.amazonaws.ca-central-1.logs"]}])
    deployed_dev.undo(deployed_dev.again(_planned(deployed_dev, "aws:ec2/vpcEndpoint:VpcEndpoint", "vpce-logs")))
    ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint["VpcEndpoints"][0]["VpcEndpointId"]])
    with pytest.raises(CheckFailed, match=rf"VPC {vpc} has no interface endpoint for com.amazonaws.ca-central-1.logs"):
        network.vpc_endpoints(deployed_dev.ctx())


# ---- through finks itself ---------------------------------------------------------------------
def test_finks_verify_grades_dev_from_the_live_probes_in_child_processes(deployed_dev: Deployed, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`finks verify --env dev` runs the probes as checks (child processes, AWS_ENDPOINT_URL from the
    environment, the outputs `finks infra up` recorded in the state dir): verified, complete."""
    from infra.deploy import record_outputs
    from tests.planbuilder import cli_env, criterion, session, write_plan

    e = cli_env(tmp_path, monkeypatch)
    record_outputs("dev", deployed_dev.outputs, e.state)
    live = {"envs": ["dev", "staging", "prod"], "timeout": 300}
    write_plan(e.plan, [session("s3", criteria=[
        criterion("S3 buckets with lifecycle policies, versioning, access logging",
                  {"id": "lake-buckets-live", "python": "validation.aws.storage:buckets_configured", **live}),
        criterion("Multi-AZ RDS PostgreSQL", {"id": "rds-live", "python": "validation.aws.database:rds_postgres", **live}),
    ])], gates={"environments": {"dev": {"accept_planned": False}}, "gates": []})
    doc = e.json("verify", "s3", "--env", "dev")
    assert doc["ok"] is True, doc
    assert e.status("dev")["s3"] == "complete"
    checks = [r for r in e.history("dev") if r["type"] == "check"]
    assert {(c["check"], c["outcome"], c["grade"]) for c in checks} == {
        ("lake-buckets-live", "passed", "verified"), ("rds-live", "passed", "verified")}
    assert all(c["figures"]["endpoint"] == deployed_dev.url for c in checks)


# ---- the least-privilege policy and the docs -------------------------------------------------------
# Probes that reach what only the recorded outputs name (the Prefect and API URLs): found by tags
# alone they fail, having made the AWS calls of their discovery, which the policy must still allow.
NEED_OUTPUTS = frozenset(t for t in __import__("validation.aws.policy", fromlist=["x"]).probe_targets()
                         if t.startswith(("validation.aws.prefect", "validation.aws.api_gateway:endpoints",
                                          "validation.aws.api_gateway:responses")))


def test_every_probe_the_sessions_list_is_described_in_the_docs() -> None:
    """Each has its pass and fail tests beside its module's (tests/test_check_coverage.py holds the
    fail tests to it); the docs say what each reads."""
    from core.paths import REPO_ROOT
    from validation.aws.policy import DOC, OWN_PERMISSIONS, probe_targets

    doc = (REPO_ROOT / DOC).read_text()
    listed = [*probe_targets(), *OWN_PERMISSIONS]
    assert [t for t in listed if f"`{t.removeprefix('validation.aws.')}`" not in doc] == []


@pytest.fixture
def live_dev(request: pytest.FixtureRequest, deployed_dev: Deployed, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> Deployed:
    """dev as deployed, with its stand-ins: the environment's Prefect behind its ALB, the API gateway
    (each test CA trusted), every output recorded."""
    return _with_standins(request, deployed_dev, tmp_path, monkeypatch, "prefect_dev", "edge_dev")


def _with_standins(request: pytest.FixtureRequest, d: Deployed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                   *fixtures: str) -> Deployed:
    from infra.deploy import record_outputs, recorded_outputs

    cas, outputs = [], dict(d.outputs)
    for name in fixtures:
        request.getfixturevalue(name)  # each records the outputs with its URL and trusts its CA
        outputs.update({k: v for k, v in recorded_outputs(d.env, d.state_dir).items() if d.outputs.get(k) != v})
        cas.append(Path(os.environ["SSL_CERT_FILE"]).read_text())
    bundle = tmp_path / "stand-in-cas.pem"
    bundle.write_text("".join(cas))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    record_outputs(d.env, outputs, d.state_dir)
    return d


def test_the_documented_policy_allows_exactly_the_calls_the_probes_make(
        live_dev: Deployed, deployed_prod: Deployed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every probe on dev — with the recorded outputs and by tags alone — and on prod those of a
    stack of that kind (per-zone NAT, Multi-AZ, paging): the union of the IAM actions of their
    calls is the policy in docs/running-on-aws.md — no more, no fewer. With FINKS_WRITE_POLICY=1
    (`python -m validation.aws.policy --write`) it rewrites the doc's block instead."""
    from core.paths import REPO_ROOT
    from validation.aws import policy

    with monkeypatch.context() as m:
        m.setenv("AWS_ENDPOINT_URL", live_dev.url)
        actions = policy.collect_from([live_dev.ctx()])
        actions |= policy.collect_from([live_dev.ctx(tmp_path / "dev" / "by-tags")], tolerate=NEED_OUTPUTS)
    with monkeypatch.context() as m:
        m.setenv("AWS_ENDPOINT_URL", deployed_prod.url)
        # The Prefect and API stand-ins serve dev only; on prod their probes make dev's calls.
        actions |= policy.collect_from([deployed_prod.ctx(), deployed_prod.ctx(tmp_path / "prod" / "by-tags")],
                                       skip=NEED_OUTPUTS)
    path = REPO_ROOT / policy.DOC
    mode = os.environ.get("FINKS_WRITE_POLICY", "")
    if mode == "1":
        path.write_text(policy.rewrite(path.read_text(), actions))
    elif mode == "print":
        print(json.dumps(policy.document(actions), indent=2))
    documented = policy.documented(path.read_text())
    assert sorted(actions - documented) == [], "probes call what the policy does not allow: " \
        "run `python -m validation.aws.policy --write`"
    assert sorted(documented - actions) == [], "the policy allows what no probe calls: " \
        "run `python -m validation.aws.policy --write`"
    assert all(a.split(":", 1)[1].startswith(policy.READ_ONLY_VERBS) or a in policy.READING_ACTIONS for a in actions)


def test_iam_action_names_follow_iam_not_the_api() -> None:
    from validation.aws.policy import action_of

    assert action_of("s3", "GetBucketLifecycleConfiguration") == "s3:GetLifecycleConfiguration"
    assert action_of("s3", "ListBuckets") == "s3:ListAllMyBuckets"
    assert action_of("monitoring", "GetMetricStatistics") == "cloudwatch:GetMetricStatistics"
    assert action_of("ec2", "DescribeSubnets") == "ec2:DescribeSubnets"


def test_policy_block_round_trips() -> None:
    from validation.aws import policy

    text = f"intro\n{policy.BEGIN}\nold\n{policy.END}\noutro\n"
    new = policy.rewrite(text, {"ec2:DescribeVpcs", "s3:GetBucketVersioning"})
    assert new.startswith("intro\n") and new.endswith("\noutro\n")
    assert policy.documented(new) == {"ec2:DescribeVpcs", "s3:GetBucketVersioning"}


# ---- the seams: endpoint variables, recorded outputs ------------------------------------------------
@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in [k for k in __import__("os").environ if k.startswith("AWS_ENDPOINT_URL")] + [
            "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "FINKS_S3_ENDPOINT_URL"]:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return monkeypatch


def test_aws_endpoint_url_reaches_every_client_and_core_aws_passes_no_endpoint_of_its_own(aws_env) -> None:  # type: ignore[no-untyped-def]
    from core.aws import client, client_kwargs
    from core.settings import load_settings

    aws_env.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    for env in ("dev", "local"):  # locally it beats the default moto port too
        settings = load_settings(env=env)
        assert "endpoint_url" not in client_kwargs(settings, service="ec2")
        assert client(settings, "ec2").meta.endpoint_url == "http://127.0.0.1:4566"


def test_a_per_service_endpoint_variable_sends_only_that_service(aws_env) -> None:  # type: ignore[no-untyped-def]
    from core.aws import client, endpoint_for
    from core.settings import load_settings

    aws_env.setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", "http://127.0.0.1:4567")
    settings = load_settings(env="dev")
    assert client(settings, "logs").meta.endpoint_url == "http://127.0.0.1:4567"
    assert client(settings, "ec2").meta.endpoint_url == "https://ec2.ca-central-1.amazonaws.com"
    assert endpoint_for(settings, "logs") == "http://127.0.0.1:4567" and endpoint_for(settings, "ec2") is None


def test_finks_own_endpoint_setting_still_wins_and_boto3s_opt_out_is_honoured(aws_env) -> None:  # type: ignore[no-untyped-def]
    from core.aws import client
    from core.settings import load_settings

    aws_env.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    aws_env.setenv("FINKS_S3_ENDPOINT_URL", "http://127.0.0.1:5999")
    assert client(load_settings(env="dev"), "s3").meta.endpoint_url == "http://127.0.0.1:5999"
    aws_env.delenv("FINKS_S3_ENDPOINT_URL")
    aws_env.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    settings = load_settings(env="local")
    assert client(settings, "s3").meta.endpoint_url == f"http://127.0.0.1:{settings.moto_port}"


def test_infra_up_records_outputs_the_probes_read_back(tmp_path: Path) -> None:
    from infra.deploy import outputs_path, record_outputs, recorded_outputs

    assert recorded_outputs("staging", tmp_path) == {}
    path = record_outputs("staging", {"vpc_id": "vpc-1", "buckets": {"bronze": "finks-staging-bronze"}}, tmp_path)
    assert path == outputs_path("staging", tmp_path) == tmp_path / "state" / "staging" / "stack-outputs.json"
    assert recorded_outputs("staging", tmp_path) == {"vpc_id": "vpc-1", "buckets": {"bronze": "finks-staging-bronze"}}
    assert json.loads(path.read_text())["stack"] == "staging"


def test_the_program_exports_what_the_probes_look_for() -> None:
    from infra.plan import plan

    outputs = plan("prod").outputs
    for key in ("buckets", "vpc_id", "public_subnet_ids", "private_subnet_ids", "security_groups", "fmp_secret_name",
                "iam_roles", "ecs_cluster_name", "ecs_task_families", "log_groups", "ecr_repositories", "db_identifier",
                "alerts_topic_arn", "dashboards", "alarms", "guardduty_detector_id"):
        assert outputs.get(key), key
    assert set(outputs["security_groups"]) == {"alb", "prefect_server", "database", "tasks", "endpoints"}


# ---- helpers ------------------------------------------------------------------------------------
def _live(d: Deployed):  # type: ignore[no-untyped-def]
    from validation.aws.live import Live

    return Live.of(d.ctx())


def _spoil(d: Deployed):  # type: ignore[no-untyped-def]
    """An undo that cannot put things back: the next test gets a freshly seeded stack."""
    def spoil() -> None:
        d.stack.dirty = True
    return spoil


# ---- the whole plan, verified on the healthy fixture --------------------------------------------
# What no machine here has: the Pulumi CLI. These two checks fail saying so; everything else verifies.
NEEDS_PULUMI_CLI = {("s0", "pulumi-cli"), ("s2", "program-previews")}


@pytest.mark.slow  # the whole plan's checks on dev, Prowler, mypy and Spark included: about 3 minutes
def test_verify_all_on_the_healthy_dev_stack_verifies_every_criterion(live_dev: Deployed, tmp_path: Path,
                                                                       request: pytest.FixtureRequest) -> None:
    """`finks verify --all --env dev` against the seeded stack and its stand-ins: every criterion that
    applies to dev is verified — none planned, none unverified — but the two that need the Pulumi CLI."""
    import subprocess
    import sys
    import threading

    from core.paths import REPO_ROOT
    from tests.fixtures.prefect_env import WORKER

    prefect, done = request.getfixturevalue("prefect_dev"), threading.Event()

    def heartbeat() -> None:  # the environment's worker, alive for the whole run (a stand-in heartbeats for it)
        while not done.wait(20):
            with prefect.client() as client:
                client.send_worker_heartbeat(live_dev.outputs["ecs_work_pool"], WORKER, heartbeat_interval_seconds=30)

    beating = threading.Thread(target=heartbeat, daemon=True)
    beating.start()
    env = {**os.environ, "AWS_ENDPOINT_URL": live_dev.url, "FINKS_STATE_DIR": str(live_dev.state_dir),
           "FINKS_HANDOFFS": str(tmp_path / "handoffs"), "NO_COLOR": "1",
           "FMP_API_KEY": "Fx7kQ2mZ9pLw4TnB8vRc3YhD"}  # what session 0 has the operator prepare
    try:
        proc = subprocess.run([sys.executable, "-m", "finks", "verify", "--all", "--env", "dev", "--json", "--jobs", "2"],
                              cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=3000, check=False)
    finally:
        done.set()
    doc = json.loads(proc.stdout)
    history = [json.loads(line) for line in (live_dev.state_dir / "state" / "dev" / "history.jsonl").read_text().splitlines()]
    failed = {(e["session"], e["check"]): e["message"] for e in history if e["type"] == "check" and e["outcome"] != "passed"
              and e["outcome"] != "skipped"}
    assert set(failed) == NEEDS_PULUMI_CLI, json.dumps({f"{s}/{c}": m for (s, c), m in failed.items()}, indent=1)[:4000]
    assert all("pulumi" in m.lower() for m in failed.values()), failed
    outcomes = {s["id"]: s["outcome"] for s in doc["sessions"]}
    assert {sid for sid, o in outcomes.items() if o not in ("passed", "not_applicable")} == {"s0", "s2"}
    assert doc["verdicts"]["verified"] == 74 - 2 and doc["verdicts"]["failed"] == 2  # s0's and s2's CLI criteria
    assert not doc["verdicts"].get("planned") and not doc["verdicts"].get("unverified")
