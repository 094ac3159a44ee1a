"""`finks verify`: checks only — no task action runs — with verdicts recorded as a run records them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.planbuilder import CliEnv, cli_env, criterion, session, write_plan


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliEnv:
    return cli_env(tmp_path, monkeypatch)


def _marker_action(path: Path, envs: list[str] | None = None) -> dict[str, object]:
    """An action that leaves a file behind: the proof that it ran."""
    return {"shell": f"touch {path}", **({"envs": envs} if envs else {})}


def test_verify_runs_checks_but_no_action_and_records_verdicts(env: CliEnv, tmp_path: Path) -> None:
    marker = tmp_path / "action-ran"
    write_plan(env.plan, [session("s1", actions=[_marker_action(marker)],
                                  checks=[{"id": "ok", "shell": "echo checked"}])])
    result = env.invoke("verify", "s1")
    assert result.exit_code == 0, result.stderr
    assert not marker.exists(), "verify ran a task action"
    assert env.status()["s1"] == "complete"
    events = env.history()
    assert not [e for e in events if e["type"] == "action"]
    checks = [e for e in events if e["type"] == "check"]
    assert [(c["check"], c["outcome"]) for c in checks] == [("ok", "passed")]
    started = next(e for e in events if e["type"] == "run_started")
    finished = next(e for e in events if e["type"] == "run_finished")
    batch = next(e for e in events if e["type"] == "batch")
    assert started["mode"] == finished["mode"] == batch["mode"] == "verify"
    assert finished["outcome"] == "passed" and finished["verdicts"]["verified"] == 1


def test_run_does_run_the_action_verify_skips(env: CliEnv, tmp_path: Path) -> None:
    """The same plan under `run`: the action runs, and the records carry no verify mode."""
    marker = tmp_path / "action-ran"
    write_plan(env.plan, [session("s1", actions=[_marker_action(marker)])])
    assert env.invoke("run", "s1").exit_code == 0
    assert marker.exists()
    assert all("mode" not in e for e in env.history())


def test_verify_exits_1_and_records_a_failed_criterion(env: CliEnv) -> None:
    write_plan(env.plan, [session("s1", checks=[{"id": "drifted", "shell": "echo bucket not versioned; exit 1"}])])
    result = env.invoke("verify", "s1")
    assert result.exit_code == 1
    assert "1 failed" in result.stdout
    assert env.status()["s1"] == "failed"
    check = next(e for e in env.history() if e["type"] == "check")
    assert check["outcome"] == "failed" and "bucket not versioned" in check["excerpt"]


def test_verify_exits_1_when_a_criterion_is_only_planned_on_an_aws_environment(env: CliEnv) -> None:
    """dev does not accept planned evidence: a criterion with only a planned pass is unverified."""
    write_plan(env.plan, [session("s1", checks=[{"id": "mocked", "shell": "true", "grade": "planned"}])],
               gates={"environments": {"dev": {"accept_planned": False}}, "gates": []})
    doc = env.json("verify", "s1", "--env", "dev")
    assert doc["schema"].startswith("finks.verify/")
    assert doc["ok"] is False and doc["counts"]["unverified"] == 1
    assert env.status("dev")["s1"] == "unverified"
    assert env.invoke("verify", "s1", "--env", "dev").exit_code == 1


def test_verify_checks_complete_sessions_again(env: CliEnv, tmp_path: Path) -> None:
    """Drift: `run --all` leaves a complete session alone; `verify --all` checks it again."""
    flag = tmp_path / "healthy"
    flag.touch()
    write_plan(env.plan, [session("s1", checks=[{"id": "still-there", "shell": f"test -e {flag}"}])])
    assert env.invoke("run", "s1").exit_code == 0
    flag.unlink()
    assert "1 already complete" in env.invoke("run", "--all").stdout
    assert env.status()["s1"] == "complete"
    assert env.invoke("verify", "--all").exit_code == 1
    assert env.status()["s1"] == "failed"


def test_verify_checks_a_blocked_session_and_does_not_skip_downstream_of_a_failure(env: CliEnv) -> None:
    write_plan(env.plan, [
        session("s1", checks=[{"id": "broken", "shell": "exit 1"}]),
        session("s2", deps=("s1",), criteria=[criterion("s2 holds", {"id": "ok", "shell": "true"})]),
    ])
    assert env.status()["s2"] == "blocked"
    doc = env.json("verify", "s2")  # s1 is not complete: `run s2` would refuse
    assert [s["id"] for s in doc["sessions"]] == ["s2"] and doc["sessions"][0]["outcome"] == "passed"
    doc = env.json("verify", "s1,s2")
    assert {s["id"]: s["outcome"] for s in doc["sessions"]} == {"s1": "failed", "s2": "passed"}


def test_verify_needs_a_selector_or_all(env: CliEnv) -> None:
    write_plan(env.plan, [session("s1")])
    result = env.invoke("verify")
    assert result.exit_code == 2 and "give a selector or --all" in result.stderr


def test_verify_help_says_no_actions_run(env: CliEnv) -> None:
    result = env.invoke("verify", "--help")
    assert result.exit_code == 0 and "no task actions" in result.stdout
