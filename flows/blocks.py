"""Prefect blocks as code (S10): one S3 bucket block per zone, the AWS
credentials, the ECS task settings and the FMP key as a Secret.

`apply_blocks` is idempotent: it compares with what the server holds and
reports each block as created, updated or unchanged.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from core import lake
from core.errors import ConfigError

if TYPE_CHECKING:
    from core.settings import Settings

ZONES = ("bronze", "silver", "gold")


def _ecs_block_class() -> Any:
    """Prefect 3 has no generic JSON block and prefect-aws no ECS task block: a typed one of ours."""
    global _ECS_BLOCK
    if _ECS_BLOCK is None:
        from prefect.blocks.core import Block
        from pydantic import Field

        class EcsTaskBlock(Block):
            """Where and how the pipeline's ECS tasks (connector, dbt) run."""

            _block_type_name = "Finks ECS Task"
            _block_type_slug = "finks-ecs-task"

            cluster: str
            task_definitions: dict[str, str]
            containers: dict[str, str]
            subnets: list[str] = Field(default_factory=list)
            security_groups: list[str] = Field(default_factory=list)
            assign_public_ip: bool = False
            launch_type: str = "FARGATE"

        _ECS_BLOCK = EcsTaskBlock
    return _ECS_BLOCK


_ECS_BLOCK: Any = None


def names(settings: Settings) -> dict[str, str]:
    base = f"{settings.project}-{settings.env}"
    return {
        "aws": f"{base}-aws",
        **{zone: f"{base}-{zone}" for zone in ZONES},
        "ecs": f"{base}-ecs-task",
        "fmp": f"{base}-fmp-api-key",
    }


def ecs_task_settings(settings: Settings) -> dict[str, Any]:
    from flows.ecs import EcsTaskSettings

    base = f"{settings.project}-{settings.env}"

    def split(var: str) -> list[str]:
        return [v for v in os.environ.get(var, "").split(",") if v]

    return asdict(EcsTaskSettings(
        cluster=base,
        task_definitions={"connector": f"{base}-fmp-connector", "dbt": f"{base}-dbt"},
        containers={"connector": "fmp-connector", "dbt": "dbt"},
        subnets=split("FINKS_ECS_SUBNETS"),
        security_groups=split("FINKS_ECS_SECURITY_GROUPS"),
    ))


def desired_blocks(settings: Settings) -> dict[str, Any]:
    """The blocks for this environment, built (not saved)."""
    from prefect.blocks.system import Secret
    from prefect_aws import AwsClientParameters, AwsCredentials, S3Bucket

    n = names(settings)
    if settings.is_local:
        # The emulator takes any key; fixed placeholders keep the block reproducible.
        creds = AwsCredentials(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # type: ignore[arg-type]  # pydantic coerces to SecretStr
            region_name=settings.region,
            aws_client_parameters=AwsClientParameters(endpoint_url=settings.s3_endpoint),
        )
    else:
        # In AWS the task role provides credentials: the block only pins the region.
        creds = AwsCredentials(region_name=settings.region)
    blocks: dict[str, Any] = {n["aws"]: creds}
    for zone in ZONES:
        blocks[n[zone]] = S3Bucket(bucket_name=lake.bucket(settings, zone), credentials=creds)
    blocks[n["ecs"]] = _ecs_block_class()(**ecs_task_settings(settings))
    if settings.fmp_api_key is not None:
        key = settings.fmp_api_key.get_secret_value()
    elif settings.is_local:
        key = "simulator"  # the local FMP simulator accepts any key
    else:
        raise ConfigError(f"FMP_API_KEY is not set for {settings.env}", hint="export FMP_API_KEY before 'finks blocks apply'")
    blocks[n["fmp"]] = Secret(value=key)  # type: ignore[arg-type]  # pydantic coerces to SecretStr
    return blocks


def _comparable(block: Any) -> dict[str, Any]:
    """The block's settings, secrets revealed, Prefect's bookkeeping (`_block_*`) left out."""
    data = {k: v for k, v in block.model_dump(mode="json", exclude={"block_type_slug"}).items() if not k.startswith("_")}
    for field in ("aws_secret_access_key", "value"):
        raw: Any = getattr(block, field, None)
        if hasattr(raw, "get_secret_value"):
            data[field] = raw.get_secret_value()
    if hasattr(block, "credentials"):
        data["credentials"] = _comparable(block.credentials)
    return data


def apply_blocks(settings: Settings) -> dict[str, str]:
    """Save every block; returns {block name: created|updated|unchanged}."""
    outcomes: dict[str, str] = {}
    saved_creds = None
    for name, block in desired_blocks(settings).items():
        if saved_creds is not None and hasattr(block, "credentials"):
            block.credentials = saved_creds  # reference the named credentials block, not a copy
        try:
            current = type(block).load(name)
        except ValueError:
            current = None
        if current is not None and _comparable(current) == _comparable(block):
            outcomes[name] = "unchanged"
            kept = current
        else:
            block.save(name, overwrite=True)
            outcomes[name] = "created" if current is None else "updated"
            kept = block
        if name == names(settings)["aws"]:
            saved_creds = kept
    return outcomes


def load_blocks(settings: Settings) -> dict[str, Any]:
    """Load every block back from the server (raises if one is missing)."""
    from prefect.blocks.system import Secret
    from prefect_aws import AwsCredentials, S3Bucket

    n = names(settings)
    loaded: dict[str, Any] = {n["aws"]: AwsCredentials.load(n["aws"])}
    for zone in ZONES:
        loaded[n[zone]] = S3Bucket.load(n[zone])
    loaded[n["ecs"]] = _ecs_block_class().load(n["ecs"])
    loaded[n["fmp"]] = Secret.load(n["fmp"])
    return loaded


def load_aws_credentials(settings: Settings) -> Any:
    from prefect_aws import AwsCredentials

    return AwsCredentials.load(names(settings)["aws"])


def load_ecs_settings(settings: Settings) -> Any:
    from flows.ecs import EcsTaskSettings

    block = _ecs_block_class().load(names(settings)["ecs"])
    return EcsTaskSettings.from_dict(block.model_dump())
