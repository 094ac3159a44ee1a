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


def pagerduty_integration(plan: Plan) -> Result:
    """The alert topic pages PagerDuty: an auto-confirming HTTPS subscription on PagerDuty's Events API
    host (the Amazon CloudWatch integration's /integration/<key>/enqueue), its key in a KMS-encrypted
    secret the program declares (infra/components/pagerduty.py)."""
    from infra.components.pagerduty import EVENTS_URLS, SECRET_SUFFIX

    topic = one(plan, "aws:sns/topic:Topic")
    secrets = [s for s in plan.of_type("aws:secretsmanager/secret:Secret")
               if str(s.inputs.get("name", "")).endswith(f"/{SECRET_SUFFIX}")]
    require(len(secrets) == 1, f"no Secrets Manager secret for the PagerDuty key (*/{SECRET_SUFFIX})")
    secret = secrets[0]
    require(bool(secret.inputs.get("kmsKeyId")), f"secret {secret.inputs.get('name')} is not encrypted with the platform key")
    on_topic = [s for s in plan.of_type("aws:sns/topicSubscription:TopicSubscription")
                if str(s.inputs.get("topic", "")).endswith(f":{topic.name}")]
    paging = [s for s in on_topic if "pagerduty.com/" in str(s.inputs.get("endpoint", ""))]
    require(bool(paging), f"stack {plan.stack} pages no one: put the PagerDuty integration key in {secret.inputs.get('name')} "
            f"and set finks:pagerduty: true in infra/Pulumi.{plan.stack}.yaml",
            subscriptions=[s.inputs.get("protocol") for s in on_topic])
    sub = paging[0]
    endpoint = str(sub.inputs.get("endpoint"))
    require("endpoint" in sub.secrets, "the PagerDuty subscription's endpoint holds the integration key in the clear: "
            "wrap it in pulumi.Output.secret so the state keeps it encrypted")
    path = endpoint.split("/")
    require(sub.inputs.get("protocol") == "https" and "/".join(path[:3]) in EVENTS_URLS and len(path) == 6
            and path[3] == "integration" and bool(path[4]) and path[5] == "enqueue",
            f"the PagerDuty subscription ({sub.inputs.get('protocol')}) is not to "
            f"{' or '.join(EVENTS_URLS)}/integration/<key>/enqueue")
    require(sub.inputs.get("endpointAutoConfirms") is True,
            "the PagerDuty subscription does not expect PagerDuty to confirm it (endpointAutoConfirms)")
    host = endpoint.split("/")[2]
    return (f"{topic.inputs.get('name')} pages PagerDuty over https ({host}/integration/…/enqueue, auto-confirmed); "
            f"key in {secret.inputs.get('name')} (KMS)", {"host": host, "secret": secret.inputs.get("name")})
