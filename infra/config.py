"""Typed per-environment configuration, validated by pydantic.

One model, two sources: the stack file ``Pulumi.<env>.yaml`` (read directly
by the dry plan) and ``pulumi.Config`` (inside a real Pulumi run). Both go
through :func:`validate`, so a bad value fails the same way everywhere with
the file, the key and what to do.

The stacks are the AWS environments of the one environment switch
(:mod:`core.environments`); what a stack does not set itself (its project,
its region) comes from the settings, as for every other package.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.environments import AWS_ENVIRONMENTS, AwsEnv, infra_stack
from core.errors import ConfigError

if TYPE_CHECKING:
    from core.settings import Settings

INFRA_DIR = Path(__file__).resolve().parent
NAMESPACE = "finks"
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


class InfraConfig(BaseModel):
    """Everything that differs between dev, staging and prod."""

    model_config = ConfigDict(alias_generator=_camel, populate_by_name=True, extra="forbid", frozen=True)

    env: AwsEnv
    # No defaults here: a stack file may set them, else the settings do (`defaults`).
    project: str
    region: str
    vpc_cidr: str
    availability_zones: list[str] = Field(min_length=2, max_length=4)
    nat_gateways: Literal["single", "per_az"]
    db_instance_class: str = Field(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")
    db_allocated_storage_gb: int = Field(ge=20, le=2000)
    db_multi_az: bool
    db_backup_retention_days: int = Field(ge=1, le=35)
    db_max_connections: int = Field(ge=10)
    deletion_protection: bool
    log_retention_days: int
    prefect_domain: str = Field(pattern=r"^[a-z0-9.-]+\.[a-z]{2,}$")
    prefect_server_count: int = Field(1, ge=1, le=3)
    image_tag: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,128}$")
    hosted_zone_id: str | None = None
    alert_email: str | None = None
    # Alarms page PagerDuty (infra/components/pagerduty.py): set once the integration key is in
    # the stack's secret; `pulumi up` reads it from there.
    pagerduty: bool = False
    api_lambda_handler: str = "api.lambda_handler.handler"

    @field_validator("availability_zones", mode="before")
    @classmethod
    def _json_list(cls, value: Any) -> Any:
        # pulumi.Config hands structured values over as JSON text.
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"CloudWatch accepts only {', '.join(map(str, LOG_RETENTION_DAYS))} days")
        return value

    @field_validator("vpc_cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        net = ipaddress.ip_network(value, strict=True)
        if net.prefixlen > 16:
            raise ValueError("needs at least a /16 to carve /20 subnets per zone")
        return value

    @model_validator(mode="after")
    def _zones_in_region(self) -> InfraConfig:
        strays = [az for az in self.availability_zones if not az.startswith(self.region)]
        if strays:
            raise ValueError(f"zones {strays} are not in region {self.region}")
        if self.env == "prod" and not (self.db_multi_az and self.nat_gateways == "per_az"):
            raise ValueError("prod needs dbMultiAz: true and natGateways: per_az")
        return self

    @property
    def tags(self) -> dict[str, str]:
        return {"Project": self.project, "Environment": self.env, "ManagedBy": "pulumi"}

    @property
    def prefix(self) -> str:
        return f"{self.project}-{self.env}"


def stack_file(env: str, infra_dir: Path = INFRA_DIR) -> Path:
    return infra_dir / f"Pulumi.{env}.yaml"


def defaults(settings: Settings) -> dict[str, str]:
    """What a stack takes from the settings when its file does not say."""
    return {"project": settings.project, "region": settings.region}


def validate(raw: dict[str, Any], source: str) -> InfraConfig:
    """Validate raw ``finks:*`` values; errors name the source and the key."""
    try:
        return InfraConfig.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(stack)"
            problems.append(f"{NAMESPACE}:{key}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError(
            f"{source}: invalid infrastructure config: " + "; ".join(problems),
            hint="fix the value in the stack file or with `pulumi config set`",
        ) from None


def read_stack_file(env: str, infra_dir: Path = INFRA_DIR) -> dict[str, Any]:
    """The raw config map of a stack file (``aws:region`` included)."""
    import yaml

    if env not in AWS_ENVIRONMENTS:
        raise ConfigError(f"unknown stack {env!r}", hint=f"use one of {', '.join(AWS_ENVIRONMENTS)}")
    path = stack_file(env, infra_dir)
    if not path.is_file():
        raise ConfigError(f"{path}: stack file missing", hint="create it from Pulumi.dev.yaml")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    config = data.get("config") if isinstance(data, dict) else None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a top-level `config:` mapping")
    return config


def _settings(env: str, settings: Settings | None) -> Settings:
    if settings is not None:
        return settings
    from core.settings import load_settings

    # An unknown stack name is reported by InfraConfig's own `env` check, not here.
    return load_settings(env=env if env in AWS_ENVIRONMENTS else None)


def load(env: str, infra_dir: Path = INFRA_DIR, settings: Settings | None = None) -> InfraConfig:
    """Typed config of a stack, straight from its file; project and region default
    to ``settings`` (by default, the settings of the stack's environment)."""
    config = read_stack_file(env, infra_dir)
    raw = {key.split(":", 1)[1]: value for key, value in config.items() if key.startswith(f"{NAMESPACE}:")}
    if "aws:region" in config:
        raw["region"] = config["aws:region"]
    if raw.get("env", env) != env:
        raise ConfigError(f"{stack_file(env, infra_dir)}: finks:env is {raw['env']!r}, expected {env!r}")
    return validate({**defaults(_settings(env, settings)), **raw}, str(stack_file(env, infra_dir)))


def for_settings(settings: Settings, infra_dir: Path = INFRA_DIR) -> InfraConfig:
    """The config of the stack an environment plans (``local`` plans ``dev``'s)."""
    return load(infra_stack(settings.env), infra_dir, settings)


def from_pulumi(settings: Settings | None = None) -> InfraConfig:
    """Typed config inside a Pulumi run (real engine or mocks)."""
    import pulumi

    cfg = pulumi.Config(NAMESPACE)
    raw: dict[str, Any] = {}
    if cfg.get("project") is None or not pulumi.Config("aws").get("region"):
        raw.update(defaults(_settings(pulumi.get_stack(), settings)))
    for name, field in InfraConfig.model_fields.items():
        value = cfg.get(field.alias or name)
        if value is not None:
            raw[field.alias or name] = value
    region = pulumi.Config("aws").get("region")
    if region:
        raw["region"] = region
    return validate(raw, f"stack {pulumi.get_stack()!r}")
