"""A "deployed" stack in an AWS emulator, built from the Pulumi program's own dry plan.

The dry plan (``infra.plan``) lists every resource the program registers,
with its inputs; :func:`seed` creates each one it knows in a moto server
through boto3, so the emulator holds what `pulumi up` would have made and the
fixture can never drift from the program. References between resources come
out of the mocks as fake ids and ARNs (``<name>-id``,
``arn:aws:<service>:…:<name>``); each is replaced by the id or ARN the
emulator gave the resource it names. One handler per resource type does the
creating (:mod:`validation.aws.seeding` and the two modules of handlers it names).

Some types are not seeded (the ALB, API Gateway, Lambda, ECS services, ACM):
they are listed in :attr:`Seeded.skipped`. :func:`activity` then adds what a
running platform leaves behind and no resource definition describes: the FMP
key's value, log events in the ECS log groups, the pipeline's custom metrics.

    python -m validation.aws.seed --env dev     # a moto server holding a deployed dev, until Ctrl-C

prints the variables that point `finks verify --env dev` at it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

# The handlers register themselves with the registry when imported.
from validation.aws import seed_edge, seed_network, seed_platform, seed_services  # noqa: F401
from validation.aws.seeding import HANDLERS, Seeder, mock_arn
from validation.emulator import moto_server

if TYPE_CHECKING:
    from core.settings import Settings
    from infra.plan import Plan, PlannedResource

ALERT_EMAIL = "alerts@example.com"  # the fixture's subscriber: the stack files set none


@dataclass
class Seeded:
    """What :func:`seed` made: the stack's outputs with real ids, and what it left out."""

    outputs: dict[str, Any] = field(default_factory=dict)
    created: dict[str, int] = field(default_factory=dict)  # resource type -> count
    skipped: dict[str, str] = field(default_factory=dict)  # resource name -> why
    notes: list[str] = field(default_factory=list)  # what the emulator refused in the plan's order
    plan: Any = field(default=None, repr=False)  # what was seeded from
    _seeder: Any = field(default=None, repr=False)

    def again(self, name: str) -> None:
        """Create the plan's resource ``name`` once more (after a test broke it by deleting it)."""
        r = next(r for r in self.plan.custom if r.name == name)
        _create(self._seeder, r, self)


def deployed_plan(settings: Settings, *, alert_email: str | None = ALERT_EMAIL) -> Plan:
    """The dry plan of the environment's stack, with an alert subscriber when ``alert_email`` is given.

    The stack files name no alert e-mail (it is personal), so the program plans no
    SNS subscription; a deployed stack has one (a person or a pager), so the fixture does too.
    """
    import runpy

    from core.environments import infra_stack
    from infra.config import INFRA_DIR, load, read_stack_file
    from infra.plan import plan_for, run_under_mocks

    if alert_email is None:
        return plan_for(settings)
    stack = infra_stack(settings.env)
    cfg = load(stack, settings=settings)
    config = {"finks:project": cfg.project, "aws:region": cfg.region}
    for key, value in read_stack_file(stack).items():
        config[key] = value if isinstance(value, str) else json.dumps(value)
    config["finks:alertEmail"] = alert_email
    return run_under_mocks(lambda: runpy.run_path(str(INFRA_DIR / "__main__.py"), run_name="__main__"), stack, config)


# ---- the seeding -----------------------------------------------------------------------
# Types the emulator is not asked to hold: nothing the probes read, or moto cannot (yet) model them.
NOT_SEEDED = {
    "aws:kms/alias:Alias": "the key's alias names an id the dry plan leaves unknown",
    "aws:acm/certificate:Certificate": "not read by a probe",
    "aws:lb/loadBalancer:LoadBalancer": "not read by a probe",
    "aws:lb/targetGroup:TargetGroup": "not read by a probe",
    "aws:lb/listener:Listener": "not read by a probe",
    "aws:ecs/service:Service": "its load balancer is not seeded",
    "aws:athena/workgroup:Workgroup": "not read by a probe",
}


def seed(plan: Plan, settings: Settings, client: Callable[[str], Any] | None = None) -> Seeded:
    """Create every resource of ``plan`` this module knows, in dependency order (the plan's)."""
    from botocore.exceptions import ClientError

    from core.aws import client as aws_client

    seeder = Seeder(settings, client or (lambda service: aws_client(settings, service)))
    seeder.account = seeder.client("sts").get_caller_identity()["Account"]
    result = Seeded(plan=plan, _seeder=seeder)
    retry: list[tuple[PlannedResource, ClientError]] = []
    for r in plan.custom:
        if r.type not in HANDLERS:
            result.skipped[r.name] = NOT_SEEDED.get(r.type, f"{r.type} has no seeding handler")
            continue
        try:
            _create(seeder, r, result)
        except ClientError as exc:
            retry.append((r, exc))  # AWS refused it for now: once, after everything else
    for r, first in retry:
        try:
            _create(seeder, r, result)
        except Exception as exc:  # noqa: BLE001 - say which resource, then let it go
            raise RuntimeError(f"seeding {r.type} {r.name} failed: {type(exc).__name__}: {exc}") from exc
        # AWS would refuse it in the program's own order: a depends_on the program lacks.
        result.notes.append(f"{r.name} ({r.type}) was refused until later resources existed: {first}")
    result.outputs = seeder.refs.resolve(plan.outputs)
    return result


def _create(seeder: Seeder, r: PlannedResource, result: Seeded) -> None:
    made = HANDLERS[r.type](seeder, r, seeder.refs.resolve(r.inputs))
    result.created[r.type] = result.created.get(r.type, 0) + 1
    if made is not None:
        real_id, real_arn = made
        seeder.refs.add(f"{r.name}-id", real_id)
        seeder.refs.add(mock_arn(r), real_arn)


def activity(settings: Settings, seeded: Seeded, client: Callable[[str], Any] | None = None) -> None:
    """What a running platform leaves behind: the FMP (and PagerDuty) keys, container logs, the pipeline's
    metrics, its lake, its transforms' artifacts and a run's trace."""
    from core.aws import client as aws_client
    from flows import metrics

    make = client or (lambda service: aws_client(settings, service))
    out = seeded.outputs
    if out.get("fmp_secret_name"):
        make("secretsmanager").put_secret_value(SecretId=out["fmp_secret_name"], SecretString="fixture-not-a-real-key")
    logs = make("logs")
    now = int(time.time() * 1000)
    for task, group in (out.get("log_groups") or {}).items():
        stream = f"{task}/{task}/seeded"
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        logs.put_log_events(logGroupName=group, logStreamName=stream,
                            logEvents=[{"timestamp": now, "message": f"{task} started"}])
    sent = metrics.emit(settings, [metrics.records_processed("transformation", 120, "quotes"),
                                   metrics.pipeline_latency("pipeline", 312.5),
                                   metrics.data_quality_score(99, 100)])
    if not sent["cloudwatch"]:
        raise RuntimeError(f"the pipeline's metrics did not reach the emulator: {sent.get('error')}")
    if out.get("pagerduty_secret_name") and _pages(seeded):  # the operator's key, put before paging was on
        make("secretsmanager").put_secret_value(SecretId=out["pagerduty_secret_name"],
                                                SecretString="fixture-not-a-real-integration-key")
    # What the pipeline leaves: the lake (bronze, silver, reports), the transforms (dbt, Glue, Athena,
    # quality records), one run's trace in X-Ray. Imported here: each imports this module back.
    from validation.aws import seed_lake, seed_transform

    seed_lake.activity(settings, seeded, make)
    seed_transform.activity(settings, seeded, make)
    seed_edge.activity(settings, make)


def _pages(seeded: Seeded) -> bool:
    """Whether the seeded plan subscribes PagerDuty to the alert topic (prod's stack file says so)."""
    return any("pagerduty.com/" in str(r.inputs.get("endpoint", ""))
               for r in seeded.plan.custom if r.type == "aws:sns/topicSubscription:TopicSubscription")


def reset(url: str) -> None:
    """Empty the emulator (every service, every region)."""
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=30).close()


def main(argv: list[str] | None = None) -> int:
    import argparse
    import os

    from core.settings import load_settings
    from infra.deploy import outputs_path, record_outputs

    parser = argparse.ArgumentParser(prog="python -m validation.aws.seed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="dev", choices=("dev", "staging", "prod"))
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    import signal
    import sys

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop the emulator on `kill` as on Ctrl-C
    with moto_server(args.port) as url:
        os.environ.update(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
                          AWS_SECRET_ACCESS_KEY=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"))
        settings = load_settings(env=args.env)
        seeded = seed(deployed_plan(settings), settings)
        activity(settings, seeded)
        record_outputs(args.env, seeded.outputs)
        print(f"a deployed {args.env} stack is in the moto server at {url}; outputs in {outputs_path(args.env)}")
        print(f"  export AWS_ENDPOINT_URL={url} AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing")
        print(f"  finks verify s3 --env {args.env}")
        print("Ctrl-C stops it.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    raise SystemExit(main())
