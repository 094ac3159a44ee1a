"""Seeding handlers for what runs on the base: ECS, ECR, logs, RDS, SNS and CloudWatch, Glue, GuardDuty, Config, CloudTrail."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from validation.aws.seeding import (
    MOCK_REGION,
    Made,
    Seeder,
    as_int,
    handles,
    number,
    pascal,
    tag_list,
    tag_map,
)

if TYPE_CHECKING:
    from infra.plan import PlannedResource


# ---- containers --------------------------------------------------------------------
@handles("aws:ecs/cluster:Cluster")
def _cluster(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    cluster = s.client("ecs").create_cluster(clusterName=i["name"], settings=i.get("settings", []),
                                             tags=tag_list(i, "key", "value"))["cluster"]
    return cluster["clusterArn"], cluster["clusterArn"]


@handles("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders")
def _capacity(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    strategy = [{k: number(v) for k, v in item.items()} for item in i.get("defaultCapacityProviderStrategies", [])]
    s.client("ecs").put_cluster_capacity_providers(cluster=i["clusterName"], capacityProviders=i["capacityProviders"],
                                                   defaultCapacityProviderStrategy=strategy)
    return None


@handles("aws:ecs/taskDefinition:TaskDefinition")
def _task_definition(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    kwargs: dict[str, Any] = {"family": i["family"], "containerDefinitions": json.loads(i["containerDefinitions"]),
                              "networkMode": i.get("networkMode", "awsvpc"),
                              "requiresCompatibilities": i.get("requiresCompatibilities", []),
                              "cpu": str(i.get("cpu", "")), "memory": str(i.get("memory", "")),
                              "tags": tag_list(i, "key", "value")}
    for key in ("executionRoleArn", "taskRoleArn", "runtimePlatform"):
        if i.get(key):
            kwargs[key] = i[key]
    arn = s.client("ecs").register_task_definition(**kwargs)["taskDefinition"]["taskDefinitionArn"]
    return arn, arn


@handles("aws:ecr/repository:Repository")
def _repository(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    kwargs: dict[str, Any] = {"repositoryName": i["name"], "imageTagMutability": i.get("imageTagMutability", "MUTABLE"),
                              "tags": tag_list(i)}
    if i.get("imageScanningConfiguration"):
        kwargs["imageScanningConfiguration"] = i["imageScanningConfiguration"]
    if i.get("encryptionConfigurations"):
        kwargs["encryptionConfiguration"] = i["encryptionConfigurations"][0]
    repo = s.client("ecr").create_repository(**kwargs)["repository"]
    return repo["repositoryName"], repo["repositoryArn"]


@handles("aws:ecr/lifecyclePolicy:LifecyclePolicy")
def _ecr_lifecycle(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    s.client("ecr").put_lifecycle_policy(repositoryName=i["repository"], lifecyclePolicyText=i["policy"])
    return None


@handles("aws:cloudwatch/logGroup:LogGroup")
def _log_group(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    logs = s.client("logs")
    logs.create_log_group(logGroupName=i["name"], tags=tag_map(i))
    if i.get("retentionInDays"):
        logs.put_retention_policy(logGroupName=i["name"], retentionInDays=int(i["retentionInDays"]))
    return i["name"], f"arn:aws:logs:{s.settings.region}:{s.account}:log-group:{i['name']}"


# ---- database ------------------------------------------------------------------------
@handles("aws:rds/subnetGroup:SubnetGroup")
def _db_subnets(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    name = i.get("name", r.name)
    s.client("rds").create_db_subnet_group(DBSubnetGroupName=name, DBSubnetGroupDescription=i.get("description", name),
                                           SubnetIds=i["subnetIds"], Tags=tag_list(i))
    return name, ""


@handles("aws:rds/parameterGroup:ParameterGroup")
def _db_params(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    rds = s.client("rds")
    name = i.get("name", r.name)
    rds.create_db_parameter_group(DBParameterGroupName=name, DBParameterGroupFamily=i["family"],
                                  Description=i.get("description", name), Tags=tag_list(i))
    params = [{"ParameterName": p["name"], "ParameterValue": str(p["value"]), "ApplyMethod": p.get("applyMethod", "immediate")}
              for p in i.get("parameters", [])]
    if params:
        rds.modify_db_parameter_group(DBParameterGroupName=name, Parameters=params)
    return name, ""


@handles("aws:rds/instance:Instance")
def _db_instance(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    kwargs: dict[str, Any] = {
        "DBInstanceIdentifier": i["identifier"], "Engine": i["engine"], "EngineVersion": i.get("engineVersion", ""),
        "DBInstanceClass": i["instanceClass"], "AllocatedStorage": as_int(i, "allocatedStorage"),
        "StorageType": i.get("storageType", "gp3"), "StorageEncrypted": bool(i.get("storageEncrypted")),
        "DBName": i.get("dbName", ""), "MasterUsername": i.get("username", ""), "Port": as_int(i, "port", 5432),
        "MultiAZ": bool(i.get("multiAz")), "PubliclyAccessible": bool(i.get("publiclyAccessible")),
        "DBSubnetGroupName": i.get("dbSubnetGroupName", ""), "VpcSecurityGroupIds": i.get("vpcSecurityGroupIds", []),
        "DBParameterGroupName": i.get("parameterGroupName", ""),
        "BackupRetentionPeriod": as_int(i, "backupRetentionPeriod", 1),
        "PreferredBackupWindow": i.get("backupWindow", ""), "PreferredMaintenanceWindow": i.get("maintenanceWindow", ""),
        "CopyTagsToSnapshot": bool(i.get("copyTagsToSnapshot")), "DeletionProtection": bool(i.get("deletionProtection")),
        "EnableCloudwatchLogsExports": i.get("enabledCloudwatchLogsExports", []),
        "EnableIAMDatabaseAuthentication": bool(i.get("iamDatabaseAuthenticationEnabled")),
        "ManageMasterUserPassword": bool(i.get("manageMasterUserPassword")), "Tags": tag_list(i),
    }
    if i.get("kmsKeyId"):
        kwargs["KmsKeyId"] = i["kmsKeyId"]
    db = s.client("rds").create_db_instance(**{k: v for k, v in kwargs.items() if v not in ("", None)})["DBInstance"]
    secret = (db.get("MasterUserSecret") or {}).get("SecretArn")
    if secret:  # the RDS-managed master secret the mocks called secret:rds!db-<name>
        from infra.plan import ACCOUNT_ID

        s.refs.add(f"arn:aws:secretsmanager:{MOCK_REGION}:{ACCOUNT_ID}:secret:rds!db-{r.name}", secret)
    return db["DBInstanceIdentifier"], db["DBInstanceArn"]


# ---- monitoring ----------------------------------------------------------------------
@handles("aws:sns/topic:Topic")
def _topic(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    attributes = {"KmsMasterKeyId": i["kmsMasterKeyId"]} if i.get("kmsMasterKeyId") else {}
    arn = s.client("sns").create_topic(Name=i["name"], Attributes=attributes, Tags=tag_list(i))["TopicArn"]
    return arn, arn


@handles("aws:sns/topicPolicy:TopicPolicy")
def _topic_policy(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    s.client("sns").set_topic_attributes(TopicArn=i["arn"], AttributeName="Policy", AttributeValue=i["policy"])
    return None


@handles("aws:sns/topicSubscription:TopicSubscription")
def _subscription(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    arn = s.client("sns").subscribe(TopicArn=i["topic"], Protocol=i["protocol"], Endpoint=i["endpoint"],
                                    ReturnSubscriptionArn=True)["SubscriptionArn"]
    return arn, arn


@handles("aws:cloudwatch/dashboard:Dashboard")
def _dashboard(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    s.client("cloudwatch").put_dashboard(DashboardName=i["dashboardName"], DashboardBody=i["dashboardBody"])
    return i["dashboardName"], ""


@handles("aws:cloudwatch/metricAlarm:MetricAlarm")
def _alarm(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    cw = s.client("cloudwatch")
    cw.put_metric_alarm(
        AlarmName=i["name"], AlarmDescription=i.get("alarmDescription", ""), Namespace=i["namespace"],
        MetricName=i["metricName"], Dimensions=[{"Name": k, "Value": str(v)} for k, v in (i.get("dimensions") or {}).items()],
        Statistic=i["statistic"], ComparisonOperator=i["comparisonOperator"], Threshold=float(i["threshold"]),
        Period=as_int(i, "period", 300), EvaluationPeriods=as_int(i, "evaluationPeriods", 1),
        DatapointsToAlarm=as_int(i, "datapointsToAlarm", 1), TreatMissingData=i.get("treatMissingData", "missing"),
        AlarmActions=i.get("alarmActions", []), OKActions=i.get("okActions", []), Tags=tag_list(i))
    arn = cw.describe_alarms(AlarmNames=[i["name"]])["MetricAlarms"][0]["AlarmArn"]
    return i["name"], arn


@handles("aws:cloudwatch/eventRule:EventRule")
def _event_rule(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    name = i.get("name", r.name)
    arn = s.client("events").put_rule(Name=name, EventPattern=i["eventPattern"], Description=i.get("description", ""),
                                      State="ENABLED", Tags=tag_list(i))["RuleArn"]
    return name, arn


@handles("aws:cloudwatch/eventTarget:EventTarget")
def _event_target(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    s.client("events").put_targets(Rule=i["rule"], Targets=[{"Id": i.get("targetId", r.name[-64:]), "Arn": i["arn"]}])
    return None


# ---- catalog -----------------------------------------------------------------------
@handles("aws:glue/catalogDatabase:CatalogDatabase")
def _glue_db(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    s.client("glue").create_database(DatabaseInput={"Name": i["name"], "Description": i.get("description", "")},
                                     Tags=tag_map(i))
    return i["name"], ""


@handles("aws:glue/catalogTable:CatalogTable")
def _glue_table(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    table = pascal({k: v for k, v in i.items() if k not in ("databaseName", "tags")})
    s.client("glue").create_table(DatabaseName=i["databaseName"], TableInput=table)
    return f"{i['databaseName']}:{i['name']}", ""


@handles("aws:glue/securityConfiguration:SecurityConfiguration")
def _glue_security(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    s.client("glue").create_security_configuration(Name=i["name"], EncryptionConfiguration=_glue_encryption(i))
    return i["name"], ""


def _glue_encryption(i: dict[str, Any]) -> dict[str, Any]:
    config = i.get("encryptionConfiguration") or {}
    s3 = config.get("s3Encryption") or {}
    out: dict[str, Any] = {"S3Encryption": [{"S3EncryptionMode": s3.get("s3EncryptionMode", "DISABLED"),
                                             **({"KmsKeyArn": s3["kmsKeyArn"]} if s3.get("kmsKeyArn") else {})}]}
    watch = config.get("cloudwatchEncryption") or {}
    out["CloudWatchEncryption"] = {"CloudWatchEncryptionMode": watch.get("cloudwatchEncryptionMode", "DISABLED")}
    marks = config.get("jobBookmarksEncryption") or {}
    out["JobBookmarksEncryption"] = {"JobBookmarksEncryptionMode": marks.get("jobBookmarksEncryptionMode", "DISABLED")}
    return out


@handles("aws:glue/job:Job")
def _glue_job(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    kwargs = pascal({k: v for k, v in i.items() if k not in ("tags", "roleArn")})
    s.client("glue").create_job(Role=i["roleArn"], Tags=tag_map(i), **kwargs)
    return i["name"], ""


@handles("aws:glue/crawler:Crawler")
def _crawler(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    targets = {"S3Targets": [pascal(t) for t in i.get("s3Targets", [])]}
    s.client("glue").create_crawler(Name=i["name"], Role=i["role"], DatabaseName=i["databaseName"], Targets=targets,
                                    Schedule=i.get("schedule", ""), TablePrefix=i.get("tablePrefix", ""),
                                    SchemaChangePolicy=pascal(i.get("schemaChangePolicy", {})), Tags=tag_map(i))
    return i["name"], ""


# ---- security ------------------------------------------------------------------------
@handles("aws:guardduty/detector:Detector")
def _detector(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    detector = s.client("guardduty").create_detector(
        Enable=bool(i.get("enable", True)), FindingPublishingFrequency=i.get("findingPublishingFrequency", "SIX_HOURS"),
        Tags=tag_map(i))["DetectorId"]
    return detector, f"arn:aws:guardduty:{s.settings.region}:{s.account}:detector/{detector}"


@handles("aws:cfg/recorder:Recorder")
def _recorder(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    group = i.get("recordingGroup") or {}
    s.client("config").put_configuration_recorder(ConfigurationRecorder={
        "name": i["name"], "roleARN": i["roleArn"],
        "recordingGroup": {"allSupported": bool(group.get("allSupported", True)),
                           "includeGlobalResourceTypes": bool(group.get("includeGlobalResourceTypes", False))}})
    return i["name"], ""


@handles("aws:cfg/deliveryChannel:DeliveryChannel")
def _delivery(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    channel = {"name": i["name"], "s3BucketName": i["s3BucketName"]}
    if i.get("s3KeyPrefix"):
        channel["s3KeyPrefix"] = i["s3KeyPrefix"]
    s.client("config").put_delivery_channel(DeliveryChannel=channel)
    return i["name"], ""


@handles("aws:cfg/recorderStatus:RecorderStatus")
def _recorder_status(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    if i.get("isEnabled"):
        s.client("config").start_configuration_recorder(ConfigurationRecorderName=i["name"])
    return None


@handles("aws:cfg/rule:Rule")
def _config_rule(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    source = i["source"]
    s.client("config").put_config_rule(ConfigRule={
        "ConfigRuleName": i["name"], "Source": {"Owner": source["owner"], "SourceIdentifier": source["sourceIdentifier"]}},
        Tags=tag_list(i))
    return i["name"], ""


@handles("aws:cloudtrail/trail:Trail")
def _trail(s: Seeder, r: PlannedResource, i: dict[str, Any]) -> Made:
    trail = s.client("cloudtrail").create_trail(
        Name=i["name"], S3BucketName=i["s3BucketName"], S3KeyPrefix=i.get("s3KeyPrefix", ""),
        IsMultiRegionTrail=bool(i.get("isMultiRegionTrail")), IncludeGlobalServiceEvents=bool(i.get("includeGlobalServiceEvents")),
        EnableLogFileValidation=bool(i.get("enableLogFileValidation")), TagsList=tag_list(i))
    if i.get("enableLogging", True):
        s.client("cloudtrail").start_logging(Name=i["name"])
    return trail["TrailARN"], trail["TrailARN"]
