"""Policy rules over a dry plan, in the spirit of Pulumi CrossGuard.

Each rule looks at the planned resources (type, name, inputs) and returns
violations. Mock IDs are `<name>-id`, which is how a resource's ID found in
another resource's inputs is traced back to it.
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

from infra.plan import Plan, PlannedResource

BUCKET = "aws:s3/bucket:Bucket"
REQUIRED_TAGS: tuple[str, ...] = ("Project", "Environment", "ManagedBy")
OPEN_CIDRS = {"0.0.0.0/0", "::/0"}
ALB_PUBLIC_PORTS = {80, 443}


@dataclass(frozen=True)
class Violation:
    rule: str
    resource_type: str
    resource: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.resource} ({self.resource_type}): {self.message}"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


Rule = Callable[[Plan], Iterable[Violation]]


def _id(r: PlannedResource) -> str:
    return f"{r.name}-id"


def _v(rule: str, r: PlannedResource, message: str) -> Violation:
    return Violation(rule, r.type, r.name, message)


def _attached(plan: Plan, type_: str, bucket: PlannedResource) -> list[PlannedResource]:
    names = {_id(bucket), bucket.inputs.get("bucket")}
    return [r for r in plan.of_type(type_) if r.inputs.get("bucket") in names]


def _statements(doc: Any) -> list[dict[str, Any]]:
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except json.JSONDecodeError:
            return []
    if not isinstance(doc, dict):
        return []
    stmts = doc.get("Statement", [])
    return [stmts] if isinstance(stmts, dict) else [s for s in stmts if isinstance(s, dict)]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def no_public_buckets(plan: Plan) -> Iterable[Violation]:
    for bucket in plan.of_type(BUCKET):
        if bucket.inputs.get("acl") in ("public-read", "public-read-write"):
            yield _v("no-public-buckets", bucket, f"canned ACL {bucket.inputs['acl']}")
        blocks = _attached(plan, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", bucket)
        flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        if not any(all(b.inputs.get(f) is True for f in flags) for b in blocks):
            yield _v("no-public-buckets", bucket, "no public-access block with all four settings on")
    for pol in plan.of_type("aws:s3/bucketPolicy:BucketPolicy"):
        for st in _statements(pol.inputs.get("policy")):
            if st.get("Effect") == "Allow" and st.get("Principal") in ("*", {"AWS": "*"}) and not st.get("Condition"):
                yield _v("no-public-buckets", pol, "policy allows anyone (Principal *) without a condition")


def storage_encrypted(plan: Plan) -> Iterable[Violation]:
    for bucket in plan.of_type(BUCKET):
        if not _attached(plan, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", bucket):
            yield _v("storage-encrypted", bucket, "no server-side encryption configuration")
    for db in plan.of_type("aws:rds/instance:Instance") + plan.of_type("aws:rds/cluster:Cluster"):
        if db.inputs.get("storageEncrypted") is not True:
            yield _v("storage-encrypted", db, "storageEncrypted is not true")
    for vol in plan.of_type("aws:ebs/volume:Volume") + plan.of_type("aws:efs/fileSystem:FileSystem"):
        if vol.inputs.get("encrypted") is not True:
            yield _v("storage-encrypted", vol, "encrypted is not true")


def _alb_security_groups(plan: Plan) -> set[str]:
    ids: set[str] = set()
    for lb in plan.of_type("aws:lb/loadBalancer:LoadBalancer"):
        if lb.inputs.get("loadBalancerType", "application") == "application":
            ids.update(_as_list(lb.inputs.get("securityGroups", [])))
    return ids


def no_open_ingress(plan: Plan) -> Iterable[Violation]:
    alb_sgs = _alb_security_groups(plan)
    for sg in plan.of_type("aws:ec2/securityGroup:SecurityGroup"):
        for rule in sg.inputs.get("ingress", []) or []:
            cidrs = set(rule.get("cidrBlocks", []) or []) | set(rule.get("ipv6CidrBlocks", []) or [])
            if cidrs & OPEN_CIDRS and not _allowed(_id(sg) in alb_sgs, rule.get("fromPort"), rule.get("toPort")):
                yield _v("no-open-ingress", sg, f"ingress {rule.get('fromPort')}-{rule.get('toPort')} open to the internet")
    for rule in plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        cidr = rule.inputs.get("cidrIpv4") or rule.inputs.get("cidrIpv6")
        if cidr in OPEN_CIDRS:
            is_alb = rule.inputs.get("securityGroupId") in alb_sgs
            if not _allowed(is_alb, rule.inputs.get("fromPort"), rule.inputs.get("toPort")):
                yield _v("no-open-ingress", rule, f"port {rule.inputs.get('fromPort')} open to the internet")
    for rule in plan.of_type("aws:ec2/securityGroupRule:SecurityGroupRule"):
        if rule.inputs.get("type") == "ingress" and set(rule.inputs.get("cidrBlocks", []) or []) & OPEN_CIDRS:
            is_alb = rule.inputs.get("securityGroupId") in alb_sgs
            if not _allowed(is_alb, rule.inputs.get("fromPort"), rule.inputs.get("toPort")):
                yield _v("no-open-ingress", rule, f"port {rule.inputs.get('fromPort')} open to the internet")


def _allowed(is_alb: bool, from_port: Any, to_port: Any) -> bool:
    return is_alb and from_port == to_port and from_port is not None and int(from_port) in ALB_PUBLIC_PORTS


def no_public_database(plan: Plan) -> Iterable[Violation]:
    for db in plan.of_type("aws:rds/instance:Instance") + plan.of_type("aws:rds/clusterInstance:ClusterInstance"):
        if db.inputs.get("publiclyAccessible") is True:
            yield _v("no-public-database", db, "publiclyAccessible is true")


IAM_POLICY_TYPES = (
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/policy:Policy",
    "aws:iam/userPolicy:UserPolicy",
    "aws:iam/groupPolicy:GroupPolicy",
)


def no_wildcard_iam(plan: Plan) -> Iterable[Violation]:
    for type_ in IAM_POLICY_TYPES:
        for pol in plan.of_type(type_):
            for st in _statements(pol.inputs.get("policy")):
                if st.get("Effect") != "Allow":
                    continue
                actions = [str(a) for a in _as_list(st.get("Action", []))]
                resources = [str(r) for r in _as_list(st.get("Resource", []))]
                wild_action = any(a == "*" or a.endswith(":*") for a in actions)
                if wild_action and "*" in resources:
                    yield _v("no-wildcard-iam", pol, f"statement {st.get('Sid', '?')} allows {actions} on *")
    for att in plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"):
        if str(att.inputs.get("policyArn", "")).endswith((":policy/AdministratorAccess", ":policy/PowerUserAccess")):
            yield _v("no-wildcard-iam", att, f"attaches {att.inputs['policyArn']}")


@cache
def _taggable(type_: str) -> bool:
    """Whether the provider's resource class accepts `tags` (asked of pulumi_aws itself)."""
    try:
        pkg, mod, cls = type_.split(":")[0], type_.split(":")[1].split("/")[0], type_.split(":")[2]
    except IndexError:
        return False
    if pkg != "aws":
        return False
    module_name = {"lambda": "lambda_"}.get(mod, mod)
    try:
        klass = getattr(importlib.import_module(f"pulumi_aws.{module_name}"), cls)
    except (ImportError, AttributeError):
        return False
    return "tags" in inspect.signature(klass._internal_init).parameters


def required_tags(plan: Plan) -> Iterable[Violation]:
    for r in plan.custom:
        if _taggable(r.type):
            tags = r.inputs.get("tags") or {}
            missing = [t for t in REQUIRED_TAGS if not tags.get(t)]
            if missing:
                yield _v("required-tags", r, f"missing tags {', '.join(missing)}")


def log_retention(plan: Plan) -> Iterable[Violation]:
    for lg in plan.of_type("aws:cloudwatch/logGroup:LogGroup"):
        if not lg.inputs.get("retentionInDays"):
            yield _v("log-retention", lg, "no retentionInDays: logs kept (and billed) forever")


RULES: dict[str, Rule] = {
    "no-public-buckets": no_public_buckets,
    "storage-encrypted": storage_encrypted,
    "no-open-ingress": no_open_ingress,
    "no-public-database": no_public_database,
    "no-wildcard-iam": no_wildcard_iam,
    "required-tags": required_tags,
    "log-retention": log_retention,
}


def check(plan: Plan, rules: Iterable[str] | None = None) -> list[Violation]:
    """Every violation of the selected rules (all by default)."""
    selected = list(RULES) if rules is None else list(rules)
    out: list[Violation] = []
    for name in selected:
        out.extend(RULES[name](plan))
    return out
