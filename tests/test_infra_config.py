"""Per-stack configuration: the stack files validate, bad values fail clearly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.errors import ConfigError
from infra import config


@pytest.mark.parametrize("env", config.STACKS)
def test_every_stack_file_validates_in_ca_central_1(env: str) -> None:
    cfg = config.load(env)
    assert cfg.env == env and cfg.region == "ca-central-1"
    assert cfg.tags == {"Project": "finks", "Environment": env, "ManagedBy": "pulumi"}


def test_prod_has_nat_per_zone_and_multi_az_and_dev_is_cheap() -> None:
    prod, dev = config.load("prod"), config.load("dev")
    assert prod.nat_gateways == "per_az" and prod.db_multi_az and prod.deletion_protection
    assert dev.nat_gateways == "single" and not dev.db_multi_az


def test_no_stack_file_holds_a_secret_value() -> None:
    for env in config.STACKS:
        text = config.stack_file(env).read_text().lower()
        for word in ("password:", "apikey:", "secret:", "secure:"):
            assert word not in text, f"{env}: {word}"


def _copy_stacks(tmp_path: Path) -> Path:
    for env in config.STACKS:
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
    with pytest.raises(ConfigError, match="us-east-1a"):
        config.validate(values, "test")


def test_unknown_stack_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown stack 'qa'"):
        config.load("qa")
