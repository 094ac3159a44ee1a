"""Staleness: a session stays complete only while what it was judged on is unchanged, upstream included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.errors import PlanError
from finks.loader import load_plan
from tests.planbuilder import REPO, CliEnv, cli_env, session, write_plan


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliEnv:
    return cli_env(tmp_path, monkeypatch)


def _age(path: Path, seconds: float = 10) -> None:
    """Back-date a file: the hash cache and the status memo do not trust files younger than 2 s."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def _reason(env: CliEnv, sid: str) -> str:
    return next(s["reason"] for s in env.json("status")["sessions"] if s["id"] == sid)


CHECKS = "def ok(ctx):\n    return 'the thing holds'\n"


def test_editing_a_sessions_check_module_makes_it_and_its_dependents_stale(env: CliEnv) -> None:
    module = env.root / "mychecks.py"
    module.write_text(CHECKS)
    _age(module)
    write_plan(env.plan, [session("s1", checks=[{"id": "c", "python": "mychecks:ok"}]),
                          session("s2", deps=("s1",)), session("s3", deps=("s2",)), session("s4")])
    assert env.invoke("run", "--all").exit_code == 0
    assert set(env.status().values()) == {"complete"}
    module.write_text(CHECKS.replace("holds", "holds!"))  # same mtime tick or not: its content changed
    assert env.status() == {"s1": "stale", "s2": "stale", "s3": "stale", "s4": "complete"}
    assert _reason(env, "s1") == "check code changed: mychecks.py since it was validated"
    assert _reason(env, "s2") == _reason(env, "s3") == "upstream s1 changed"
    why = env.invoke("why", "s3").stdout.splitlines()
    assert why[0] == "s3: stale — upstream s1 changed" and why[1].strip().startswith("s1: stale — check code changed")
    # Re-validating s1 is not enough: s2 and s3 were judged against the s1 of before.
    env.invoke("run", "s1")
    assert env.status() == {"s1": "complete", "s2": "stale", "s3": "stale", "s4": "complete"}
    assert _reason(env, "s2") == "upstream s1 changed since it was validated"
    env.invoke("run", "s2+")
    assert set(env.status().values()) == {"complete"}


def test_editing_a_sessions_plan_entry_makes_it_stale(env: CliEnv) -> None:
    write_plan(env.plan, [session("s1")])
    env.invoke("run", "s1")
    write_plan(env.plan, [session("s1", pitfalls=["a new pitfall"])])
    assert env.status()["s1"] == "stale"
    assert _reason(env, "s1") == "its plan entry changed since it was validated"


def test_a_failed_session_makes_everything_downstream_stale(env: CliEnv, tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    flag.write_text("holds")
    write_plan(env.plan, [session("s1", checks=[{"id": "c", "shell": f"test -f {flag}"}]),
                          session("s2", deps=("s1",)), session("s3", deps=("s2",))])
    env.invoke("run", "--all")
    flag.unlink()
    env.invoke("run", "s1")
    assert env.status() == {"s1": "failed", "s2": "stale", "s3": "stale"}
    assert _reason(env, "s3") == "upstream s1 failed"
    assert "s2" not in {s["id"] for s in env.json("next")["sessions"]}  # it cannot run until s1 passes


def test_a_run_recorded_by_an_older_finks_is_stale_until_it_runs_again(env: CliEnv) -> None:
    write_plan(env.plan, [session("s1")])
    history = env.state / "state" / "local" / "history.jsonl"
    history.parent.mkdir(parents=True)
    events = [{"v": 1, "at": "2026-11-01T10:00:00Z", "type": "run_started", "run_id": "r1", "session": "s1", "pid": 1},
              {"v": 1, "at": "2026-11-01T10:00:01Z", "type": "check", "run_id": "r1", "session": "s1", "check": "ok",
               "outcome": "passed", "message": "command succeeded"},
              {"v": 1, "at": "2026-11-01T10:00:02Z", "type": "run_finished", "run_id": "r1", "session": "s1",
               "outcome": "passed", "deliverables_hash": "0" * 16}]
    history.write_text("".join(json.dumps(e) + "\n" for e in events))
    assert env.status()["s1"] == "stale"
    assert _reason(env, "s1") == "validated by an older finks (no fingerprint): run it again"
    env.invoke("run", "s1")
    assert env.status()["s1"] == "complete"


def test_a_missing_deliverable_is_a_load_error_naming_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "here.py").write_text("")
    write_plan(tmp_path / "plan", [session("s1", deliverables=("here.py", "gone/away.py"))])
    with pytest.raises(PlanError) as info:
        load_plan(tmp_path / "plan", root=tmp_path / "repo")
    message = str(info.value)
    assert "s1.yaml:18: s1 delivers 'gone/away.py', which does not exist" in message
    assert "here.py" not in message.replace("gone/away.py", "")


def test_file_hashes_are_cached_by_size_and_mtime(env: CliEnv) -> None:
    from finks.fingerprint import FileHashes

    thing = env.root / "thing.py"
    thing.write_text("x = 1\n")
    _age(thing)
    write_plan(env.plan, [session("s1", deliverables=("thing.py",))])
    env.invoke("run", "s1")
    cache = FileHashes.load(env.state / "cache" / "file-hashes.json")
    assert str(thing) in cache.entries
    thing.write_text("x = 2\n")  # same size; a new mtime
    assert env.status()["s1"] == "stale"


def _status_process(env: CliEnv) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "finks.cli", "status"], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)


def test_a_status_nothing_changed_since_is_answered_from_its_memo(env: CliEnv) -> None:
    write_plan(env.plan, [session("s1"), session("s2", deps=("s1",))])
    env.invoke("run", "s1")
    for path in [*env.plan.iterdir(), env.plan, *(env.state / "state" / "local").iterdir(),
                 env.state / "state" / "local"]:
        _age(path)
    first = _status_process(env)
    (memo,) = list((env.state / "cache").glob("status-*.json"))
    assert first.returncode == 0 and "s2   ready" in first.stdout
    assert _status_process(env).stdout == first.stdout
    data = json.loads(memo.read_text())
    memo.write_text(json.dumps({**data, "text": data["text"] + "\n(from the memo)"}))
    assert _status_process(env).stdout == first.stdout + "(from the memo)\n"
    env.invoke("reset", "s1", "--yes")  # the history changed: the memo no longer answers
    again = _status_process(env)
    assert "s1   ready" in again.stdout and "s2   blocked" in again.stdout
