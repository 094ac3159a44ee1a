"""PagerDuty: alarms page the on-call through PagerDuty's Amazon CloudWatch integration.

How it is wired, and why:

* The **key's secret** ``<project>/<env>/pagerduty-integration-key`` is declared on every
  stack (by :class:`~infra.components.monitoring.Monitoring`, KMS-encrypted, tagged) and left
  empty: the operator puts the service's integration key in it out of band
  (``aws secretsmanager put-secret-value --secret-id finks/prod/pagerduty-integration-key
  --secret-string <key>``), the same way as the FMP key. No key is ever in a file.
* **Paging is switched on per stack file** with ``finks:pagerduty: true``, once the key is
  in the secret (like ``finks:alertEmail``, a stack without it subscribes no one). Then
  `pulumi up` reads the key from the secret (:func:`integration_key`) and subscribes the
  alert topic's HTTPS endpoint ``https://events.pagerduty.com/integration/<key>/enqueue``.
  Switching it on before the key is there stops `pulumi up` at that read, naming the secret.
* The endpoint is PagerDuty's **Events API host** for SNS: SNS posts its notification
  (the CloudWatch alarm's JSON) there and PagerDuty turns ``ALARM``/``OK`` into
  trigger/resolve. The Events API v2 ``/v2/enqueue`` route wants the routing key in the
  body, which SNS cannot send; this route carries it in the path. PagerDuty confirms SNS
  subscriptions by itself (``endpoint_auto_confirms``). EU accounts use
  ``https://events.eu.pagerduty.com`` (:data:`EVENTS_URLS`).
* The endpoint holds the key, so it is a Pulumi secret (encrypted in the state) and is
  never a stack output.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components.base import Common

EVENTS_URL = "https://events.pagerduty.com"
EVENTS_URLS = (EVENTS_URL, "https://events.eu.pagerduty.com")  # PagerDuty's US and EU service regions
SECRET_SUFFIX = "pagerduty-integration-key"


@dataclass(frozen=True)
class PagerDutyArgs:
    """What Monitoring needs to page: the key for its secret, the key itself when the stack pages."""

    kms_key_arn: pulumi.Input[str]
    integration_key: pulumi.Input[str] | None = None  # None: declare the secret, page no one
    events_url: str = EVENTS_URL


def secret_name(c: Common) -> str:
    return f"{c.project_path}/{SECRET_SUFFIX}"


def integration_url(events_url: str, key: pulumi.Input[str]) -> pulumi.Output[str]:
    """The HTTPS endpoint SNS posts to: the key is in its path, so the result is a secret."""
    return pulumi.Output.secret(pulumi.Output.concat(events_url.rstrip("/"), "/integration/", key, "/enqueue"))


def integration_key(c: Common) -> pulumi.Output[str]:
    """The key the operator put in the stack's secret, read at `pulumi up` (a data source)."""
    version = aws.secretsmanager.get_secret_version_output(secret_id=secret_name(c))
    return pulumi.Output.secret(version.secret_string)


def key_secret(name: str, c: Common, kms_key_arn: pulumi.Input[str],
               opts: pulumi.ResourceOptions | None = None) -> aws.secretsmanager.Secret:
    return aws.secretsmanager.Secret(
        name,
        name=secret_name(c),
        description="PagerDuty integration key (Amazon CloudWatch integration); set with "
                    "`aws secretsmanager put-secret-value` (never in files), then finks:pagerduty: true",
        kms_key_id=kms_key_arn,
        recovery_window_in_days=7 if c.env != "prod" else 30,
        tags=c.tags,
        opts=opts,
    )


def subscription(name: str, topic_arn: pulumi.Input[str], key: pulumi.Input[str], events_url: str = EVENTS_URL,
                 opts: pulumi.ResourceOptions | None = None) -> aws.sns.TopicSubscription:
    """The alert topic's subscription for PagerDuty (https; http only for a local stand-in)."""
    return aws.sns.TopicSubscription(
        name,
        topic=topic_arn,
        protocol=events_url.split(":", 1)[0],
        endpoint=integration_url(events_url, key),
        endpoint_auto_confirms=True,
        opts=opts,
    )
