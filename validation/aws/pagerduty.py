"""Live probe for S20's PagerDuty integration: the alert topic pages PagerDuty.

What the program makes when a stack pages (infra/components/pagerduty.py): an HTTPS
subscription of the alert topic to PagerDuty's Events API host,
``/integration/<key>/enqueue``, confirmed by PagerDuty, delivering SNS's envelope (not raw:
PagerDuty reads the alarm from it), with the key kept in the secret the program declares. The
endpoint holds the key: it is reported with the key masked, and the secret is described
(it holds a current value), never read.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from finks.checks import CheckContext, Evidence
from validation.aws.live import Live


def masked(endpoint: str) -> str:
    """The endpoint without its key: https://events.pagerduty.com/integration/…/enqueue."""
    parts = urlsplit(endpoint)
    path = parts.path.split("/")
    if len(path) == 4 and path[1] == "integration":
        path[2] = "…"
    return f"{parts.scheme}://{parts.netloc}{'/'.join(path)}"


def _endpoint_problems(endpoint: str) -> list[str]:
    from infra.components.pagerduty import EVENTS_URLS

    parts = urlsplit(endpoint)
    path = parts.path.split("/")
    if f"{parts.scheme}://{parts.netloc}" not in EVENTS_URLS:
        return [f"the PagerDuty subscription posts to {masked(endpoint)}, not PagerDuty's Events API "
                f"({' or '.join(EVENTS_URLS)}) over https"]
    if len(path) != 4 or path[1] != "integration" or path[3] != "enqueue" or not path[2]:
        return [f"the PagerDuty subscription posts to {masked(endpoint)}: SNS can only page through "
                "/integration/<integration key>/enqueue (the /v2/enqueue route wants the key in the body)"]
    return []


def _secret(live: Live) -> tuple[str, list[str]]:
    from botocore.exceptions import ClientError

    from infra.components.pagerduty import SECRET_SUFFIX

    name = str(live.output("pagerduty_secret_name") or f"{live.config.prefix.replace('-', '/', 1)}/{SECRET_SUFFIX}")
    try:
        secret = live.client("secretsmanager").describe_secret(SecretId=name)
    except ClientError:
        return name, [f"secret {name} (the PagerDuty key) does not exist"]
    if secret.get("DeletedDate"):
        return name, [f"secret {name} (the PagerDuty key) is scheduled for deletion"]
    if not any("AWSCURRENT" in stages for stages in (secret.get("VersionIdsToStages") or {}).values()):
        return name, [f"secret {name} holds no key: put it with `aws secretsmanager put-secret-value`"]
    return name, []


def pagerduty_subscribed(ctx: CheckContext) -> Evidence:
    """The alert topic has a confirmed HTTPS subscription to PagerDuty's Events API
    (/integration/<key>/enqueue, SNS envelope), and the key's secret holds a value."""
    from botocore.exceptions import ClientError

    live = Live.of(ctx)
    arn = live.topic_arn()
    topic = arn.rsplit(":", 1)[-1]
    sns = live.client("sns")
    try:
        subs = [s for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=arn)
                for s in page.get("Subscriptions", [])]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NotFound", "NotFoundException"):
            raise live.fail([f"SNS topic {topic} does not exist"], {"topic": arn}) from None
        raise
    secret, problems = _secret(live)
    paging = [s for s in subs if "pagerduty.com" in (urlsplit(str(s.get("Endpoint", ""))).hostname or "")]
    figures: dict[str, Any] = {"topic": arn, "secret": secret,
                               "subscriptions": [{"protocol": s.get("Protocol"), "endpoint": masked(str(s.get("Endpoint")))}
                                                 for s in paging]}
    remedy = (f"put the service's integration key in {secret}, set finks:pagerduty: true in infra/Pulumi.{ctx.env}.yaml "
              f"and run `finks infra up --env {ctx.env} --yes`")
    if not paging:
        raise live.fail([f"SNS topic {topic} has no PagerDuty subscription: alarms page no one", *problems], figures, remedy)
    sub = paging[0]
    endpoint = str(sub.get("Endpoint"))
    problems = _endpoint_problems(endpoint) + problems
    if sub.get("Protocol") != "https":
        problems.append(f"the PagerDuty subscription of {topic} is {sub.get('Protocol')}, not https")
    confirmed = str(sub.get("SubscriptionArn", "")).startswith("arn:")
    attributes = sns.get_subscription_attributes(SubscriptionArn=sub["SubscriptionArn"])["Attributes"] if confirmed else {}
    if not confirmed or attributes.get("PendingConfirmation") == "true":
        problems.append(f"the PagerDuty subscription of {topic} is not confirmed: PagerDuty confirms a valid "
                        "integration key by itself, so check the key in the secret")
    if attributes.get("RawMessageDelivery") == "true":
        problems.append(f"the PagerDuty subscription of {topic} delivers raw messages: PagerDuty reads the alarm "
                        "from SNS's envelope")
    figures.update(pagerduty_endpoint=masked(endpoint), confirmed=confirmed)
    if problems:
        raise live.fail(problems, figures, remedy)
    return live.evidence(f"SNS topic {topic} pages PagerDuty: confirmed https subscription to {masked(endpoint)}; "
                         f"the key is in {secret}", figures,
                         ["the emulator confirms every subscription at once and pages no one: delivery is shown by "
                          "the test receiver standing in for PagerDuty"])
