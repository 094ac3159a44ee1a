"""What every Finks component shares: its type token, child naming, options."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pulumi


@dataclass(frozen=True)
class Common:
    """Values every component needs: environment, region and the tags."""

    env: str
    region: str
    prefix: str
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def project_path(self) -> str:
        """Hierarchical secret/parameter path: finks/<env>."""
        return self.prefix.replace("-", "/", 1)

    def with_name(self, name: str) -> dict[str, str]:
        return {**self.tags, "Name": name}


class FinksComponent(pulumi.ComponentResource):
    """A component whose children are named `<component>-<suffix>` and parented to it."""

    kind: str = "Component"

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"finks:infra:{self.kind}", name, None, opts)
        self.name = name

    def child(self, suffix: str) -> str:
        return f"{self.name}-{suffix}"

    def opts(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **kwargs)


def policy_document(statements: list[dict[str, Any]]) -> pulumi.Output[str]:
    """An IAM policy JSON; statements may hold Outputs (ARNs)."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements})


def assume_role_policy(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
            ],
        }
    )
