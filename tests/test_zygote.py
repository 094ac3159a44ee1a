"""Check processes forked from a preloaded parent (finks.zygote) behave as fresh processes do."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from finks.checks import CheckContext, child_env, run_check
from finks.models import CheckSpec
from finks.outcomes import Outcome
from finks.zygote import Zygote
from tests.planbuilder import CliEnv, cli_env, session, write_plan

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def zygote(tmp_path: Path):  # type: ignore[no-untyped-def]
    ctx = CheckContext("local", ROOT, tmp_path / "state", tmp_path / "work")
    env = child_env(ctx)
    env.pop("FINKS_CHECK_CONTEXT")
    env["PREFECT_API_URL"] = "http://zygote.invalid/api"
    z = Zygote(ROOT, env)
    yield z
    z.close()


def _ctx(tmp_path: Path, check_id: str) -> CheckContext:
    return CheckContext("local", ROOT, tmp_path / "state", tmp_path / "work" / check_id, "s1", check_id)


def test_a_forked_check_has_the_libraries_preloaded_and_its_own_env_session_and_settings(
        zygote: Zygote, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://check.invalid/api")
    monkeypatch.setenv("FINKS_TEST_MARKER", "for-this-check")
    result = run_check(CheckSpec(id="facts", python="tests.check_targets:process_facts"), _ctx(tmp_path, "facts"), zygote)
    assert result.outcome is Outcome.passed, result.evidence
    facts = result.evidence.figures
    assert facts["prefect_preloaded"] is True
    assert facts["sid"] == facts["pid"], "the check must lead a session of its own (timeouts kill its group)"
    assert facts["api_url"] == facts["env_api_url"] == "http://check.invalid/api", "Prefect kept the zygote's settings"
    assert facts["marker"] == "for-this-check" and facts["context_check"] == "facts"
    assert facts["cwd"] == str(ROOT)


def test_without_a_zygote_nothing_is_preloaded(tmp_path: Path) -> None:
    result = run_check(CheckSpec(id="facts", python="tests.check_targets:process_facts"), _ctx(tmp_path, "plain"))
    assert result.outcome is Outcome.passed and result.evidence.figures["prefect_preloaded"] is False


def test_a_forked_check_that_dies_is_an_error_and_one_that_hangs_is_killed(zygote: Zygote, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    dead = run_check(CheckSpec(id="dies", python="tests.check_targets:exits_hard"), _ctx(tmp_path, "dies"), zygote)
    assert dead.outcome is Outcome.error and "exited with 3 without a result" in dead.evidence.message
    marker = tmp_path / "slow.pid"
    monkeypatch.setenv("FINKS_TEST_MARKER", str(marker))
    monkeypatch.setenv("FINKS_TEST_SLEEP", "60")
    started = time.monotonic()
    slow = run_check(CheckSpec(id="slow", python="tests.check_targets:slow", timeout=3), _ctx(tmp_path, "slow"), zygote)
    assert slow.outcome is Outcome.error and "timed out after 3s" in slow.evidence.message
    assert time.monotonic() - started < 20
    pid = int(marker.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_when_the_zygote_dies_checks_run_as_plain_processes(zygote: Zygote, tmp_path: Path) -> None:
    first = run_check(CheckSpec(id="a", python="tests.check_targets:passes"), _ctx(tmp_path, "a"), zygote)
    assert first.outcome is Outcome.passed
    assert zygote._proc is not None
    os.killpg(zygote._proc.pid, signal.SIGKILL)
    zygote._proc.wait()
    time.sleep(0.5)
    again = run_check(CheckSpec(id="b", python="tests.check_targets:process_facts"), _ctx(tmp_path, "b"), zygote)
    assert again.outcome is Outcome.passed and again.evidence.figures["prefect_preloaded"] is False


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliEnv:
    return cli_env(tmp_path, monkeypatch)


@pytest.mark.parametrize("preload", ["1", "0"])
def test_finks_run_forks_its_checks_from_a_preloaded_parent_unless_told_not_to(
        env: CliEnv, monkeypatch: pytest.MonkeyPatch, preload: str) -> None:
    monkeypatch.setenv("FINKS_CHECK_PRELOAD", preload)
    write_plan(env.plan, [session("s1", checks=[{"id": "facts", "python": "tests.check_targets:process_facts"},
                                                {"id": "ok", "python": "tests.check_targets:passes"}])])
    doc = env.json("run", "s1")
    assert doc["ok"] is True, json.dumps(doc)[:2000]
    check = next(e for e in env.history() if e["type"] == "check" and e["check"] == "facts")
    assert check["figures"]["prefect_preloaded"] is (preload == "1")
