"""Every S0/S4/S20/S22 foundation check can fail: a machine without credentials, CLI or key,
a foreign process on the stack's port, a repository copy with a package, a runbook or a
document missing."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from finks.checks import CheckFailed, CheckSkipped
from finks.devstack.procs import free_port, port_in_use
from tests.fixtures.checks import ROOT, context, fake_tool, repo_copy
from validation import foundation as checks


@pytest.fixture
def no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings from the environment only: no finks.yaml of this machine leaks in."""
    monkeypatch.setenv("FINKS_CONFIG", str(tmp_path / "no-finks.yaml"))


@pytest.mark.parametrize("check", [checks.aws_credentials_work, checks.pulumi_cli_available, checks.fmp_key_present],
                         ids=lambda c: c.__name__)
def test_aws_preparation_checks_skip_on_local(tmp_path: Path, check) -> None:
    with pytest.raises(CheckSkipped, match="for the AWS environments"):
        check(context(tmp_path))


def test_port_check_skips_on_aws_environments(tmp_path: Path) -> None:
    with pytest.raises(CheckSkipped, match="only for env 'local'"):
        checks.local_ports_free_or_ours(context(tmp_path, env="dev"))


@pytest.mark.check_fails("validation.foundation:aws_credentials_work")
def test_credentials_check_fails_on_a_machine_without_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_config: None
) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(CheckFailed, match="no AWS credentials found"):
        checks.aws_credentials_work(context(tmp_path, env="dev"))


@pytest.mark.check_fails("validation.foundation:pulumi_cli_available")
def test_pulumi_check_fails_without_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty-bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(CheckFailed, match="the Pulumi CLI is not installed"):
        checks.pulumi_cli_available(context(tmp_path, env="dev"))


@pytest.mark.check_fails("validation.foundation:pulumi_cli_available")
@pytest.mark.parametrize("script,says", [("echo 'error: no home' >&2; exit 1", "'pulumi version' exited 1"),
                                         ("exit 0", "printed no version")])
def test_pulumi_check_fails_on_a_cli_that_does_not_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        script: str, says: str) -> None:
    fake_tool(tmp_path / "bin", "pulumi", script)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(CheckFailed, match=says):
        checks.pulumi_cli_available(context(tmp_path, env="dev"))


@pytest.mark.check_fails("validation.foundation:fmp_key_present")
@pytest.mark.parametrize("key,says", [(None, "FMP_API_KEY is not set"), ("   ", "FMP_API_KEY is not set"),
                                      ("short-key!", "does not look like an FMP key")])
def test_fmp_key_check_fails_without_a_usable_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_config: None,
                                                  key: str | None, says: str) -> None:
    if key is None:
        monkeypatch.delenv("FMP_API_KEY", raising=False)
    else:
        monkeypatch.setenv("FMP_API_KEY", key)
    with pytest.raises(CheckFailed, match=says):
        checks.fmp_key_present(context(tmp_path, env="dev"))


@pytest.mark.check_fails("validation.foundation:local_toolchain")
def test_toolchain_check_fails_without_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty-bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(CheckFailed, match="git not found") as failed:
        checks.local_toolchain(context(tmp_path))
    assert failed.value.evidence.figures["git"] == ""


@pytest.fixture
def foreign_port(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[int]:
    """Prefect's port held by a process that is not our stack's."""
    port = free_port()
    monkeypatch.setenv("FINKS_PREFECT_PORT", str(port))
    monkeypatch.setenv("FINKS_STATE_DIR", str(tmp_path / "state"))
    proc = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while not port_in_use(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(10)


@pytest.mark.check_fails("validation.foundation:local_ports_free_or_ours")
def test_port_check_fails_when_a_foreign_process_holds_the_prefect_port(tmp_path: Path, foreign_port: int) -> None:
    with pytest.raises(CheckFailed, match=f"port {foreign_port} \\(prefect\\) is held by"):
        checks.local_ports_free_or_ours(context(tmp_path))


# ---- S4: scaffolding ------------------------------------------------------------------
def _scaffold(tmp_path: Path) -> Path:
    root = repo_copy(tmp_path, *(a for a in checks.AREAS), "core")
    (root / "tests").mkdir()
    for test in ROOT.glob("tests/test_*.py"):
        shutil.copy2(test, root / "tests" / test.name)
    return root


@pytest.mark.check_fails("validation.foundation:area_packages_exist")
def test_scaffolding_check_fails_when_a_package_is_missing(tmp_path: Path) -> None:
    root = _scaffold(tmp_path)
    shutil.rmtree(root / "jobs")
    with pytest.raises(CheckFailed, match=r"^jobs: jobs/__init__.py missing$"):
        checks.area_packages_exist(context(tmp_path, root))


@pytest.mark.check_fails("validation.foundation:area_packages_exist")
def test_scaffolding_check_fails_when_a_package_has_only_tests_that_assert_nothing(tmp_path: Path) -> None:
    root = _scaffold(tmp_path)
    (root / "tests" / "test_flows.py").write_text("def test_flows_exist():\n    import flows\n")
    with pytest.raises(CheckFailed, match="flows: no tests matching tests/test_flows.py that assert anything"):
        checks.area_packages_exist(context(tmp_path, root))


@pytest.mark.check_fails("validation.foundation:area_packages_exist")
def test_scaffolding_check_fails_when_a_package_does_not_import(tmp_path: Path) -> None:
    root = _scaffold(tmp_path)
    (root / "api" / "__init__.py").write_text("import a_module_nobody_installed\n")
    with pytest.raises(CheckFailed, match="api: does not import"):
        checks.area_packages_exist(context(tmp_path, root))


# ---- S20 / S22: documentation -----------------------------------------------------
@pytest.mark.check_fails("validation.foundation:runbooks_exist")
def test_runbook_check_names_a_missing_runbook(tmp_path: Path) -> None:
    root = repo_copy(tmp_path, "docs")
    (root / "docs" / "runbooks" / "fmp-rate-limit.md").unlink()
    with pytest.raises(CheckFailed, match="missing docs/runbooks/fmp-rate-limit.md"):
        checks.runbooks_exist(context(tmp_path, root))


@pytest.mark.check_fails("validation.foundation:runbooks_exist")
def test_runbook_check_fails_on_a_runbook_without_resolution_or_with_a_made_up_command(tmp_path: Path) -> None:
    root = repo_copy(tmp_path, "docs")
    path = root / "docs" / "runbooks" / "pipeline-failure.md"
    text = path.read_text()
    path.write_text(text.replace("## Resolution", "## What next").replace("## resolution", "## what next")
                    + "\nRun `finks frobnicate` to fix everything.\n")
    with pytest.raises(CheckFailed) as failed:
        checks.runbooks_exist(context(tmp_path, root))
    assert "pipeline-failure.md lacks sections resolution" in str(failed.value)
    assert "'finks frobnicate'" in str(failed.value)


@pytest.mark.check_fails("validation.foundation:operational_docs")
def test_docs_check_fails_without_the_architecture_document(tmp_path: Path) -> None:
    root = repo_copy(tmp_path, "docs", "README.md")
    (root / "docs" / "architecture.md").unlink()
    with pytest.raises(CheckFailed, match="architecture: docs/architecture.md missing"):
        checks.operational_docs(context(tmp_path, root))


@pytest.mark.check_fails("validation.foundation:operational_docs")
def test_docs_check_fails_on_an_api_spec_without_paths_and_a_diagram_less_architecture(tmp_path: Path) -> None:
    root = repo_copy(tmp_path, "docs", "README.md")
    (root / "docs" / "api" / "openapi.json").write_text('{"openapi": "3.1.0", "paths": {}}')
    arch = root / "docs" / "architecture.md"
    arch.write_text(arch.read_text().replace("```mermaid", "```text"))
    with pytest.raises(CheckFailed) as failed:
        checks.operational_docs(context(tmp_path, root))
    assert "openapi.json documents no paths" in str(failed.value)
    assert "architecture.md has no mermaid diagram" in str(failed.value)


def test_docs_checks_cannot_judge_commands_when_finks_help_is_broken(tmp_path: Path) -> None:
    root = repo_copy(tmp_path, "docs", "README.md", "finks", "core")
    (root / "finks" / "cli.py").write_text("raise SystemExit('broken cli')\n")
    for check in (checks.runbooks_exist, checks.operational_docs):
        with pytest.raises(RuntimeError, match="`finks --help` exited 1"):
            check(context(tmp_path, root))
