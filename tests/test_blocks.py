"""Blocks as code (S10): applied idempotently, loaded back from a real Prefect server."""

from __future__ import annotations

from typing import Any

import pytest

from core import lake

pytestmark = pytest.mark.services


def test_apply_creates_then_reports_unchanged(local_stack: Any) -> None:
    from flows.blocks import apply_blocks, names

    first = apply_blocks(local_stack)
    second = apply_blocks(local_stack)

    assert set(first) == set(names(local_stack).values())
    assert set(first.values()) <= {"created", "updated", "unchanged"}
    assert set(second.values()) == {"unchanged"}


def test_changed_setting_updates_only_that_block(local_stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.blocks import apply_blocks, load_ecs_settings, names

    apply_blocks(local_stack)
    monkeypatch.setenv("FINKS_ECS_SUBNETS", "subnet-0abc,subnet-0def")
    outcome = apply_blocks(local_stack)
    monkeypatch.delenv("FINKS_ECS_SUBNETS")
    apply_blocks(local_stack)

    ecs_name = names(local_stack)["ecs"]
    assert outcome[ecs_name] == "updated"
    assert {v for k, v in outcome.items() if k != ecs_name} == {"unchanged"}
    assert load_ecs_settings(local_stack).subnets == []


def test_loaded_blocks_reach_the_emulator(local_stack: Any) -> None:
    """The S3 bucket block for bronze writes and reads through the AWS credentials block's endpoint."""
    from flows.blocks import apply_blocks, load_blocks, names

    apply_blocks(local_stack)
    n = names(local_stack)
    blocks = load_blocks(local_stack)

    creds = blocks[n["aws"]]
    assert creds.aws_client_parameters.endpoint_url == local_stack.s3_endpoint
    bronze = blocks[n["bronze"]]
    assert bronze.bucket_name == lake.bucket(local_stack, "bronze")
    bronze.write_path("_blocks_test/hello.txt", b"hello")
    assert bronze.read_path("_blocks_test/hello.txt") == b"hello"
    assert blocks[n["fmp"]].get() == "simulator"
    assert blocks[n["ecs"]].task_definitions == {"connector": "finks-local-fmp-connector", "dbt": "finks-local-dbt"}


def test_cloud_environment_without_fmp_key_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.errors import ConfigError
    from core.settings import load_settings
    from flows.blocks import desired_blocks

    monkeypatch.delenv("FMP_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="FMP_API_KEY is not set for dev"):
        desired_blocks(load_settings(env="dev"))


def test_blocks_apply_command_reports_each_block(local_stack: Any) -> None:
    import typer
    from typer.testing import CliRunner

    from flows.cli import register

    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["blocks", "apply", "--json"])

    assert result.exit_code == 0, result.output
    import json

    outcome = json.loads(result.stdout)["blocks"]
    assert outcome["finks-local-bronze"] in {"created", "updated", "unchanged"}
    assert len(outcome) == 6
