"""NotMet, Result and the lookups every criterion uses."""

from __future__ import annotations

import json
from typing import Any

from infra.plan import Plan, PlannedResource

Result = tuple[str, dict[str, Any]]


class NotMet(Exception):
    def __init__(self, message: str, figures: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.figures = figures or {}


def require(cond: bool, message: str, **figures: Any) -> None:
    if not cond:
        raise NotMet(message, figures)


def one(plan: Plan, type_: str, contains: str = "") -> PlannedResource:
    """The one resource of a type (named *contains*); a missing or doubled one is NotMet."""
    try:
        return plan.one(type_, contains)
    except LookupError as exc:
        raise NotMet(str(exc), {"type": type_}) from None


def some(plan: Plan, type_: str, what: str) -> list[PlannedResource]:
    """Every resource of a type, at least one: an assertion over none of them proves nothing."""
    found = plan.of_type(type_)
    require(bool(found), f"no {what} in the plan", type=type_)
    return found


def rid(r: PlannedResource) -> str:
    return f"{r.name}-id"


def containers(td: PlannedResource) -> list[dict[str, Any]]:
    raw = td.inputs.get("containerDefinitions", "[]")
    try:
        found = json.loads(raw) if isinstance(raw, str) else list(raw)
    except ValueError:
        found = []
    require(bool(found) and all(isinstance(c, dict) for c in found),
             f"task definition {td.inputs.get('family')} has no container definitions")
    return found


def container(td: PlannedResource) -> dict[str, Any]:
    return containers(td)[0]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {str(e.get("name")): e.get("value") for e in container.get("environment", []) if isinstance(e, dict)}


def principals(policy: Any) -> set[str]:
    """The service principals a policy document names."""
    try:
        doc = json.loads(policy) if isinstance(policy, str) else (policy or {})
    except ValueError:
        return set()
    found: set[str] = set()
    statements = doc.get("Statement", []) if isinstance(doc, dict) else []
    for st in statements if isinstance(statements, list) else [statements]:
        service = (st.get("Principal") or {}).get("Service", []) if isinstance(st.get("Principal"), dict) else []
        found.update([service] if isinstance(service, str) else service)
    return found


def task_def(plan: Plan, family_suffix: str) -> PlannedResource:
    family = f"finks-{plan.stack}-{family_suffix}"
    found = [t for t in plan.of_type("aws:ecs/taskDefinition:TaskDefinition") if t.inputs.get("family") == family]
    require(len(found) == 1, f"expected one ECS task definition for {family_suffix}, found {len(found)}",
             families=[t.inputs.get("family") for t in plan.of_type("aws:ecs/taskDefinition:TaskDefinition")])
    return found[0]


def attached(plan: Plan, type_: str, bucket: PlannedResource) -> list[PlannedResource]:
    return [r for r in plan.of_type(type_) if r.inputs.get("bucket") in (rid(bucket), bucket.inputs.get("bucket"))]
