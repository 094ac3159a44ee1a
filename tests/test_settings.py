"""The one settings model: sources, derivations, validation and redaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import lake
from core.errors import ConfigError
from core.settings import load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith(("FINKS_", "FMP_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("FINKS_CONFIG", str(tmp_path / "finks.yaml"))


def test_local_defaults_derive_from_the_environment_switch(tmp_path: Path) -> None:
    s = load_settings(state_dir=tmp_path)
    assert (s.env, s.storage, s.engine, s.dbt_target, s.region) == ("local", "local", "duckdb", "local", "ca-central-1")
    assert lake.zone_uri(s, "bronze") == str(tmp_path / "lake" / "bronze")
    assert s.s3_endpoint == "http://127.0.0.1:5000"
    assert s.prefect_api == "http://127.0.0.1:4200/api"
    assert s.prefect_database == "auto"
    assert s.dev_dir == tmp_path / "dev" and s.prefect_home == tmp_path / "prefect"


def test_local_prefect_database_is_chosen_in_settings(tmp_path: Path) -> None:
    # "auto" depends on whether a PostgreSQL answers on this machine; the two choices do not.
    sqlite = load_settings(state_dir=tmp_path, prefect_database="sqlite")
    assert sqlite.database_kind == "sqlite" and sqlite.prefect_database_url is None
    pg = load_settings(state_dir=tmp_path, prefect_database="postgresql")
    assert pg.database_kind == "postgresql"
    assert pg.prefect_database_url == "postgresql+asyncpg://finks@127.0.0.1:5432/finks_prefect"
    explicit = load_settings(prefect_database="postgresql", database_url="sqlite+aiosqlite:///x.db")
    assert explicit.database_kind == "sqlite"
    assert load_settings(env="prod", prefect_database="postgresql").database_url is None


def test_aws_environments_use_s3_spark_and_athena() -> None:
    s = load_settings(env="prod")
    assert (s.storage, s.engine, s.dbt_target) == ("s3", "spark", "athena")
    assert lake.zone_uri(s, "gold") == "s3://finks-prod-gold"
    assert s.s3_endpoint is None
    assert lake.buckets(s) == {z: f"finks-prod-{z}" for z in ("bronze", "silver", "gold", "logs")}
    assert s.glue_database == "finks_prod_lake"
    assert s.fmp_secret_name == "finks/prod/fmp-api-key"


def test_environment_variables_override_yaml_and_yaml_overrides_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "finks.yaml").write_text("moto_port: 5111\nprefect_port: 4333\n")
    monkeypatch.setenv("FINKS_PREFECT_PORT", "4444")
    s = load_settings()
    assert (s.moto_port, s.prefect_port) == (5111, 4444)


def test_invalid_value_names_the_variable_and_what_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINKS_STORAGE", "ftp")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "FINKS_STORAGE='ftp'" in str(err.value) and "'local' or 's3'" in str(err.value)


def test_unsupported_database_scheme_is_rejected_with_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINKS_DATABASE_URL", "mysql://u@h/db")
    with pytest.raises(ConfigError, match=r"FINKS_DATABASE_URL.*'mysql'.*postgresql"):
        load_settings()


def test_postgres_url_gets_the_asyncpg_driver_for_prefect(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINKS_DATABASE_URL", "postgresql://finks:pw@127.0.0.1:5432/prefect")
    s = load_settings()
    assert s.database_kind == "postgresql"
    assert s.prefect_database_url == "postgresql+asyncpg://finks:pw@127.0.0.1:5432/prefect"


def test_secrets_in_finks_yaml_are_refused(tmp_path: Path) -> None:
    (tmp_path / "finks.yaml").write_text("fmp_api_key: abc\n")
    with pytest.raises(ConfigError, match="must not be stored in a file"):
        load_settings()


def test_redacted_hides_keys_and_database_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMP_API_KEY", "sekrit-key")
    monkeypatch.setenv("FINKS_DATABASE_URL", "postgresql://finks:hunter2@db:5432/prefect")
    data = load_settings().redacted()
    text = repr(data)
    assert "sekrit-key" not in text and "hunter2" not in text
    assert data["database_url"] == "postgresql://finks:***@db:5432/prefect"
    assert data["fmp_url"] == "https://financialmodelingprep.com"


def test_config_show_prints_effective_settings_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    from finks.devstack.cli import config_app

    monkeypatch.setenv("FMP_API_KEY", "sekrit-key")
    monkeypatch.setenv("FINKS_MOTO_PORT", "5999")
    result = CliRunner().invoke(config_app, ["show", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)["settings"]
    assert shown["moto_port"] == 5999 and shown["s3_endpoint"] == "http://127.0.0.1:5999"
    assert "sekrit-key" not in result.stdout
    text = CliRunner().invoke(config_app, ["show"]).stdout
    assert "FINKS_MOTO_PORT" in text and "sekrit-key" not in text


def test_env_example_documents_every_settings_variable() -> None:
    from core.settings import REPO_ROOT, Settings, variable_name

    text = (REPO_ROOT / ".env.example").read_text()
    missing = [variable_name(f) for f in Settings.model_fields if variable_name(f) not in text]
    assert not missing, f".env.example lacks {missing}"


def test_finks_yaml_may_name_a_database_without_a_password(tmp_path: Path) -> None:
    (tmp_path / "finks.yaml").write_text("database_url: postgresql://finks@127.0.0.1:5432/finks_prefect\n")
    assert load_settings().database_kind == "postgresql"
    (tmp_path / "finks.yaml").write_text("database_url: postgresql://finks:pw@127.0.0.1:5432/p\n")
    with pytest.raises(ConfigError, match=r"database_url \(with a password\) must not be stored"):
        load_settings()
