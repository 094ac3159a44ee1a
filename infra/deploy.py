"""`pulumi preview` / `pulumi up` through the Automation API.

Needs the Pulumi CLI and AWS credentials; when either is missing this fails
before touching anything, with a message saying what is missing and how to
get it (the dry plan, `finks infra plan`, needs neither).

`up` records the stack's outputs (secrets left out) in
``<state>/state/<env>/stack-outputs.json``, beside the environment's history:
the live probes (``validation/aws/``) read what to look at from there, so
they need neither the Pulumi CLI nor an ARN in a check.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.environments import AWS_ENVIRONMENTS
from core.errors import ServiceError, UsageError
from infra.config import INFRA_DIR


class DeployUnavailable(ServiceError):
    """A real preview/up cannot run here: a tool or credentials are missing."""


@dataclass
class DeployResult:
    stack: str
    operation: str
    changes: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"stack": self.stack, "operation": self.operation, "changes": self.changes, "outputs": self.outputs}


def require_cli() -> str:
    path = shutil.which("pulumi")
    if path is None:
        raise DeployUnavailable(
            "the pulumi CLI is not on PATH",
            hint="install it (https://www.pulumi.com/docs/install/) or use `finks infra plan` for a dry plan",
        )
    return path


def require_aws_credentials(region: str | None = None) -> str:
    """The credential source boto3 would use; raises when there is none (the region does not matter)."""
    import boto3

    creds = boto3.Session(region_name=region).get_credentials()
    if creds is None:
        raise DeployUnavailable(
            "no AWS credentials found (environment, ~/.aws, SSO or instance role)",
            hint="run `aws configure sso` / `aws sso login` or export AWS_PROFILE, then retry",
        )
    return str(getattr(creds, "method", "unknown"))


def _check_stack(env: str) -> None:
    if env not in AWS_ENVIRONMENTS:
        raise UsageError(f"unknown stack {env!r}", hint=f"use one of {', '.join(AWS_ENVIRONMENTS)}")


def select_stack(env: str, create: bool = True) -> Any:
    """The Automation API stack for `env`, after checking CLI and credentials."""
    _check_stack(env)
    require_cli()
    require_aws_credentials()
    from pulumi import automation as auto

    if create:
        return auto.create_or_select_stack(stack_name=env, work_dir=str(INFRA_DIR))
    return auto.select_stack(stack_name=env, work_dir=str(INFRA_DIR))


def _ops(summary: Any) -> dict[str, int]:
    return {str(getattr(k, "value", k)): int(v) for k, v in (summary or {}).items()}


def preview(env: str, on_output: Callable[[str], None] | None = None) -> DeployResult:
    stack = select_stack(env)
    result = stack.preview(on_output=on_output, diff=False)
    return DeployResult(env, "preview", changes=_ops(result.change_summary))


def up(env: str, on_output: Callable[[str], None] | None = None, state_dir: Path | None = None) -> DeployResult:
    """`pulumi up`, then record the outputs for the probes (:func:`record_outputs`)."""
    stack = select_stack(env)
    result = stack.up(on_output=on_output)
    outputs = {k: v.value for k, v in result.outputs.items() if not v.secret}
    record_outputs(env, outputs, state_dir)
    return DeployResult(env, "up", changes=_ops(result.summary.resource_changes if result.summary else None), outputs=outputs)


OUTPUTS_FILE = "stack-outputs.json"


def outputs_path(env: str, state_dir: Path | None = None) -> Path:
    """Where `up` records the outputs of ``env``'s stack."""
    from core.paths import state_dir as default_state_dir

    return Path(state_dir or default_state_dir()) / "state" / env / OUTPUTS_FILE


def record_outputs(env: str, outputs: dict[str, Any], state_dir: Path | None = None) -> Path:
    """Write the (non-secret) outputs atomically: a reader never sees half a file."""
    from core.clock import now_iso

    path = outputs_path(env, state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(f".{os.getpid()}.tmp")
    scratch.write_text(json.dumps({"stack": env, "recorded_at": now_iso(), "outputs": outputs}, indent=2,
                                  sort_keys=True, default=str) + "\n")
    scratch.replace(path)
    return path


def recorded_outputs(env: str, state_dir: Path | None = None) -> dict[str, Any]:
    """The outputs the last `finks infra up` of ``env`` recorded (empty when none was)."""
    path = outputs_path(env, state_dir)
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text())
    except ValueError as exc:
        from core.errors import StateError

        raise StateError(f"{path}: not valid JSON ({exc})", hint=f"run `finks infra up --env {env} --yes` again") from None
    outputs = doc.get("outputs") if isinstance(doc, dict) else None
    return outputs if isinstance(outputs, dict) else {}


def stack_outputs(env: str) -> dict[str, Any]:
    """Outputs of a deployed stack (empty when it was never deployed); never creates one."""
    from pulumi import automation as auto

    try:
        stack = select_stack(env, create=False)
    except auto.StackNotFoundError:
        return {}
    return {k: v.value for k, v in stack.outputs().items() if not v.secret}
