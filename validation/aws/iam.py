"""Live probe for S3 (base IAM roles) and S21 (tightened IAM): the roles as deployed, against the program.

For each role of the stack: it exists, trusts the service the program says,
carries exactly the managed policies the program attaches and inline policies
with every statement (by Sid) the program writes — and nothing grants
``*`` on ``*`` or an AWS admin policy.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from finks.checks import CheckContext, Evidence
from validation.aws.live import Live

ADMIN_POLICIES = ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess")


def _document(value: Any) -> dict[str, Any]:
    """A policy document as IAM returns it (URL-encoded JSON, or already parsed)."""
    if isinstance(value, str):
        return json.loads(unquote(value))  # type: ignore[no-any-return]
    return dict(value or {})


def _statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    found = doc.get("Statement", [])
    return [found] if isinstance(found, dict) else list(found)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _declared(live: Live) -> dict[str, dict[str, Any]]:
    """role name -> what the program declares: trusted service, managed policy ARNs, inline statement Sids."""
    plan = live.plan
    roles = plan.of_type("aws:iam/role:Role")
    by_id = {f"{r.name}-id": r.inputs["name"] for r in roles}  # how a RolePolicy names its role in the dry plan
    declared: dict[str, dict[str, Any]] = {}
    for r in roles:
        principal = _statements(json.loads(r.inputs["assumeRolePolicy"]))[0].get("Principal", {})
        declared[r.inputs["name"]] = {"service": principal.get("Service"), "managed": set(), "sids": set()}
    for a in plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"):
        declared.setdefault(a.inputs["role"], {"service": None, "managed": set(), "sids": set()})["managed"].add(a.inputs["policyArn"])
    for p in plan.of_type("aws:iam/rolePolicy:RolePolicy"):
        role = by_id.get(p.inputs["role"], p.inputs["role"])
        sids = {s.get("Sid") for s in _statements(json.loads(p.inputs["policy"])) if s.get("Sid")}
        declared.setdefault(role, {"service": None, "managed": set(), "sids": set()})["sids"] |= sids
    return declared


def _wildcards(statement: dict[str, Any]) -> bool:
    """An Allow of every action (``*`` or ``service:*``) on every resource."""
    if statement.get("Effect") != "Allow":
        return False
    actions = [str(a) for a in _as_list(statement.get("Action", []))]
    resources = [str(r) for r in _as_list(statement.get("Resource", []))]
    return "*" in resources and any(a == "*" or a.endswith(":*") for a in actions)


def roles_and_policies(ctx: CheckContext) -> Evidence:
    """Each role of the stack against what the program declares for it (see the module docstring)."""
    from botocore.exceptions import ClientError

    live = Live.of(ctx)
    roles = live.roles()
    if not roles:
        raise live.nothing_deployed("IAM roles")
    declared = _declared(live)
    iam = live.client("iam")
    problems: list[str] = []
    seen: dict[str, Any] = {}
    for key, name in sorted(roles.items()):
        try:
            role = iam.get_role(RoleName=name)["Role"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchEntity":
                problems.append(f"role {name} ({key}) does not exist")
                continue
            raise
        want = declared.get(name, {"service": None, "managed": set(), "sids": set()})
        trust = [s.get("Principal", {}).get("Service") for s in _statements(_document(role["AssumeRolePolicyDocument"]))]
        if want["service"] and want["service"] not in trust:
            problems.append(f"role {name} trusts {trust}, not {want['service']}")
        managed = {p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]}
        for arn in sorted(want["managed"] - managed):
            problems.append(f"role {name} lacks managed policy {arn.rsplit('/', 1)[-1]}")
        for arn in sorted(managed - want["managed"]):
            admin = arn.rsplit("/", 1)[-1] in ADMIN_POLICIES
            problems.append(f"role {name} has {'admin ' if admin else ''}policy {arn.rsplit('/', 1)[-1]} attached, "
                            "which the program does not attach")
        sids: set[str] = set()
        inline = iam.list_role_policies(RoleName=name)["PolicyNames"]
        for policy in inline:
            doc = _document(iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"])
            for statement in _statements(doc):
                sids.add(str(statement.get("Sid", "")))
                if _wildcards(statement):
                    problems.append(f"role {name}, inline policy {policy}: statement {statement.get('Sid') or '(no Sid)'} "
                                    f"allows {statement.get('Action')} on every resource")
        for sid in sorted(want["sids"] - sids):
            problems.append(f"role {name} lacks the inline statement {sid}")
        seen[name] = {"key": key, "trusts": trust, "managed": sorted(a.rsplit("/", 1)[-1] for a in managed),
                      "inline": sorted(inline), "statements": sorted(s for s in sids if s)}
    figures = {"roles": seen}
    if problems:
        raise live.fail(problems, figures)
    return live.evidence(f"{len(seen)} roles ({', '.join(sorted(seen))}) trust their service and carry exactly the "
                         "program's policies; none allows * on *", figures,
                         ["policies are stored, not evaluated: what they allow is read, not exercised"])
