"""S11, S20: dashboards, alarms and the alerts topic."""

from __future__ import annotations

import json
from typing import Any

from infra.criteria.common import Result, one, principals, require, rid
from infra.plan import Plan


def _dashboard(plan: Plan, suffix: str) -> dict[str, Any]:
    body = one(plan, "aws:cloudwatch/dashboard:Dashboard", suffix).inputs.get("dashboardBody", "")
    try:
        parsed = json.loads(body) if isinstance(body, str) else body
    except ValueError:
        parsed = None
    require(isinstance(parsed, dict) and bool(parsed.get("widgets")), f"{suffix} dashboard has no widgets")
    assert isinstance(parsed, dict)
    return parsed


def monitoring_dashboard(plan: Plan) -> Result:
    dashboard = _dashboard(plan, "platform")
    body = json.dumps(dashboard)
    for ns in ("AWS/ECS", "AWS/RDS", "AWS/S3"):
        require(ns in body, f"dashboard has no {ns} metrics")
    widgets = len(dashboard["widgets"])
    return f"platform dashboard with ECS, RDS and S3 metrics ({widgets} widgets)", {"widgets": widgets}


def monitoring_alarms(plan: Plan) -> Result:
    alarms = plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    metrics = {str(a.inputs.get("metricName")) for a in alarms}
    require("RunningTaskCount" in metrics, "no ECS task alarm")
    rule = next((r for r in plan.of_type("aws:cloudwatch/eventRule:EventRule") if r.name.endswith("ecs-task-failed")), None)
    require(rule is not None, "no ECS task-failure event rule")
    require("DatabaseConnections" in metrics, "no RDS connections alarm")
    require(any("5XX" in m for m in metrics), "no error-rate alarm")
    topic = one(plan, "aws:sns/topic:Topic")
    silent = [a.inputs.get("name") for a in alarms if topic.name not in str(a.inputs.get("alarmActions"))]
    require(not silent, f"alarms that notify no one: {silent}")
    assert rule is not None
    targets = [t for t in plan.of_type("aws:cloudwatch/eventTarget:EventTarget") if t.inputs.get("rule") in (rule.name, rid(rule))]
    require(any(topic.name in str(t.inputs.get("arn")) for t in targets), "ECS task-failure events do not reach the SNS topic")
    return f"{len(alarms)} alarms (ECS tasks, RDS connections, 5xx error rates, ...) + ECS task-failure events -> SNS", {"alarms": sorted(metrics)}


def alerts_topic(plan: Plan) -> Result:
    topic = one(plan, "aws:sns/topic:Topic")
    require(bool(topic.inputs.get("kmsMasterKeyId")), "alert topic not encrypted")
    policy = one(plan, "aws:sns/topicPolicy:TopicPolicy")
    publishers = principals(policy.inputs.get("policy"))
    require({"cloudwatch.amazonaws.com", "events.amazonaws.com"} <= publishers,
             f"CloudWatch and EventBridge may not publish to the topic (policy allows {sorted(publishers)})")
    return f"SNS topic {topic.inputs.get('name')} (encrypted; CloudWatch and EventBridge may publish)", {"topic": topic.inputs.get("name")}


def pipeline_dashboard_and_alerting(plan: Plan) -> Result:
    from infra.components.monitoring import PIPELINE_METRICS

    body = json.dumps(_dashboard(plan, "pipeline"))
    for metric in PIPELINE_METRICS:
        require(metric in body, f"pipeline dashboard lacks {metric}")
    alarms = {a.inputs.get("metricName") for a in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    require({"DataQualityScore", "PipelineLatency"} <= alarms, "no alarm on data quality / pipeline latency")
    lam = one(plan, "aws:lambda/function:Function")
    require(lam.inputs.get("tracingConfig", {}).get("mode") == "Active", "API Lambda tracing off")
    return "pipeline dashboard (records, latency, quality, Glue, API) with quality/latency alarms to SNS; X-Ray tracing on the API", {"metrics": list(PIPELINE_METRICS)}
