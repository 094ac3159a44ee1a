"""A dry plan: run the Pulumi program under Pulumi's own mocks.

No CLI, no cloud: `pulumi.runtime.set_mocks` stands in for the engine, and
every resource registration is recorded (type, name, parent, inputs). The
result is what `pulumi up` would be asked to create for a stack.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import runpy
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.environments import AWS_ENVIRONMENTS, infra_stack
from infra.config import INFRA_DIR, load, read_stack_file

if TYPE_CHECKING:
    import asyncio

    from core.settings import Settings

ACCOUNT_ID = "123456789012"
PLAN_CACHE_VERSION = 2  # 2: resources record which inputs are secret


@dataclass(frozen=True)
class PlannedResource:
    """One resource the program would create."""

    type: str
    name: str
    inputs: dict[str, Any] = field(default_factory=dict)
    parent: str = ""
    custom: bool = True
    secrets: tuple[str, ...] = ()  # the inputs the program marked secret (their values are in ``inputs``)

    @property
    def urn(self) -> str:
        return f"{self.type}::{self.name}"

    def key_inputs(self) -> dict[str, Any]:
        """The inputs worth showing in a listing (small scalars and tags)."""
        keep: dict[str, Any] = {}
        for key, value in self.inputs.items():
            if key in ("tags", "tagsAll"):
                continue
            if isinstance(value, (str, int, float, bool)) and len(str(value)) <= 80:
                keep[key] = value
        return keep

    def to_dict(self) -> dict[str, Any]:
        out = {"type": self.type, "name": self.name, "parent": self.parent, "inputs": self.inputs}
        return {**out, "secrets": list(self.secrets)} if self.secrets else out


@dataclass
class Plan:
    stack: str
    resources: list[PlannedResource]
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.type == type_]

    def named(self, type_: str, contains: str) -> list[PlannedResource]:
        return [r for r in self.of_type(type_) if contains in r.name]

    def one(self, type_: str, contains: str = "") -> PlannedResource:
        found = self.named(type_, contains)
        if len(found) != 1:
            raise LookupError(f"expected one {type_} named *{contains}*, found {[r.name for r in found]}")
        return found[0]

    @property
    def custom(self) -> list[PlannedResource]:
        return [r for r in self.resources if r.custom]

    def to_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "count": len(self.custom),
            "resources": [r.to_dict() for r in self.resources],
            "outputs": self.outputs,
        }


    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Plan:
        resources = [PlannedResource(r["type"], r["name"], r.get("inputs") or {}, r.get("parent", ""),
                                     r.get("custom", True), tuple(r.get("secrets") or ())) for r in raw["resources"]]
        return cls(stack=raw["stack"], resources=resources, outputs=raw.get("outputs") or {})


def _fake_state(type_: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """What the mock 'cloud' answers: the inputs plus the computed attributes we read."""
    rid = f"{name}-id"
    service = type_.split(":")[1].split("/")[0]
    state = dict(inputs)
    state.setdefault("arn", f"arn:aws:{service}:ca-central-1:{ACCOUNT_ID}:{name}")
    state.setdefault("name", inputs.get("name", name))
    if type_ == "aws:s3/bucket:Bucket":
        state.setdefault("bucket", name)
        state["arn"] = f"arn:aws:s3:::{inputs.get('bucket', name)}"
    if type_ == "aws:rds/instance:Instance":
        state.update(
            address=f"{name}.abc.ca-central-1.rds.amazonaws.com",
            endpoint=f"{name}.abc.ca-central-1.rds.amazonaws.com:5432",
            port=5432,
            masterUserSecrets=[
                {"secretArn": f"arn:aws:secretsmanager:ca-central-1:{ACCOUNT_ID}:secret:rds!db-{name}", "secretStatus": "active", "kmsKeyId": ""}
            ],
        )
    if type_ == "aws:lb/loadBalancer:LoadBalancer":
        state.update(dnsName=f"{name}.elb.amazonaws.com", arnSuffix=f"app/{name}/1", zoneId="ZQSVJUPU6J1EY")
    if type_ == "aws:lb/targetGroup:TargetGroup":
        state.update(arnSuffix=f"targetgroup/{name}/1")
    if type_ == "aws:ecr/repository:Repository":
        state.update(repositoryUrl=f"{ACCOUNT_ID}.dkr.ecr.ca-central-1.amazonaws.com/{inputs.get('name', name)}")
    if type_ == "aws:apigateway/restApi:RestApi":
        state.update(rootResourceId="root", executionArn=f"arn:aws:execute-api:ca-central-1:{ACCOUNT_ID}:{rid}")
    if type_ == "aws:apigateway/stage:Stage":
        state.update(invokeUrl=f"https://{rid}.execute-api.ca-central-1.amazonaws.com/{inputs.get('stageName', '')}")
    if type_ == "aws:lambda/function:Function":
        state.update(invokeArn=f"arn:aws:apigateway:ca-central-1:lambda:path/functions/{name}/invocations")
    if type_ == "aws:acm/certificate:Certificate":
        state.update(domainValidationOptions=[{"domainName": inputs.get("domainName", ""), "resourceRecordName": "_x", "resourceRecordType": "CNAME", "resourceRecordValue": "_y"}])
    return rid, state


# How Pulumi's mocks hand over a secret input: {SIG: SECRET_SIG, "value": ...}.
_SIG, _SECRET_SIG = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(_SIG) == _SECRET_SIG and "value" in value


def _revealed(value: Any) -> Any:
    """A secret input's value, unwrapped (the plan's values are mocks: nothing to hide)."""
    if isinstance(value, dict):
        if _is_secret(value):
            return _revealed(value["value"])
        return {k: _revealed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_revealed(v) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    import pulumi

    if isinstance(value, pulumi.FileAsset):
        return {"asset": "file", "path": str(value.path)}
    if isinstance(value, pulumi.FileArchive):
        return {"archive": "file", "path": str(value.path)}
    return str(value)


class _Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.resources: list[PlannedResource] = []
        self.parents: dict[tuple[str, str], str] = {}


def _mocks(recorder: _Recorder) -> tuple[Any, Any]:
    import pulumi
    from pulumi.runtime.mocks import MockMonitor

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
            raw = json.loads(json.dumps(args.inputs, default=_jsonable))
            inputs, secrets = _revealed(raw), tuple(sorted(k for k, v in raw.items() if _is_secret(v)))
            with recorder.lock:
                recorder.resources.append(PlannedResource(args.typ, args.name, inputs, custom=bool(args.custom),
                                                          secrets=secrets))
            return _fake_state(args.typ, args.name, inputs)

        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
            if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
                return {"accountId": ACCOUNT_ID, "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/mock", "userId": "mock"}, None
            if args.token == "aws:index/getPartition:getPartition":
                return {"partition": "aws", "dnsSuffix": "amazonaws.com"}, None
            if args.token == "aws:secretsmanager/getSecretVersion:getSecretVersion":
                # A secret's value read at `pulumi up` (the PagerDuty key): a placeholder in the plan.
                sid = str(args.args.get("secretId", "secret"))
                return {"secretId": sid, "secretString": f"mock-value-of-{sid.rsplit('/', 1)[-1]}",
                        "arn": f"arn:aws:secretsmanager:ca-central-1:{ACCOUNT_ID}:secret:{sid}", "versionId": "mock"}, []
            return {}, []

    class Monitor(MockMonitor):
        def RegisterResource(self, request: Any) -> Any:
            with recorder.lock:
                recorder.parents[(request.type, request.name)] = request.parent
            return super().RegisterResource(request)

    mocks = Mocks()
    return mocks, Monitor(mocks)


def _config_values(stack: str, project: str | None = None, region: str | None = None) -> dict[str, str]:
    """The stack file as Pulumi config; ``project`` and ``region`` fill what it does not set."""
    values: dict[str, str] = {}
    if project is not None:
        values["finks:project"] = project
    if region is not None:
        values["aws:region"] = region
    for key, value in read_stack_file(stack).items():
        values[key] = value if isinstance(value, str) else json.dumps(value)
    return values


_RUN_LOCK = threading.Lock()


def run_under_mocks(program: Callable[[], Any], stack: str, config: dict[str, str] | None = None) -> Plan:
    """Run any Pulumi program function under mocks and return what it registered."""
    import pulumi
    from pulumi.runtime import settings as rt_settings
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    recorder = _Recorder()
    with _RUN_LOCK, _own_event_loop():  # the Pulumi runtime is process-global
        rt_settings.ROOT.set(None)
        pulumi.runtime.set_all_config(config if config is not None else _config_values(stack))
        mocks, monitor = _mocks(recorder)
        pulumi.runtime.set_mocks(mocks, project="finks", stack=stack, preview=True, monitor=monitor)
        rt_settings.SETTINGS.rpc_manager.clear()
        _sync_await(run_pulumi_func(program))
        root = rt_settings.get_root_resource()
        outputs: dict[str, Any] = {}
        if root is not None and getattr(root, "outputs", None):
            outputs = {k: _resolve(v) for k, v in root.outputs.items()}  # type: ignore[attr-defined]
    resources = []
    for res in recorder.resources:
        parent_urn = recorder.parents.get((res.type, res.name), "")
        resources.append(PlannedResource(res.type, res.name, res.inputs, _urn_name(parent_urn), res.custom,
                                         res.secrets))
    return Plan(stack=stack, resources=resources, outputs=outputs)


@contextlib.contextmanager
def _own_event_loop() -> Iterator[None]:
    """A loop of the run's own, current while it runs, closed after it.

    Pulumi's runtime creates its RPCs and Outputs on the thread's current loop and runs that
    loop until they resolve. A loop shared with whatever ran before in the process carries
    that code's leftovers (pending tasks, a default executor, a policy's state) into the plan,
    and the plan's own leftovers into whatever runs next.
    """
    import asyncio

    policy = asyncio.get_event_loop_policy()
    try:
        previous: asyncio.AbstractEventLoop | None = policy.get_event_loop()
    except RuntimeError:
        previous = None
    loop = asyncio.new_event_loop()
    policy.set_event_loop(loop)
    try:
        yield
    finally:
        try:
            _drain(loop)
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            policy.set_event_loop(previous)
            loop.close()


def _drain(loop: asyncio.AbstractEventLoop, timeout_s: float = 10.0) -> None:
    """Let the run's last RPCs (outputs registered as the program ended) finish; cancel any
    that do not, rather than leave them pending on a closed loop."""
    import asyncio

    pending = asyncio.all_tasks(loop)
    if not pending:
        return
    _, late = loop.run_until_complete(asyncio.wait(pending, timeout=timeout_s))
    for task in late:
        task.cancel()
    if late:
        loop.run_until_complete(asyncio.gather(*late, return_exceptions=True))


def _urn_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1] if urn else ""


def _resolve(value: Any) -> Any:
    import pulumi
    from pulumi.runtime.sync_await import _sync_await

    if isinstance(value, pulumi.Output):
        try:
            value = _sync_await(value.future())
        except Exception:  # noqa: BLE001 - an unknown output is shown as such
            return None
    if isinstance(value, dict):
        return {k: _resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v) for v in value]
    return value


def _program(path: Path = INFRA_DIR / "__main__.py") -> Callable[[], None]:
    def run() -> None:
        runpy.run_path(str(path), run_name="__main__")

    return run


def plan(stack: str, settings: Settings | None = None) -> Plan:
    """The dry plan of a stack; project and region the settings' where its file does not set them."""
    # Validate first: a config error should read as one, not as a Pulumi failure.
    cfg = load(stack, settings=settings)
    return _cached_plan(stack, cfg.project, cfg.region)


def plan_for(settings: Settings) -> Plan:
    """The dry plan of the stack an environment plans (``local`` plans ``dev``'s)."""
    return plan(infra_stack(settings.env), settings)


@lru_cache(maxsize=4 * len(AWS_ENVIRONMENTS))
def _cached_plan(stack: str, project: str, region: str) -> Plan:
    """The program is deterministic for its source and config: each check runs in a
    process of its own, so the plan is also kept on disk, keyed by everything it
    depends on (the program's files, the stack files, the config, the Pulumi
    versions). Importing pulumi and planning costs seconds; reading it back, not."""
    path = _plan_cache_path(stack, project, region)
    try:
        return Plan.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    result = run_under_mocks(_program(), stack, _config_values(stack, project, region))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(result.to_dict() | {"resources": [
            r.to_dict() | {"custom": r.custom} for r in result.resources]}, default=_unknown_as_text))
        tmp.replace(path)
    except OSError:
        pass  # an unwritable cache only costs time
    return result


def _unknown_as_text(value: Any) -> str:
    # An input only known after `pulumi up` (an Output the mocks cannot resolve).
    return "<unknown>" if type(value).__name__ == "Unknown" else str(value)


def _plan_cache_path(stack: str, project: str, region: str) -> Path:
    from importlib.metadata import PackageNotFoundError, version

    from core.paths import state_dir

    digest = hashlib.sha256(f"{PLAN_CACHE_VERSION}\0{stack}\0{project}\0{region}".encode())
    for name in ("pulumi", "pulumi-aws"):
        try:
            digest.update(f"{name}={version(name)}\0".encode())
        except PackageNotFoundError:
            digest.update(f"{name}=none\0".encode())
    for source in sorted([*INFRA_DIR.rglob("*.py"), *INFRA_DIR.glob("Pulumi*.yaml"),
                          *(INFRA_DIR.parent / "core").glob("*.py")]):
        digest.update(str(source.relative_to(INFRA_DIR.parent)).encode() + b"\0" + source.read_bytes())
    return state_dir() / "cache" / "infra-plans" / f"{stack}-{digest.hexdigest()[:20]}.json"


def plan_program(path: Path, stack: str, settings: Settings | None = None) -> Plan:
    """The dry plan of another Pulumi program file, with this stack's config."""
    if not path.is_file():
        from core.errors import UsageError

        raise UsageError(f"{path}: no such Pulumi program file")
    cfg = load(stack, settings=settings)
    return run_under_mocks(_program(path), stack, _config_values(stack, cfg.project, cfg.region))
