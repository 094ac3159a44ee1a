"""Live probes for S11 and S20: dashboards, alarms, the alert topic, the pipeline's custom metrics."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from finks.checks import CheckContext, Evidence
from validation.aws.live import Live

METRICS_WINDOW_HOURS = 24


def _widgets(body: str) -> list[dict[str, Any]]:
    return [w for w in json.loads(body or "{}").get("widgets", []) if w.get("type") == "metric"]


def _title(widget: dict[str, Any]) -> str:
    return str(widget.get("properties", {}).get("title", ""))


def _planned_titles(live: Live, key: str) -> list[str]:
    """The widget titles the program gives dashboard ``key`` (platform | pipeline)."""
    name = live.dashboards().get(key)
    for r in live.plan.of_type("aws:cloudwatch/dashboard:Dashboard"):
        if r.inputs.get("dashboardName") == name or r.name.endswith(f"-{key}"):
            return [_title(w) for w in _widgets(r.inputs.get("dashboardBody", ""))]
    return []


def _dashboard(live: Live, key: str) -> tuple[str, list[dict[str, Any]]]:
    from botocore.exceptions import ClientError

    name = live.dashboards().get(key)
    if not name:
        raise live.fail([f"no {key} dashboard found ({live.found_by})"], {})
    try:
        body = live.client("cloudwatch").get_dashboard(DashboardName=name)["DashboardBody"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("ResourceNotFound", "ResourceNotFoundException"):
            raise live.fail([f"dashboard {name} does not exist"], {"dashboard": name}) from None
        raise
    return name, _widgets(body)


def _metric_rows(widget: dict[str, Any]) -> list[list[Any]]:
    return [row for row in widget.get("properties", {}).get("metrics", []) if row and isinstance(row[0], str)]


def dashboards(ctx: CheckContext) -> Evidence:
    """The platform dashboard has every widget the program names, graphs ECS, RDS and S3 metrics,
    and its metrics point at this stack's cluster, database and buckets."""
    live = Live.of(ctx)
    name, widgets = _dashboard(live, "platform")
    titles = [_title(w) for w in widgets]
    problems = [f"dashboard {name} lacks the widget '{t}'" for t in _planned_titles(live, "platform") if t not in titles]
    namespaces = {row[0] for w in widgets for row in _metric_rows(w)}
    for area, spaces in (("ECS", {"AWS/ECS", "ECS/ContainerInsights"}), ("RDS", {"AWS/RDS"}), ("S3", {"AWS/S3"})):
        if not namespaces & spaces:
            problems.append(f"dashboard {name} graphs no {area} metric")
    # Each dimension value must name a resource of this stack: a widget on a deleted cluster shows nothing.
    ours = {"ClusterName": {live.cluster_name()}, "DBInstanceIdentifier": {live.db_identifier()},
            "BucketName": set(live.buckets().values())}
    for w in widgets:
        for row in _metric_rows(w):
            dims = dict(zip(row[2::2], row[3::2], strict=False))
            for dim, values in ours.items():
                if dim in dims and dims[dim] not in values:
                    problems.append(f"dashboard {name}, widget '{_title(w)}': {dim}={dims[dim]} is not this stack's "
                                    f"({', '.join(sorted(values))})")
    figures = {"dashboard": name, "widgets": titles, "namespaces": sorted(namespaces)}
    if problems:
        raise live.fail(problems, figures)
    return live.evidence(f"dashboard {name}: {len(titles)} widgets ({', '.join(titles)}) on this stack's ECS, RDS, S3",
                         figures, ["the body is stored, not rendered"])


def _topic(live: Live) -> tuple[str, list[dict[str, Any]]]:
    """The alert topic and its subscriptions; a failure when the topic is gone."""
    from botocore.exceptions import ClientError

    arn = live.topic_arn()
    sns = live.client("sns")
    try:
        sns.get_topic_attributes(TopicArn=arn)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NotFound", "NotFoundException"):
            raise live.fail([f"SNS topic {arn.rsplit(':', 1)[-1]} does not exist"], {"topic": arn}) from None
        raise
    subs: list[dict[str, Any]] = []
    for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=arn):
        subs += page.get("Subscriptions", [])
    return arn, subs


def alerts_topic_subscribed(ctx: CheckContext) -> Evidence:
    """The alert topic exists and someone listens: at least one confirmed subscription."""
    live = Live.of(ctx)
    arn, subs = _topic(live)
    confirmed = [s for s in subs if s.get("SubscriptionArn", "").startswith("arn:")]
    figures = {"topic": arn, "subscriptions": [{"protocol": s.get("Protocol"), "confirmed": s in confirmed} for s in subs]}
    name = arn.rsplit(":", 1)[-1]
    if not confirmed:
        pending = " (only pending confirmations)" if subs else ""
        raise live.fail([f"SNS topic {name} has no confirmed subscription{pending}: alarms alert nobody"], figures,
                        f"set finks:alertEmail in infra/Pulumi.{ctx.env}.yaml and run `finks infra up --env {ctx.env} "
                        "--yes`, then confirm the e-mail (or subscribe the on-call pager's endpoint)")
    return live.evidence(f"SNS topic {name}: {len(confirmed)} confirmed subscription(s) "
                         f"({', '.join(sorted({str(s.get('Protocol')) for s in confirmed}))})", figures,
                         ["subscriptions are recorded; no message is delivered"])


def alarms_wired(ctx: CheckContext) -> Evidence:
    """Every alarm the program declares exists with its actions on and notifies the alert topic,
    and stopped ECS tasks reach the topic through an EventBridge rule (ECS has no task-failure metric)."""
    live = Live.of(ctx)
    topic, _ = _topic(live)
    names = live.alarms()
    declared = {r.inputs["name"] for r in live.plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    problems = [f"alarm {n} is not deployed" for n in sorted(declared - set(names.values()))]
    found = {a["AlarmName"]: a for a in live.client("cloudwatch").describe_alarms(
        AlarmNames=sorted(names.values())).get("MetricAlarms", [])} if names else {}
    for key, name in sorted(names.items()):
        alarm = found.get(name)
        if alarm is None:
            problems.append(f"alarm {name} ({key}) does not exist")
            continue
        if not alarm.get("ActionsEnabled", True):
            problems.append(f"alarm {name} has its actions disabled")
        if topic not in alarm.get("AlarmActions", []):
            problems.append(f"alarm {name} does not notify the alert topic ({alarm.get('AlarmActions') or 'no action'})")
    events = live.client("events")
    rules = events.list_rule_names_by_target(TargetArn=topic).get("RuleNames", [])
    ecs_rules = [r for r in rules if "aws.ecs" in (events.describe_rule(Name=r).get("EventPattern") or "")]
    if not ecs_rules:
        problems.append(f"no EventBridge rule sends stopped ECS tasks to {topic.rsplit(':', 1)[-1]}: task failures alert nobody")
    figures = {"topic": topic, "alarms": sorted(found), "ecs_task_failure_rules": ecs_rules}
    if problems:
        raise live.fail(problems, figures)
    return live.evidence(f"{len(found)} alarms notify {topic.rsplit(':', 1)[-1]}; ECS task failures via {', '.join(ecs_rules)}",
                         figures, ["alarms are stored; their state is not evaluated from metrics"])


def custom_metrics_datapoints(ctx: CheckContext) -> Evidence:
    """Each custom metric of the pipeline (Finks/Pipeline: records processed, latency, data
    quality) has datapoints for this environment in the last day: the pipeline runs and reports."""
    from infra.components.iam import METRICS_NAMESPACE
    from infra.components.monitoring import PIPELINE_METRICS

    live = Live.of(ctx)
    cw = live.client("cloudwatch")
    end = dt.datetime.now(dt.UTC)
    start = end - dt.timedelta(hours=METRICS_WINDOW_HOURS)
    env_dim = {"Name": "Environment", "Value": ctx.env}
    seen: dict[str, Any] = {}
    problems = []
    for metric, stat in PIPELINE_METRICS.items():
        series = cw.list_metrics(Namespace=METRICS_NAMESPACE, MetricName=metric, Dimensions=[env_dim]).get("Metrics", [])
        points = 0
        for s in series:
            stats = cw.get_metric_statistics(Namespace=METRICS_NAMESPACE, MetricName=metric, Dimensions=s["Dimensions"],
                                             StartTime=start, EndTime=end, Period=3600, Statistics=["SampleCount"])
            points += int(sum(p.get("SampleCount", 0) for p in stats.get("Datapoints", [])))
        seen[metric] = {"series": len(series), "datapoints": points, "statistic": stat}
        if not points:
            problems.append(f"no {metric} datapoint in {METRICS_NAMESPACE} (Environment={ctx.env}) in the last "
                            f"{METRICS_WINDOW_HOURS} h")
    figures = {"namespace": METRICS_NAMESPACE, "metrics": seen, "window_hours": METRICS_WINDOW_HOURS}
    if problems:
        raise live.fail(problems, figures, f"run the daily pipeline on {ctx.env} (`finks pipeline run --env {ctx.env}`) "
                        "and check its task role may cloudwatch:PutMetricData in Finks/Pipeline")
    return live.evidence(f"{METRICS_NAMESPACE} on {ctx.env}: " + ", ".join(f"{m} {v['datapoints']} datapoints"
                                                                          for m, v in seen.items())
                         + f" in the last {METRICS_WINDOW_HOURS} h", figures)


def pipeline_dashboard(ctx: CheckContext) -> Evidence:
    """The pipeline dashboard graphs every custom metric (and the other widgets the program names),
    and the data-quality and latency alarms on those metrics notify the alert topic."""
    from infra.components.iam import METRICS_NAMESPACE
    from infra.components.monitoring import PIPELINE_METRICS

    live = Live.of(ctx)
    name, widgets = _dashboard(live, "pipeline")
    titles = [_title(w) for w in widgets]
    problems = [f"dashboard {name} lacks the widget '{t}'" for t in _planned_titles(live, "pipeline") if t not in titles]
    graphed = json.dumps(widgets)
    for metric in PIPELINE_METRICS:
        if metric not in graphed:
            problems.append(f"dashboard {name} does not graph {metric}")
    topic, _ = _topic(live)
    alarms = live.client("cloudwatch").describe_alarms(AlarmNamePrefix=f"{live.config.prefix}-").get("MetricAlarms", [])
    on_metrics = {a["MetricName"]: a for a in alarms if a.get("Namespace") == METRICS_NAMESPACE}
    for metric in ("DataQualityScore", "PipelineLatency"):
        alarm = on_metrics.get(metric)
        if alarm is None:
            problems.append(f"no alarm watches {metric} ({METRICS_NAMESPACE})")
        elif topic not in alarm.get("AlarmActions", []):
            problems.append(f"alarm {alarm['AlarmName']} on {metric} does not notify the alert topic")
    figures = {"dashboard": name, "widgets": titles, "pipeline_alarms": sorted(a["AlarmName"] for a in on_metrics.values())}
    if problems:
        raise live.fail(problems, figures)
    return live.evidence(f"dashboard {name} graphs {', '.join(PIPELINE_METRICS)}; alarms "
                         f"{', '.join(figures['pipeline_alarms'])} notify {topic.rsplit(':', 1)[-1]}", figures,
                         ["the body is stored, not rendered"])
