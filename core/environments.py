"""The one environment switch: its names, and which AWS stack each one plans.

Kept free of heavy imports: the orchestrator's models and `finks status` use it.
"""

from __future__ import annotations

from typing import Literal, get_args

Env = Literal["local", "dev", "staging", "prod"]
ENVIRONMENTS: tuple[str, ...] = get_args(Env)
AwsEnv = Literal["dev", "staging", "prod"]
AWS_ENVIRONMENTS: tuple[str, ...] = get_args(AwsEnv)


def infra_stack(env: str) -> str:
    """The Pulumi stack an environment plans: its own, and ``dev``'s for ``local``
    (the local platform stands in for the dev account)."""
    return "dev" if env == "local" else env
