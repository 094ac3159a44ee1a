"""PagerDuty (S20): the program's subscription under Pulumi's mocks, its live probe on a deployed moto
stack, and an alarm reaching a local receiver standing in for PagerDuty through SNS.

Fixtures: tests/fixtures/deployed.py (``deployed_dev``), tests/fixtures/edge.py (``pagerduty_receiver``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING

import pulumi
import pytest

from finks.checks import CheckFailed
from infra.components.base import Common
from infra.components.monitoring import Monitoring, MonitoringArgs
from infra.components.pagerduty import PagerDutyArgs
from infra.criteria import NotMet
from infra.criteria.observability import pagerduty_integration
from infra.plan import Plan, run_under_mocks
from tests.fixtures.edge import alarm_fires, paging
from validation.aws import pagerduty

if TYPE_CHECKING:
    from tests.fixtures.deployed import Deployed
    from tests.fixtures.edge import Receiver

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_aws")

PLAN = "infra.criteria.observability:pagerduty_integration"
PROBE = "validation.aws.pagerduty:pagerduty_subscribed"
KEY = "0123456789abcdef0123456789abcdef"  # the shape of a PagerDuty integration key (not a real one)
COMMON = Common(env="prod", region="ca-central-1", prefix="finks-prod",
                tags={"Project": "finks", "Environment": "prod", "ManagedBy": "pulumi"})


def _monitoring(pd: PagerDutyArgs | None) -> Callable[[], object]:
    def build() -> object:
        out = pulumi.Output.from_input
        return Monitoring("mon", MonitoringArgs(
            COMMON, cluster_name="c", cluster_arn="arn:c", server_service_name="s", db_identifier="db",
            db_max_connections=100, alb_arn_suffix="app/x/1", buckets={"gold": out("finks-prod-gold")}, api_name="api",
            function_name="fn", glue_job_name="job", pagerduty=pd))
    return build


def _plan(pd: PagerDutyArgs | None) -> Plan:
    return run_under_mocks(_monitoring(pd), "prod", config={})


# ---- the program ---------------------------------------------------------------------------------
def test_a_stack_that_pages_subscribes_pagerdutys_events_endpoint_with_the_key_as_a_secret() -> None:
    plan = _plan(PagerDutyArgs("arn:kms", integration_key=KEY))
    message, figures = pagerduty_integration(plan)
    assert figures == {"host": "events.pagerduty.com", "secret": "finks/prod/pagerduty-integration-key"}
    assert KEY not in message
    sub = plan.one("aws:sns/topicSubscription:TopicSubscription", "pagerduty")
    assert sub.inputs["endpoint"] == f"https://events.pagerduty.com/integration/{KEY}/enqueue"
    assert sub.secrets == ("endpoint",)  # the key is encrypted in the state
    assert plan.one("aws:secretsmanager/secret:Secret", "pagerduty").inputs["kmsKeyId"] == "arn:kms"


@pytest.mark.check_fails(PLAN)
def test_criterion_fails_on_a_stack_that_declares_the_secret_but_pages_no_one() -> None:
    plan = _plan(PagerDutyArgs("arn:kms"))
    assert not plan.of_type("aws:sns/topicSubscription:TopicSubscription")
    with pytest.raises(NotMet, match=r"stack prod pages no one: put the PagerDuty integration key in "
                                     r"finks/prod/pagerduty-integration-key and set finks:pagerduty: true"):
        pagerduty_integration(plan)


@pytest.mark.check_fails(PLAN)
def test_criterion_fails_on_a_plain_http_endpoint() -> None:
    plan = _plan(PagerDutyArgs("arn:kms", integration_key=KEY, events_url="http://events.pagerduty.com"))
    with pytest.raises(NotMet, match=r"the PagerDuty subscription \(http\) is not to https://events.pagerduty.com or "
                                     r"https://events.eu.pagerduty.com/integration/<key>/enqueue"):
        pagerduty_integration(plan)


@pytest.mark.check_fails(PLAN)
def test_criterion_fails_when_the_endpoint_with_the_key_is_not_a_secret() -> None:
    import dataclasses

    healthy = _plan(PagerDutyArgs("arn:kms", integration_key=KEY))
    plan = dataclasses.replace(healthy, resources=[dataclasses.replace(r, secrets=()) for r in healthy.resources])
    with pytest.raises(NotMet, match=r"endpoint holds the integration key in the clear: wrap it in pulumi.Output.secret"):
        pagerduty_integration(plan)


@pytest.mark.check_fails(PLAN)
def test_criterion_fails_without_the_keys_secret() -> None:
    with pytest.raises(NotMet, match=r"no Secrets Manager secret for the PagerDuty key"):
        pagerduty_integration(_plan(None))


def test_the_program_declares_the_keys_secret_on_every_stack_and_pages_where_the_stack_file_says() -> None:
    from infra.plan import plan

    for stack in ("dev", "staging", "prod"):
        p = plan(stack)
        (secret,) = [s for s in p.of_type("aws:secretsmanager/secret:Secret") if "pagerduty" in s.name]
        assert secret.inputs["name"] == f"finks/{stack}/pagerduty-integration-key" and secret.inputs["kmsKeyId"]
        assert p.outputs["pagerduty_secret_name"] == secret.inputs["name"]


# ---- the live probe ---------------------------------------------------------------------------------
def _unsubscribe(d: Deployed, arn: str) -> Callable[[], None]:
    return lambda: d.client("sns").unsubscribe(SubscriptionArn=arn)


def test_probe_passes_on_a_stack_that_pages(deployed_dev: Deployed) -> None:
    deployed_dev.undo(_unsubscribe(deployed_dev, paging(deployed_dev, KEY)))
    evidence = pagerduty.pagerduty_subscribed(deployed_dev.ctx())
    assert evidence.figures["pagerduty_endpoint"] == "https://events.pagerduty.com/integration/…/enqueue"
    assert evidence.figures["confirmed"] is True
    assert KEY not in json.dumps(evidence.figures) and KEY not in evidence.message
    assert "confirms every subscription at once" in evidence.message


@pytest.mark.check_fails(PROBE)
def test_probe_fails_on_a_stack_that_pages_no_one(deployed_dev: Deployed) -> None:
    with pytest.raises(CheckFailed, match=r"^SNS topic finks-dev-alerts has no PagerDuty subscription: alarms page no "
                                          r"one; put the service's integration key in finks/dev/pagerduty-integration-key, "
                                          r"set finks:pagerduty: true in infra/Pulumi.dev.yaml"):
        pagerduty.pagerduty_subscribed(deployed_dev.ctx())


@pytest.mark.check_fails(PROBE)
def test_probe_fails_on_the_events_v2_route_sns_cannot_page_through(deployed_dev: Deployed) -> None:
    sns = deployed_dev.client("sns")
    arn = sns.subscribe(TopicArn=deployed_dev.outputs["alerts_topic_arn"], Protocol="https",
                        Endpoint="https://events.pagerduty.com/v2/enqueue", ReturnSubscriptionArn=True)["SubscriptionArn"]
    deployed_dev.undo(_unsubscribe(deployed_dev, arn))
    with pytest.raises(CheckFailed, match=r"^the PagerDuty subscription posts to https://events.pagerduty.com/v2/enqueue: "
                                          r"SNS can only page through /integration/<integration key>/enqueue") as exc:
        pagerduty.pagerduty_subscribed(deployed_dev.ctx())
    assert len(exc.value.evidence.figures["problems"]) == 1


@pytest.mark.check_fails(PROBE)
def test_probe_fails_when_the_subscription_delivers_raw_messages(deployed_dev: Deployed) -> None:
    arn = paging(deployed_dev, KEY)
    deployed_dev.undo(_unsubscribe(deployed_dev, arn))
    deployed_dev.client("sns").set_subscription_attributes(SubscriptionArn=arn, AttributeName="RawMessageDelivery",
                                                           AttributeValue="true")
    with pytest.raises(CheckFailed, match=r"delivers raw messages: PagerDuty reads the alarm from SNS's envelope"):
        pagerduty.pagerduty_subscribed(deployed_dev.ctx())


@pytest.mark.check_fails(PROBE)
def test_probe_fails_when_the_keys_secret_is_scheduled_for_deletion(deployed_dev: Deployed) -> None:
    deployed_dev.undo(_unsubscribe(deployed_dev, paging(deployed_dev, KEY)))
    sm, name = deployed_dev.client("secretsmanager"), deployed_dev.outputs["pagerduty_secret_name"]
    deployed_dev.undo(lambda: sm.restore_secret(SecretId=name))
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    with pytest.raises(CheckFailed, match=r"^secret finks/dev/pagerduty-integration-key \(the PagerDuty key\) is scheduled "
                                          r"for deletion"):
        pagerduty.pagerduty_subscribed(deployed_dev.ctx())


# ---- an alarm reaches PagerDuty ------------------------------------------------------------------------
def test_an_alarm_in_alarm_reaches_the_stand_in_for_pagerduty_through_sns(deployed_dev: Deployed,
                                                                         pagerduty_receiver: Receiver) -> None:
    """The program's subscription (pointed at the receiver) on the deployed alert topic; the alarm's
    notification published as CloudWatch does (the emulator runs no alarm action); SNS delivers it."""
    cw = deployed_dev.client("cloudwatch")
    alarm = deployed_dev.outputs["alarms"]["data-quality"]
    deployed_dev.undo(lambda: cw.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="test over"))
    deployed_dev.undo(_unsubscribe(deployed_dev, paging(deployed_dev, KEY, events_url=pagerduty_receiver.url)))
    sent = alarm_fires(deployed_dev, alarm)
    (path, envelope), = pagerduty_receiver.wait()
    assert path == f"/integration/{KEY}/enqueue"
    assert envelope["Type"] == "Notification" and envelope["TopicArn"] == deployed_dev.outputs["alerts_topic_arn"]
    assert envelope["Subject"] == f'ALARM: "{alarm}" in Canada (Central)'
    message = json.loads(envelope["Message"])
    assert message == sent and message["NewStateValue"] == "ALARM" and message["AlarmName"] == alarm
    assert cw.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"] == "ALARM"


def test_the_key_is_read_from_the_stacks_secret_at_deploy() -> None:
    """`pulumi up` reads the key with Secrets Manager's GetSecretValue (a data source): mocks of the
    test's own answer it, as the dry plan's answer no data source."""
    from pulumi.runtime import settings as rt_settings
    from pulumi.runtime.sync_await import _sync_await

    from infra.components.pagerduty import integration_key

    asked: list[str] = []

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:  # type: ignore[type-arg]
            return f"{args.name}-id", dict(args.inputs)

        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list]:  # type: ignore[type-arg]
            assert args.token == "aws:secretsmanager/getSecretVersion:getSecretVersion"
            asked.append(args.args["secretId"])
            return {"secretId": args.args["secretId"], "secretString": KEY, "versionStages": ["AWSCURRENT"]}, []

    loop = asyncio.new_event_loop()       # Pulumi's runtime runs on the thread's current loop
    asyncio.set_event_loop(loop)
    try:
        rt_settings.ROOT.set(None)
        pulumi.runtime.set_mocks(Mocks(), project="finks", stack="prod", preview=False)
        key = integration_key(COMMON)
        assert _sync_await(key.future()) == KEY and _sync_await(key.is_secret())
        assert asked == ["finks/prod/pagerduty-integration-key"]
    finally:
        asyncio.set_event_loop(None)
        loop.close()
