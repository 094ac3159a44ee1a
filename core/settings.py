"""One settings model: every per-environment value derives from it.

Sources, highest priority first: keyword arguments, environment variables,
``finks.yaml`` at the repository root (or ``FINKS_CONFIG``), defaults.
Secrets (the FMP key, database passwords) are read from the environment or a
secret store, never from files in the repository.

`.env.example` documents every variable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from core.environments import ENVIRONMENTS, Env  # noqa: F401 - re-exported
from core.errors import ConfigError
from core.paths import REPO_ROOT, repo_root  # noqa: F401 - REPO_ROOT re-exported for callers

_DB_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg", "sqlite+aiosqlite")


# FMP's plans in calls per minute. Third-party figures (see fmp-samples/README):
# keep them configuration, and let FMP_CALLS_PER_MINUTE override.
FMP_PLAN_LIMITS: dict[str, int] = {"basic": 5, "starter": 300, "premium": 750, "ultimate": 3000}


class _YamlSource(PydanticBaseSettingsSource):
    """Reads finks.yaml; a malformed file is a ConfigError naming the file."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {}
        import yaml

        try:
            data = yaml.safe_load(self.path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{self.path}: not valid YAML ({exc})") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{self.path}: expected a mapping of setting: value")
        secrets = {"fmp_api_key", "api_key"} & set(data)
        # A database URL is configuration; only one that embeds a password is a secret.
        if isinstance(data.get("database_url"), str) and urlsplit(data["database_url"]).password:
            secrets.add("database_url (with a password)")
        if secrets:
            raise ConfigError(
                f"{self.path}: {', '.join(sorted(secrets))} must not be stored in a file",
                hint="set it in the environment (see .env.example)",
            )
        return data


def window_limit(calls_per_minute: int, window_s: float) -> int:
    """The per-minute rate as a count per window of ``window_s`` seconds (at least one call)."""
    return max(1, int(calls_per_minute * window_s / 60.0 + 1e-9))


class Settings(BaseSettings):
    """Effective configuration for one environment."""

    model_config = SettingsConfigDict(env_prefix="FINKS_", extra="forbid", populate_by_name=True)

    env: Env = "local"
    project: str = "finks"
    region: str = "ca-central-1"
    root: Path = Field(default_factory=repo_root)
    state_dir: Path | None = None
    lake_uri: str | None = None
    storage: Literal["local", "s3"] | None = None
    s3_endpoint_url: str | None = None
    bucket_prefix: str | None = None

    prefect_port: int = Field(4200, ge=1, le=65535)
    moto_port: int = Field(5000, ge=1, le=65535)
    api_port: int = Field(8000, ge=1, le=65535)
    prefect_api_url: str | None = None
    database_url: SecretStr | None = None
    # Which database Prefect's local server uses when FINKS_DATABASE_URL is not set:
    # "auto" takes PostgreSQL when one answers on 127.0.0.1:5432, else SQLite.
    prefect_database: Literal["auto", "postgresql", "sqlite"] = "auto"
    # Under load a cold Prefect server (migrations, UI assets) can take ~2 minutes.
    prefect_start_timeout: int = Field(120, ge=1, le=1800)
    worker_pool: str = Field("finks-process", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")

    engine: Literal["duckdb", "spark"] | None = None
    dbt_target: Literal["local", "athena"] | None = None
    universe: str = "default"
    api_key: SecretStr | None = None

    fmp_base_url: str | None = Field(None, validation_alias="FMP_BASE_URL")
    fmp_api_key: SecretStr | None = Field(None, validation_alias="FMP_API_KEY")
    fmp_plan: Literal["basic", "starter", "premium", "ultimate"] = Field(
        "starter", validation_alias="FMP_PLAN"
    )
    fmp_calls_per_minute: int | None = Field(None, ge=1, validation_alias="FMP_CALLS_PER_MINUTE")
    # The window the limit is counted over. FMP counts per minute; a shorter window keeps the
    # same rate (limit × window / 60 calls per window) and proves the limiter in seconds.
    fmp_rate_window_s: float = Field(60.0, gt=0, le=3600, validation_alias="FMP_RATE_WINDOW_S")
    fmp_max_concurrency: int = Field(8, ge=1, le=256, validation_alias="FMP_MAX_CONCURRENCY")
    fmp_sim_port: int = Field(8765, ge=1, le=65535, validation_alias="FMP_SIM_PORT")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = Path(os.environ.get("FINKS_CONFIG", repo_root() / "finks.yaml"))
        return (init_settings, env_settings, _YamlSource(settings_cls, path))

    @field_validator("fmp_base_url", "prefect_api_url", "s3_endpoint_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    @field_validator("database_url")
    @classmethod
    def _database(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        scheme = value.get_secret_value().split("://", 1)[0]
        if scheme not in _DB_SCHEMES:
            raise ValueError(f"scheme {scheme!r} is not supported; use one of {', '.join(_DB_SCHEMES)}")
        return value

    @model_validator(mode="after")
    def _derive(self) -> Settings:
        if self.database_url is None and self.env == "local" and self.prefect_database != "sqlite":
            if self.prefect_database == "postgresql" or _postgres_answers(*LOCAL_POSTGRES):
                self.database_url = SecretStr(LOCAL_PREFECT_DATABASE)
        if self.storage is None:
            self.storage = "local" if self.env == "local" else "s3"
        if self.engine is None:
            self.engine = "duckdb" if self.env == "local" else "spark"
        if self.dbt_target is None:
            self.dbt_target = "local" if self.env == "local" else "athena"
        return self

    # ---- derived values -------------------------------------------------
    @property
    def is_local(self) -> bool:
        return self.env == "local"

    @property
    def home(self) -> Path:
        """Where finks keeps state, logs and the local lake (.finks/)."""
        if self.state_dir is not None:
            return Path(self.state_dir)
        return Path(os.environ.get("FINKS_STATE_DIR", self.root / ".finks"))

    @property
    def dev_dir(self) -> Path:
        return self.home / "dev"

    @property
    def prefect_home(self) -> Path:
        return self.home / "prefect"

    @property
    def prefect_database_url(self) -> str | None:
        """The URL Prefect's server uses (asyncpg driver), or None for its SQLite default."""
        if self.database_url is None:
            return None
        url = self.database_url.get_secret_value()
        for scheme in ("postgresql://", "postgres://"):
            if url.startswith(scheme):
                return "postgresql+asyncpg://" + url[len(scheme):]
        return url

    @property
    def glue_database(self) -> str:
        # Glue/Athena names allow only lowercase letters, digits and underscores.
        return f"{self.project}_{self.env}_lake".replace("-", "_").lower()

    @property
    def fmp_secret_name(self) -> str:
        return f"{self.project}/{self.env}/fmp-api-key"

    @property
    def s3_endpoint(self) -> str | None:
        """The S3/AWS endpoint: explicit, else the moto server locally, else AWS."""
        if self.s3_endpoint_url:
            return self.s3_endpoint_url
        if self.is_local:
            return f"http://127.0.0.1:{self.moto_port}"
        return None

    @property
    def prefect_api(self) -> str:
        if self.prefect_api_url:
            return self.prefect_api_url
        return f"http://127.0.0.1:{self.prefect_port}/api"

    @property
    def fmp_url(self) -> str:
        """FMP base URL: explicit, else FMP when a key is set, else the simulator."""
        if self.fmp_base_url:
            return self.fmp_base_url
        if self.fmp_api_key is not None:
            return "https://financialmodelingprep.com"
        return f"http://127.0.0.1:{self.fmp_sim_port}"

    @property
    def uses_simulator(self) -> bool:
        return self.fmp_base_url is None and self.fmp_api_key is None

    @property
    def fmp_rate_limit(self) -> int:
        return self.fmp_calls_per_minute or FMP_PLAN_LIMITS[self.fmp_plan]

    @property
    def fmp_window_limit(self) -> int:
        """Calls allowed in one ``fmp_rate_window_s`` window: the per-minute rate scaled to it."""
        return window_limit(self.fmp_rate_limit, self.fmp_rate_window_s)

    @property
    def database_kind(self) -> str:
        if self.database_url is None or self.database_url.get_secret_value().startswith("sqlite"):
            return "sqlite"
        return "postgresql"

    def redacted(self) -> dict[str, Any]:
        """Effective settings, derived values included, secrets redacted."""
        data = self.model_dump(mode="json")
        for secret in ("fmp_api_key", "database_url", "api_key"):
            value = getattr(self, secret)
            data[secret] = _redact_url(value.get_secret_value()) if value is not None else None
        data.update(
            home=str(self.home),
            s3_endpoint=self.s3_endpoint,
            prefect_api=self.prefect_api,
            fmp_url=self.fmp_url,
            fmp_rate_limit=self.fmp_rate_limit,
            uses_simulator=self.uses_simulator,
            database_kind=self.database_kind,
            glue_database=self.glue_database,
            fmp_secret_name=self.fmp_secret_name,
        )
        return data


LOCAL_POSTGRES = ("127.0.0.1", 5432)
# finks creates this role and database on first `finks dev up` (trust auth on loopback).
LOCAL_PREFECT_DATABASE = "postgresql+asyncpg://finks@127.0.0.1:5432/finks_prefect"


def _postgres_answers(host: str, port: int, timeout: float = 0.25) -> bool:
    """Whether something accepts TCP connections on host:port (a refused connect is instant)."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _redact_url(value: str) -> str:
    """Hide a password inside a URL, or the whole value when it is not a URL."""
    if "://" in value and "@" in value:
        scheme, rest = value.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"
    if "://" in value:
        return value
    return "***"


def variable_name(field: str) -> str:
    """The environment variable behind a settings field (its alias, else FINKS_<FIELD>)."""
    fields = Settings.model_fields
    if field not in fields:  # pydantic reports an aliased field under its alias
        return field if any(f.validation_alias == field for f in fields.values()) else field.upper()
    alias = fields[field].validation_alias
    return alias if isinstance(alias, str) else f"FINKS_{field.upper()}"


def environment_variables() -> set[str]:
    """Every environment variable the settings model reads."""
    return {variable_name(name) for name in Settings.model_fields}


def load_settings(env: str | None = None, root: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings; invalid values become a ConfigError naming the variable.

    `.env` is read first (core.envfile): the process environment wins over it.
    """
    from core.envfile import load_env_file

    load_env_file()
    kwargs: dict[str, Any] = dict(overrides)
    if env is not None:
        kwargs["env"] = env
    if root is not None:
        kwargs["root"] = root
    try:
        return Settings(**kwargs)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            allowed = err.get("ctx", {}).get("expected")
            detail = f"expected {allowed}" if allowed else err["msg"]
            problems.append(f"{variable_name(field)}={err.get('input')!r}: {detail}")
        raise ConfigError("invalid settings: " + "; ".join(problems)) from None
