"""What seeding an emulator from the dry plan is made of: references, shapes, the handler registry.

A handler (:func:`handles`) turns one planned resource — its type, name and
Pulumi inputs, references already resolved — into the boto3 calls that create
it, and returns the id and ARN the emulator gave it (:data:`Made`), so that
later resources referring to it get the real values. The handlers live in
:mod:`validation.aws.seed_network` (KMS, S3, Secrets Manager, VPC, IAM) and
:mod:`validation.aws.seed_platform` (ECS, ECR, logs, RDS, monitoring, Glue,
GuardDuty, Config, CloudTrail); :mod:`validation.aws.seed` drives them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.settings import Settings
    from infra.plan import PlannedResource

# What the mocks answer for every resource (infra.plan): its region.
MOCK_REGION = "ca-central-1"


# ---- references ----------------------------------------------------------------
def service_of(type_: str) -> str:
    return type_.split(":")[1].split("/")[0]


def mock_arn(r: PlannedResource) -> str:
    """The ARN the mocks gave ``r`` (see infra.plan's fake state)."""
    from infra.plan import ACCOUNT_ID

    if r.type == "aws:s3/bucket:Bucket":
        return f"arn:aws:s3:::{r.inputs.get('bucket', r.name)}"
    return str(r.inputs.get("arn") or f"arn:aws:{service_of(r.type)}:{MOCK_REGION}:{ACCOUNT_ID}:{r.name}")


class References:
    """Fake ids and ARNs of the plan -> what the emulator made."""

    def __init__(self) -> None:
        self.real: dict[str, str] = {}
        self._pattern: re.Pattern[str] | None = None

    def add(self, fake: str, real: str) -> None:
        if fake and real and fake != real:
            self.real[fake] = real
            self._pattern = None

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, str) or not self.real:
            return value
        if self._pattern is None:
            tokens = sorted(self.real, key=len, reverse=True)
            # A token is whole: `x-id` never matches inside `x-id-2` or `a-x-id`.
            self._pattern = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, tokens)) + r")(?![\w-])")
        return self._pattern.sub(lambda m: self.real[m.group(1)], value)


# ---- shapes: Pulumi's camelCase inputs -> the AWS APIs' shapes -------------------
_RENAMES = {"id": "ID", "sseAlgorithm": "SSEAlgorithm", "kmsMasterKeyId": "KMSMasterKeyID", "serDeInfo": "SerdeInfo"}
_VERBATIM = {"parameters", "defaultArguments", "tags"}  # maps whose keys are data, not field names


def number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def pascal(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            name = _RENAMES.get(key, key[:1].upper() + key[1:])
            out[name] = dict(item) if key in _VERBATIM and isinstance(item, dict) else pascal(item)
        return out
    if isinstance(value, list):
        return [pascal(v) for v in value]
    return number(value)


def tag_list(inputs: dict[str, Any], key: str = "Key", val: str = "Value") -> list[dict[str, str]]:
    return [{key: k, val: str(v)} for k, v in (inputs.get("tags") or {}).items()]


def tag_map(inputs: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in (inputs.get("tags") or {}).items()}


def ec2_tags(kind: str, r: PlannedResource, inputs: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"ResourceType": kind, "Tags": tag_list(inputs) or [{"Key": "Name", "Value": r.name}]}]


def as_int(inputs: dict[str, Any], key: str, default: int | None = None) -> int | None:
    value = inputs.get(key, default)
    return None if value is None else int(value)


# ---- handlers: one per resource type; each returns (id, arn) of what it made ------
Made = tuple[str, str] | None
Handler = Callable[["Seeder", "PlannedResource", dict[str, Any]], Made]
HANDLERS: dict[str, Handler] = {}


def handles(type_: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[type_] = fn
        return fn
    return register


class Seeder:
    """What a handler creates with: the emulator's clients, the references resolved so far, the account."""

    def __init__(self, settings: Settings, client: Callable[[str], Any]) -> None:
        self.settings = settings
        self._client = client
        self._clients: dict[str, Any] = {}
        self.refs = References()
        self.account = ""

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._client(service)
        return self._clients[service]
