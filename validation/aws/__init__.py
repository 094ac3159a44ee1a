"""Live probes: what is really deployed on an AWS environment, read through the AWS APIs.

One module per area — ``network`` (VPC, subnets, routes, NAT, security groups,
VPC endpoints), ``storage`` (lake buckets, the FMP secret), ``iam`` (roles and
their policies), ``ecs`` (cluster, task definitions, ECR, log groups),
``database`` (RDS), ``monitoring`` (dashboards, alarms, SNS, custom metrics),
``security`` (GuardDuty, AWS Config). Each probe is a check
(``finks.checks`` contract) listed with ``envs: [dev, staging, prod]`` under
its criterion in ``sessions/``; it gives *verified* evidence.

A probe finds its resources through :mod:`validation.aws.live`: the stack
outputs `finks infra up` recorded, else the tags the Pulumi program sets
(``Project``, ``Environment``) — never an ARN written in a check. It reaches
AWS through ``core.aws`` (so ``AWS_ENDPOINT_URL`` points it at an emulator),
and every API call it makes is one the read-only policy in
``docs/running-on-aws.md`` allows (``validation.aws.policy`` generates it).

:mod:`validation.aws.seed` stands a "deployed" stack up in a moto server
from the program's own dry plan (one handler per resource type:
``seeding``, ``seed_network``, ``seed_platform``): the tests' fixture, and a
way to try `finks verify --env dev` without an AWS account.
"""
