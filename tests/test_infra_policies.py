"""Each policy rule catches a bad resource planned under Pulumi's mocks, and passes a good one."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from infra.plan import Plan, run_under_mocks
from infra.policies import RULES, check

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_aws")

TAGS = {"Project": "finks", "Environment": "dev", "ManagedBy": "pulumi"}


def _plan(build: Callable[[], None]) -> Plan:
    return run_under_mocks(build, "dev", config={})


def _rules(plan: Plan, rule: str) -> list[str]:
    return [v.resource for v in check(plan, [rule])]


def _bucket(name: str, *, block: bool, sse: bool) -> None:
    import pulumi_aws as aws

    b = aws.s3.Bucket(name, bucket=name, tags=TAGS)
    if block:
        aws.s3.BucketPublicAccessBlock(f"{name}-pab", bucket=b.id, block_public_acls=True, block_public_policy=True,
                                       ignore_public_acls=True, restrict_public_buckets=True)
    if sse:
        aws.s3.BucketServerSideEncryptionConfiguration(f"{name}-sse", bucket=b.id, rules=[
            aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(sse_algorithm="AES256"))])


def test_bucket_without_public_access_block_is_public() -> None:
    def build() -> None:
        _bucket("open", block=False, sse=True)
        _bucket("closed", block=True, sse=True)

    plan = _plan(build)
    assert _rules(plan, "no-public-buckets") == ["open"]


def test_bucket_policy_allowing_anyone_is_public() -> None:
    import pulumi_aws as aws

    def build() -> None:
        _bucket("site", block=True, sse=True)
        aws.s3.BucketPolicy("site-policy", bucket="site", policy=json.dumps({"Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::site/*"}]}))

    assert _rules(_plan(build), "no-public-buckets") == ["site-policy"]


def test_unencrypted_bucket_and_database_are_caught() -> None:
    import pulumi_aws as aws

    def build() -> None:
        _bucket("plain", block=True, sse=False)
        _bucket("sealed", block=True, sse=True)
        aws.rds.Instance("db", engine="postgres", instance_class="db.t4g.micro", allocated_storage=20,
                         storage_encrypted=False, publicly_accessible=False, tags=TAGS)

    assert sorted(_rules(_plan(build), "storage-encrypted")) == ["db", "plain"]


def test_security_group_open_to_the_internet_is_caught_except_alb_https() -> None:
    import pulumi_aws as aws

    def build() -> None:
        alb_sg = aws.ec2.SecurityGroup("alb-sg", vpc_id="vpc", tags=TAGS)
        ssh_sg = aws.ec2.SecurityGroup("ssh-sg", vpc_id="vpc", tags=TAGS, ingress=[
            aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=22, to_port=22, cidr_blocks=["0.0.0.0/0"])])
        aws.lb.LoadBalancer("alb", load_balancer_type="application", security_groups=[alb_sg.id], subnets=["s"], tags=TAGS)
        aws.vpc.SecurityGroupIngressRule("alb-443", security_group_id=alb_sg.id, ip_protocol="tcp", from_port=443,
                                         to_port=443, cidr_ipv4="0.0.0.0/0", tags=TAGS)
        aws.vpc.SecurityGroupIngressRule("alb-8080", security_group_id=alb_sg.id, ip_protocol="tcp", from_port=8080,
                                         to_port=8080, cidr_ipv4="0.0.0.0/0", tags=TAGS)
        # 443 open on a group that is not the ALB's is still a violation.
        aws.vpc.SecurityGroupIngressRule("ssh-443", security_group_id=ssh_sg.id, ip_protocol="tcp", from_port=443,
                                         to_port=443, cidr_ipv4="0.0.0.0/0", tags=TAGS)

    assert sorted(_rules(_plan(build), "no-open-ingress")) == ["alb-8080", "ssh-443", "ssh-sg"]


def test_publicly_accessible_database_is_caught() -> None:
    import pulumi_aws as aws

    def build() -> None:
        aws.rds.Instance("public-db", engine="postgres", instance_class="db.t4g.micro", allocated_storage=20,
                         storage_encrypted=True, publicly_accessible=True, tags=TAGS)
        aws.rds.Instance("private-db", engine="postgres", instance_class="db.t4g.micro", allocated_storage=20,
                         storage_encrypted=True, publicly_accessible=False, tags=TAGS)

    assert _rules(_plan(build), "no-public-database") == ["public-db"]


@pytest.mark.parametrize("action,resource,bad", [
    ("*", "*", True),
    ("s3:*", "*", True),
    ("s3:*", "arn:aws:s3:::b/*", False),
    ("ecs:RegisterTaskDefinition", "*", False),
])
def test_wildcard_iam_is_star_action_on_star_resource(action: str, resource: str, bad: bool) -> None:
    import pulumi_aws as aws

    def build() -> None:
        aws.iam.RolePolicy("pol", role="r", policy=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]}))

    assert _rules(_plan(build), "no-wildcard-iam") == (["pol"] if bad else [])


def test_admin_policy_attachment_is_wildcard_iam() -> None:
    import pulumi_aws as aws

    def build() -> None:
        aws.iam.RolePolicyAttachment("admin", role="r", policy_arn="arn:aws:iam::aws:policy/AdministratorAccess")

    plan = _plan(build)
    assert _rules(plan, "no-wildcard-iam") == ["admin"]


def test_missing_tags_are_caught_only_on_taggable_resources() -> None:
    import pulumi_aws as aws

    def build() -> None:
        aws.sns.Topic("untagged")
        aws.sns.Topic("half", tags={"Project": "finks"})
        aws.sns.Topic("tagged", tags=TAGS)
        aws.s3.BucketVersioning("not-taggable", bucket="b", versioning_configuration={"status": "Enabled"})

    violations = check(_plan(build), ["required-tags"])
    assert sorted(v.resource for v in violations) == ["half", "untagged"]
    assert "Environment, ManagedBy" in next(v.message for v in violations if v.resource == "half")


def test_log_group_without_retention_is_caught() -> None:
    import pulumi_aws as aws

    def build() -> None:
        aws.cloudwatch.LogGroup("forever", name="/x/forever", tags=TAGS)
        aws.cloudwatch.LogGroup("month", name="/x/month", retention_in_days=30, tags=TAGS)

    assert _rules(_plan(build), "log-retention") == ["forever"]


def test_every_rule_has_a_catching_test_here() -> None:
    source = Path(__file__).read_text()
    assert all(f'"{rule}"' in source for rule in RULES)
