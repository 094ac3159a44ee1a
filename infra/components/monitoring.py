"""Monitoring: the platform dashboard (ECS, RDS, S3), the pipeline dashboard, alarms, SNS.

The alert topic notifies an e-mail (finks:alertEmail) and, where the stack pages,
PagerDuty (infra/components/pagerduty.py: the key's secret is declared here on every
stack; the subscription only once the stack file sets finks:pagerduty: true).

Pipeline metrics are custom metrics the flows publish (see `PIPELINE_METRICS`);
the dashboard finds them with SEARCH so new dimensions show up by themselves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components import pagerduty as paging
from infra.components.base import Common, FinksComponent, policy_document
from infra.components.iam import METRICS_NAMESPACE

# Custom metrics emitted by flows/metrics.py (namespace Finks/Pipeline; every
# datum has Environment and Step dimensions, RecordsProcessed also Dataset).
PIPELINE_METRICS: dict[str, str] = {
    "RecordsProcessed": "Sum",
    "PipelineLatency": "Maximum",
    "DataQualityScore": "Minimum",
}


@dataclass(frozen=True)
class MonitoringArgs:
    common: Common
    cluster_name: pulumi.Input[str]
    cluster_arn: pulumi.Input[str]
    server_service_name: pulumi.Input[str]
    db_identifier: pulumi.Input[str]
    db_max_connections: int
    alb_arn_suffix: pulumi.Input[str]
    buckets: dict[str, pulumi.Output[str]]
    api_name: pulumi.Input[str]
    function_name: pulumi.Input[str]
    glue_job_name: pulumi.Input[str]
    alert_email: str | None = None
    quality_threshold_percent: float = 95
    pagerduty: paging.PagerDutyArgs | None = None


def _widget(title: str, metrics: list[list[Any]], stat: str, region: str, x: int, y: int) -> dict[str, Any]:
    return {
        "type": "metric", "x": x, "y": y, "width": 12, "height": 6,
        "properties": {"title": title, "metrics": metrics, "stat": stat, "period": 300, "region": region, "view": "timeSeries"},
    }


class Monitoring(FinksComponent):
    kind = "Monitoring"

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        c = args.common
        self.topic = aws.sns.Topic(
            self.child("alerts"), name=f"{c.prefix}-alerts", kms_master_key_id="alias/aws/sns", tags=c.tags,
            opts=self.opts(),
        )
        aws.sns.TopicPolicy(
            self.child("alerts-policy"),
            arn=self.topic.arn,
            policy=policy_document(
                [
                    {
                        "Sid": "AlarmsAndEvents",
                        "Effect": "Allow",
                        "Principal": {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]},
                        "Action": "sns:Publish",
                        "Resource": self.topic.arn,
                    }
                ]
            ),
            opts=self.opts(),
        )
        if args.alert_email:
            aws.sns.TopicSubscription(
                self.child("alerts-email"), topic=self.topic.arn, protocol="email", endpoint=args.alert_email,
                opts=self.opts(),
            )
        if args.pagerduty is not None:
            self.pagerduty_secret = paging.key_secret(self.child("pagerduty-key"), c, args.pagerduty.kms_key_arn,
                                                      self.opts())
            if args.pagerduty.integration_key is not None:
                paging.subscription(self.child("alerts-pagerduty"), self.topic.arn, args.pagerduty.integration_key,
                                    args.pagerduty.events_url, self.opts())

        r = c.region
        body = pulumi.Output.all(
            cluster=args.cluster_name, service=args.server_service_name, db=args.db_identifier,
            alb=args.alb_arn_suffix, api=args.api_name, fn=args.function_name,
            **{f"bucket_{z}": b for z, b in args.buckets.items() if z != "logs"},
        ).apply(lambda v: json.dumps({"widgets": [
            _widget("ECS CPU / memory", [["AWS/ECS", "CPUUtilization", "ClusterName", v["cluster"]],
                                        ["AWS/ECS", "MemoryUtilization", "ClusterName", v["cluster"]]], "Average", r, 0, 0),
            _widget("ECS running tasks", [["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", v["cluster"], "ServiceName", v["service"]]], "Minimum", r, 12, 0),
            _widget("RDS CPU / connections", [["AWS/RDS", "CPUUtilization", "DBInstanceIdentifier", v["db"]],
                                             ["AWS/RDS", "DatabaseConnections", "DBInstanceIdentifier", v["db"]]], "Average", r, 0, 6),
            _widget("RDS free storage", [["AWS/RDS", "FreeStorageSpace", "DBInstanceIdentifier", v["db"]]], "Minimum", r, 12, 6),
            _widget("S3 bucket size", [["AWS/S3", "BucketSizeBytes", "BucketName", v[k], "StorageType", "StandardStorage"] for k in sorted(v) if k.startswith("bucket_")], "Average", r, 0, 12),
            _widget("S3 objects", [["AWS/S3", "NumberOfObjects", "BucketName", v[k], "StorageType", "AllStorageTypes"] for k in sorted(v) if k.startswith("bucket_")], "Average", r, 12, 12),
            _widget("Prefect ALB 5xx", [["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "LoadBalancer", v["alb"]]], "Sum", r, 0, 18),
        ]}))
        self.dashboard = aws.cloudwatch.Dashboard(
            self.child("platform"), dashboard_name=f"{c.prefix}-platform", dashboard_body=body, opts=self.opts(),
        )

        pipeline_body = pulumi.Output.all(api=args.api_name, fn=args.function_name, job=args.glue_job_name).apply(
            lambda v: json.dumps({"widgets": [
                *[
                    {
                        "type": "metric", "x": 12 * (i % 2), "y": 6 * (i // 2), "width": 12, "height": 6,
                        "properties": {
                            "title": metric, "region": r, "period": 300, "view": "timeSeries",
                            "metrics": [[{"expression": f"SEARCH('Namespace=\"{METRICS_NAMESPACE}\" MetricName=\"{metric}\" Environment=\"{c.env}\"', '{stat}', 300)", "id": f"m{i}"}]],
                        },
                    }
                    for i, (metric, stat) in enumerate(PIPELINE_METRICS.items())
                ],
                _widget("Glue bronze->silver", [["Glue", "glue.driver.aggregate.numFailedTasks", "JobName", v["job"], "JobRunId", "ALL", "Type", "count"]], "Sum", r, 12, 6),
                _widget("API errors", [["AWS/ApiGateway", "5XXError", "ApiName", v["api"]], ["AWS/Lambda", "Errors", "FunctionName", v["fn"]]], "Sum", r, 0, 12),
                _widget("API latency", [["AWS/ApiGateway", "Latency", "ApiName", v["api"]]], "p90", r, 12, 12),
            ]})
        )
        self.pipeline_dashboard = aws.cloudwatch.Dashboard(
            self.child("pipeline"), dashboard_name=f"{c.prefix}-pipeline", dashboard_body=pipeline_body, opts=self.opts(),
        )

        self.alarms: dict[str, aws.cloudwatch.MetricAlarm] = {}
        self._alarm(c, "ecs-server-tasks", "Prefect server has no running task", "ECS/ContainerInsights", "RunningTaskCount",
                    {"ClusterName": args.cluster_name, "ServiceName": args.server_service_name}, "Minimum", "LessThanThreshold", 1,
                    treat_missing="breaching")
        self._alarm(c, "rds-connections", "RDS connections near max_connections", "AWS/RDS", "DatabaseConnections",
                    {"DBInstanceIdentifier": args.db_identifier}, "Maximum", "GreaterThanThreshold", int(args.db_max_connections * 0.8))
        self._alarm(c, "rds-storage", "RDS free storage under 2 GiB", "AWS/RDS", "FreeStorageSpace",
                    {"DBInstanceIdentifier": args.db_identifier}, "Minimum", "LessThanThreshold", 2 * 1024**3)
        self._alarm(c, "alb-5xx", "Prefect server 5xx errors", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count",
                    {"LoadBalancer": args.alb_arn_suffix}, "Sum", "GreaterThanThreshold", 10)
        self._alarm(c, "api-5xx", "Read API 5xx errors", "AWS/ApiGateway", "5XXError",
                    {"ApiName": args.api_name}, "Sum", "GreaterThanThreshold", 5)
        self._alarm(c, "lambda-errors", "Read API Lambda errors", "AWS/Lambda", "Errors",
                    {"FunctionName": args.function_name}, "Sum", "GreaterThanThreshold", 5)
        self._alarm(c, "data-quality", "Data quality score under threshold", METRICS_NAMESPACE, "DataQualityScore",
                    {"Environment": c.env, "Step": "quality"}, "Minimum", "LessThanThreshold", args.quality_threshold_percent)
        self._alarm(c, "pipeline-latency", "Daily pipeline slower than 2 hours", METRICS_NAMESPACE, "PipelineLatency",
                    {"Environment": c.env, "Step": "pipeline"}, "Maximum", "GreaterThanThreshold", 7200)

        # ECS has no "task failed" metric: stopped tasks with a non-zero exit code
        # arrive as events, routed straight to the alert topic.
        rule = aws.cloudwatch.EventRule(
            self.child("ecs-task-failed"),
            description="ECS task stopped with a non-zero exit code",
            event_pattern=pulumi.Output.json_dumps({
                "source": ["aws.ecs"],
                "detail-type": ["ECS Task State Change"],
                "detail": {"clusterArn": [args.cluster_arn], "lastStatus": ["STOPPED"],
                           "containers": {"exitCode": [{"anything-but": 0}]}},
            }),
            tags=c.tags,
            opts=self.opts(),
        )
        aws.cloudwatch.EventTarget(self.child("ecs-task-failed-sns"), rule=rule.name, arn=self.topic.arn, opts=self.opts())
        self.register_outputs({"topic_arn": self.topic.arn, "dashboard": self.dashboard.dashboard_name})

    def _alarm(self, c: Common, suffix: str, description: str, namespace: str, metric: str,
               dimensions: dict[str, pulumi.Input[str]], statistic: str, comparison: str, threshold: float,
               treat_missing: str = "notBreaching") -> None:
        self.alarms[suffix] = aws.cloudwatch.MetricAlarm(
            self.child(suffix),
            name=f"{c.prefix}-{suffix}",
            alarm_description=description,
            namespace=namespace,
            metric_name=metric,
            dimensions=dimensions,
            statistic=statistic,
            comparison_operator=comparison,
            threshold=threshold,
            period=300,
            evaluation_periods=2,
            datapoints_to_alarm=2,
            treat_missing_data=treat_missing,
            alarm_actions=[self.topic.arn],
            ok_actions=[self.topic.arn],
            tags=c.tags,
            opts=self.opts(),
        )
