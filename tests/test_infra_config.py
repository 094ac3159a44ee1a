"""Per-stack configuration: the stack files validate, bad values fail clearly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.environments import AWS_ENVIRONMENTS
from core.errors import ConfigError
from core.settings import load_settings
from infra import config


@pytest.mark.parametrize("env", AWS_ENVIRONMENTS)
def test_every_stack_file_validates_in_ca_central_1(env: str) -> None:
    cfg = config.load(env)
    assert cfg.env == env and cfg.region == "ca-central-1"
    assert cfg.tags == {"Project": "finks", "Environment": env, "ManagedBy": "pulumi"}


def test_prod_has_nat_per_zone_and_multi_az_and_dev_is_cheap() -> None:
    prod, dev = config.load("prod"), config.load("dev")
    assert prod.nat_gateways == "per_az" and prod.db_multi_az and prod.deletion_protection
    assert dev.nat_gateways == "single" and not dev.db_multi_az


def test_no_stack_file_holds_a_secret_value() -> None:
    for env in AWS_ENVIRONMENTS:
        text = config.stack_file(env).read_text().lower()
        for word in ("password:", "apikey:", "secret:", "secure:"):
            assert word not in text, f"{env}: {word}"


def _copy_stacks(tmp_path: Path) -> Path:
    for env in AWS_ENVIRONMENTS:
        shutil.copy(config.stack_file(env), tmp_path / config.stack_file(env).name)
    return tmp_path


def test_bad_value_error_names_the_file_and_the_key(tmp_path: Path) -> None:
    infra_dir = _copy_stacks(tmp_path)
    path = config.stack_file("dev", infra_dir)
    path.write_text(path.read_text().replace("logRetentionDays: 30", "logRetentionDays: 42"))
    with pytest.raises(ConfigError) as err:
        config.load("dev", infra_dir)
    text = str(err.value)
    assert str(path) in text and "finks:logRetentionDays" in text and "42" in text


def test_prod_cannot_be_configured_single_az(tmp_path: Path) -> None:
    infra_dir = _copy_stacks(tmp_path)
    path = config.stack_file("prod", infra_dir)
    path.write_text(path.read_text().replace("dbMultiAz: true", "dbMultiAz: false"))
    with pytest.raises(ConfigError, match="prod needs dbMultiAz"):
        config.load("prod", infra_dir)


def test_zone_outside_the_region_is_rejected() -> None:
    raw = config.read_stack_file("dev")
    values = {k.split(":", 1)[1]: v for k, v in raw.items() if k.startswith("finks:")}
    values["availabilityZones"] = ["us-east-1a", "ca-central-1b"]
    with pytest.raises(ConfigError, match=r"zones \['us-east-1a'\] are not in region ca-central-1"):
        config.validate({"project": "finks", "region": "ca-central-1", **values}, "test")


def test_unknown_stack_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown stack 'qa'"):
        config.load("qa")


def test_project_and_region_come_from_the_settings_when_the_stack_file_is_silent(tmp_path: Path) -> None:
    infra_dir = _copy_stacks(tmp_path)
    path = config.stack_file("dev", infra_dir)
    path.write_text(path.read_text().replace("  aws:region: ca-central-1\n", ""))
    settings = load_settings(env="dev", project="acme", region="ca-central-1")
    cfg = config.load("dev", infra_dir, settings)
    assert (cfg.project, cfg.region, cfg.prefix) == ("acme", "ca-central-1", "acme-dev")
    assert cfg.tags["Project"] == "acme"


def test_the_stack_file_region_wins_over_the_settings() -> None:
    cfg = config.load("staging", settings=load_settings(env="staging", region="us-east-1"))
    assert cfg.region == "ca-central-1"


def test_local_settings_take_the_dev_stack() -> None:
    cfg = config.for_settings(load_settings(env="local"))
    assert cfg.env == "dev" and cfg.prefix == "finks-dev"


def test_inside_a_pulumi_run_the_settings_fill_project_and_region(monkeypatch: pytest.MonkeyPatch) -> None:
    from infra.plan import run_under_mocks

    monkeypatch.setenv("FINKS_PROJECT", "acme")
    monkeypatch.setenv("FINKS_REGION", "ca-central-1")
    raw = config.read_stack_file("staging")
    values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items() if k.startswith("finks:")}
    seen: list[config.InfraConfig] = []
    run_under_mocks(lambda: seen.append(config.from_pulumi()), "staging", config=values)
    assert (seen[0].env, seen[0].project, seen[0].region) == ("staging", "acme", "ca-central-1")
