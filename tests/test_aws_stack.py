"""S3's live "deployed" probe: every component's main resource the stack recorded is there."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from finks.checks import CheckContext, CheckFailed
from validation.aws import stack

if TYPE_CHECKING:
    from tests.fixtures.deployed import Deployed

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_aws")


def test_the_deployed_stack_is_found_from_its_recorded_outputs_and_by_tags(deployed_dev: Deployed,
                                                                        tmp_path: Path) -> None:
    evidence = stack.stack_deployed(deployed_dev.ctx())
    assert evidence.figures["components"] == ["database", "ecs", "monitoring", "networking", "secrets", "storage"]
    assert evidence.figures["found_by"].startswith("stack outputs")
    assert deployed_dev.outputs["vpc_id"] in evidence.message
    by_tags = stack.stack_deployed(deployed_dev.ctx(tmp_path / "no-outputs"))
    assert by_tags.figures["found_by"] == "tags Project=finks, Environment=dev"


@pytest.mark.check_fails("validation.aws.stack:stack_deployed")
def test_the_probe_fails_when_one_recorded_resource_is_gone(deployed_dev: Deployed) -> None:
    sm = deployed_dev.client("secretsmanager")
    name = deployed_dev.outputs["fmp_secret_name"]
    deployed_dev.undo(lambda: sm.restore_secret(SecretId=name))
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    with pytest.raises(CheckFailed, match=f"^secrets: secret {name} is scheduled for deletion;") as exc:
        stack.stack_deployed(deployed_dev.ctx())
    assert len(exc.value.evidence.figures["problems"]) == 1
    assert "finks infra up --env dev --yes" in exc.value.evidence.message


@pytest.mark.check_fails("validation.aws.stack:stack_deployed")
def test_on_an_empty_account_nothing_is_deployed(emulator: str, tmp_path: Path) -> None:
    from core.paths import REPO_ROOT

    with pytest.raises(CheckFailed, match=r"^no stack on dev: no stack outputs .* run `finks infra up --env dev --yes`"):
        stack.stack_deployed(CheckContext("dev", REPO_ROOT, tmp_path, tmp_path / "w"))


def test_the_deploy_action_on_an_aws_environment_needs_the_pulumi_cli(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """No Pulumi CLI here: the action says what to install instead of pretending to deploy."""
    from core.errors import FinksError
    from core.paths import REPO_ROOT
    from validation.infra import deploy_stack

    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with pytest.raises(FinksError, match="pulumi"):
        deploy_stack(CheckContext("dev", REPO_ROOT, tmp_path, tmp_path / "w"))
