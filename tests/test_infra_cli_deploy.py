"""`finks infra plan|check|preview|up` and the deploy path's clear failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra import deploy
from infra.cli import app

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_aws")

runner = CliRunner()


def test_cli_module_imports_neither_pulumi_nor_boto3() -> None:
    code = "import sys, infra.cli; print([m for m in ('pulumi', 'pulumi_aws', 'boto3') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_plan_json_lists_every_resource_with_type_name_and_inputs() -> None:
    result = runner.invoke(app, ["plan", "--env", "dev", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["schema"] == "finks.infra-plan/v1" and payload["stack"] == "dev"
    buckets = [r for r in payload["resources"] if r["type"] == "aws:s3/bucket:Bucket"]
    assert {b["inputs"]["bucket"] for b in buckets} == {f"finks-dev-{z}" for z in ("logs", "bronze", "silver", "gold")}
    assert payload["count"] == sum(1 for r in payload["resources"] if not r["type"].startswith("finks:"))


def test_plan_text_for_local_plans_the_dev_stack() -> None:
    result = runner.invoke(app, ["plan", "--env", "local"])
    assert result.exit_code == 0
    assert "+ aws:rds/instance:Instance" in result.stdout and "finks-dev-prefect" in result.stdout


def test_check_is_clean_for_prod() -> None:
    result = runner.invoke(app, ["check", "--env", "prod", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["violations"] == []


def test_check_exits_1_listing_violations(tmp_path: Path) -> None:
    program = tmp_path / "bad.py"
    program.write_text(
        "import pulumi_aws as aws\n"
        "aws.cloudwatch.LogGroup('forever', name='/x')\n"
        "aws.rds.Instance('db', engine='postgres', instance_class='db.t4g.micro', allocated_storage=20, publicly_accessible=True)\n"
    )
    result = runner.invoke(app, ["check", "--env", "dev", "--program", str(program)])
    assert result.exit_code == 1
    assert "[log-retention] forever" in result.stdout and "[no-public-database] db" in result.stdout
    assert "[storage-encrypted] db" in result.stdout and "[required-tags] forever" in result.stdout


def test_unknown_environment_is_a_usage_error() -> None:
    from core.errors import UsageError

    result = runner.invoke(app, ["plan", "--env", "qa"])
    assert isinstance(result.exception, UsageError) and "qa" in str(result.exception)


def test_up_requires_confirmation() -> None:
    from core.errors import UsageError

    result = runner.invoke(app, ["up", "--env", "staging"])
    assert isinstance(result.exception, UsageError) and "--yes" in str(result.exception)


@pytest.fixture
def no_aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No credentials anywhere boto3 looks; no instance metadata lookups."""
    for var in list(os.environ):
        if var.startswith("AWS_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return tmp_path


def test_preview_without_pulumi_cli_says_so(no_aws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(no_aws))
    result = runner.invoke(app, ["preview", "--env", "dev"])
    assert isinstance(result.exception, deploy.DeployUnavailable)
    assert "pulumi CLI is not on PATH" in str(result.exception) and "finks infra plan" in str(result.exception)
    assert result.exception.exit_code == 1


def test_up_without_aws_credentials_says_so(no_aws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in `pulumi` executable on PATH: the CLI check passes, credentials are next.
    fake = no_aws / "bin"
    fake.mkdir()
    (fake / "pulumi").write_text("#!/bin/sh\necho v3.0.0\n")
    (fake / "pulumi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(deploy.DeployUnavailable, match="no AWS credentials found"):
        deploy.up("staging")


def test_credentials_are_found_from_the_environment(no_aws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    assert deploy.require_aws_credentials() == "env"
