"""Running sessions: gating, outcomes, evidence, handoffs, concurrency and crashes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from finks.cli import app
from tests.planbuilder import session, write_plan

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Env:
    root: Path
    plan: Path
    state: Path
    handoffs: Path

    def invoke(self, *args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(app, list(args), catch_exceptions=False)

    def subprocess(self, *args: str, **kw):  # type: ignore[no-untyped-def]
        return subprocess.Popen([sys.executable, "-m", "finks.cli", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, **kw)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    e = Env(tmp_path / "repo", tmp_path / "plan", tmp_path / "state", tmp_path / "handoffs")
    e.root.mkdir()
    for key, value in {"FINKS_ROOT": e.root, "FINKS_SESSIONS": e.plan, "FINKS_STATE_DIR": e.state,
                       "FINKS_HANDOFFS": e.handoffs, "PYTHONPATH": REPO}.items():
        monkeypatch.setenv(key, str(value))
    monkeypatch.delenv("FINKS_ENV", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    return e


def status_of(env: Env, envname: str = "local") -> dict[str, str]:
    out = env.invoke("status", "--json", "--env", envname)
    data = json.loads(out.stdout)
    assert data["schema"] == "finks.status/v2"
    return {s["id"]: s["status"] for s in data["sessions"]}


def py(target: str, cid: str = "c", **kw) -> dict:  # type: ignore[type-arg]
    return {"id": cid, "python": f"tests.check_targets:{target}", **kw}


def test_blocked_session_is_refused_naming_the_blocker(env: Env) -> None:
    write_plan(env.plan, [session("s1"), session("s2", deps=("s1",))])
    result = env.invoke("run", "s2")
    assert result.exit_code == 1
    assert "s2 is blocked by s1 (ready)" in result.stderr
    assert status_of(env) == {"s1": "ready", "s2": "blocked"}


def test_run_records_evidence_and_derives_complete(env: Env) -> None:
    write_plan(env.plan, [session("s1", checks=[py("passes"), {"id": "sh", "shell": "echo hello"}])])
    result = env.invoke("run", "s1")
    assert result.exit_code == 0, result.stderr
    assert "1 passed, 0 failed" in result.stdout
    assert status_of(env)["s1"] == "complete"
    events = [json.loads(line) for line in (env.state / "state/local/history.jsonl").read_text().splitlines()]
    checks = [e for e in events if e["type"] == "check"]
    assert [c["outcome"] for c in checks] == ["passed", "passed"]
    assert checks[0]["figures"] == {"env": "local", "session": "s1"}
    assert "hello" in checks[1]["excerpt"]
    finished = [e for e in events if e["type"] == "run_finished"][0]
    assert finished["outcome"] == "passed" and finished["deliverables_hash"]
    started = [e for e in events if e["type"] == "run_started"][0]
    assert "commit" in started["git"] and "dirty" in started["git"]


@pytest.mark.parametrize(
    "target, outcome, message",
    [("fails", "failed", "the thing does not hold"), ("crashes", "error", "RuntimeError: boom"),
     ("returns_nothing", "error", "expected Evidence"), ("nope", "error", "not implemented")],
)
def test_failed_and_error_outcomes_are_distinct(env: Env, target: str, outcome: str, message: str) -> None:
    write_plan(env.plan, [session("s1", checks=[py(target)])])
    result = env.invoke("run", "s1", "--json")
    assert result.exit_code == 1
    event = [json.loads(x) for x in (env.state / "state/local/history.jsonl").read_text().splitlines()
             if '"type":"check"' in x][0]
    assert event["outcome"] == outcome and message in event["message"]
    assert status_of(env)["s1"] == "failed"


def test_missing_module_is_not_implemented_never_passed(env: Env) -> None:
    write_plan(env.plan, [session("s1", checks=[{"id": "c", "python": "validation.nothing_here:check"}])])
    assert env.invoke("run", "s1").exit_code == 1
    why = env.invoke("why", "s1").stdout
    assert "not implemented: module 'validation.nothing_here' does not exist" in why


def test_check_for_another_environment_is_skipped(env: Env) -> None:
    write_plan(env.plan, [session("s1", checks=[py("passes", "here", envs=["local"]),
                                                py("fails", "aws", envs=["prod"])])])
    assert env.invoke("run", "s1").exit_code == 0
    handoff = (env.handoffs / "local" / "s01-session-s1-title.md").read_text()
    assert "`aws` skipped: not for environment 'local'" in handoff
    # Progress per environment: prod has its own history.
    assert status_of(env, "prod")["s1"] == "ready"


def test_timeout_is_an_error(env: Env) -> None:
    write_plan(env.plan, [session("s1", checks=[{"id": "hang", "shell": "sleep 30", "timeout": 1}])])
    started = time.monotonic()
    assert env.invoke("run", "s1").exit_code == 1
    assert time.monotonic() - started < 15
    assert "timed out after 1s" in env.invoke("why", "s1").stdout


def test_failure_skips_dependents_and_summary_says_so(env: Env) -> None:
    write_plan(env.plan, [session("s1", checks=[py("fails")]), session("s2", deps=("s1",)),
                          session("s3", deps=("s2",)), session("s4")])
    result = env.invoke("run", "--all", "--json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["schema"] == "finks.run/v2"
    outcomes = {s["id"]: s["outcome"] for s in summary["sessions"]}
    assert outcomes == {"s1": "failed", "s2": "skipped_upstream", "s3": "skipped_upstream", "s4": "passed"}
    assert summary["counts"] == {"passed": 1, "failed": 1, "unverified": 0, "not_applicable": 0,
                                 "skipped_upstream": 2, "blocked": 0, "up_to_date": 0}
    assert summary["verdicts"] == {"verified": 1, "planned": 0, "unverified": 0, "failed": 1}


def test_retry_reruns_what_failed_or_was_skipped(env: Env, tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    write_plan(env.plan, [session("s1", checks=[{"id": "c", "shell": f"test -f {flag}"}]),
                          session("s2", deps=("s1",)), session("s3")])
    assert env.invoke("run", "--all").exit_code == 1
    flag.write_text("now it holds")
    result = env.invoke("retry", "--json")
    assert result.exit_code == 0
    assert {s["id"] for s in json.loads(result.stdout)["sessions"]} == {"s1", "s2"}
    assert set(status_of(env).values()) == {"complete"}


def test_changed_deliverable_makes_a_session_stale(env: Env) -> None:
    (env.root / "thing.py").write_text("x = 1\n")
    write_plan(env.plan, [session("s1", deliverables=("thing.py",)), session("s2", deps=("s1",))])
    env.invoke("run", "s1")
    assert status_of(env) == {"s1": "complete", "s2": "ready"}
    (env.root / "thing.py").write_text("x = 2\n")
    assert status_of(env) == {"s1": "stale", "s2": "blocked"}


def test_gate_blocks_next_week_until_it_passes(env: Env) -> None:
    write_plan(env.plan, [session("s1", week=1), session("s2", week=2)],
               gates={"strict": True, "gates": [{"id": "week1", "week": 1, "title": "Week one works",
                                                 "checks": [{"id": "g", "shell": "true"}]}]})
    assert status_of(env)["s2"] == "blocked"
    assert env.invoke("gate", "week1").exit_code == 1  # s1 not complete yet
    env.invoke("run", "s1")
    result = env.invoke("gate", "week1")
    assert result.exit_code == 0 and "passed" in result.stdout
    assert status_of(env)["s2"] == "ready"


def test_run_all_evaluates_gates_on_the_way(env: Env) -> None:
    write_plan(env.plan, [session("s1", week=1), session("s2", week=2, deps=("s1",))],
               gates={"gates": [{"id": "week1", "week": 1, "title": "w1", "checks": [{"id": "g", "shell": "true"}]}]})
    result = env.invoke("run", "--all", "--json")
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout)["gates"] == {"week1": "passed"}


def test_failing_gate_check_blocks_the_next_week(env: Env) -> None:
    write_plan(env.plan, [session("s1", week=1), session("s2", week=2)],
               gates={"gates": [{"id": "week1", "week": 1, "title": "w1", "checks": [{"id": "g", "shell": "false"}]}]})
    result = env.invoke("run", "--all", "--json")
    assert result.exit_code == 1
    outcomes = {s["id"]: (s["outcome"], s["reason"]) for s in json.loads(result.stdout)["sessions"]}
    assert outcomes["s2"][0] == "blocked" and "gate week1 failed" in outcomes["s2"][1]


def test_parallel_jobs_run_independent_sessions_together(env: Env) -> None:
    sleepy = [{"id": "c", "shell": "sleep 1.5"}]
    write_plan(env.plan, [session(f"s{i}", checks=sleepy) for i in range(1, 5)])
    started = time.monotonic()
    assert env.invoke("run", "--all", "--jobs", "4").exit_code == 0
    assert time.monotonic() - started < 5.5  # 4 × 1.5 s in sequence would be ≥ 6 s


def test_handoff_has_the_plans_format(env: Env) -> None:
    write_plan(env.plan, [session("s1", checks=[py("passes", "good"), py("fails", "bad")],
                                  known_issues=["cold starts take ~2 minutes"]),
                          session("s2", deps=("s1",))])
    env.invoke("run", "s1")
    text = (env.handoffs / "local" / "s01-session-s1-title.md").read_text()
    assert text.startswith("## Session 1 Handoff — Session s1 title")
    assert "- ❌ s1 works" in text
    assert "`good` passed: verified the thing" in text and "`bad` failed: the thing does not hold" in text
    assert "### ⚠️ Known issues\n- cold starts take ~2 minutes" in text
    assert "### Blocking issues\n- `bad` failed: the thing does not hold" in text
    assert "🔗 Next" in text


def test_handoff_lists_unlocked_sessions(env: Env) -> None:
    write_plan(env.plan, [session("s1"), session("s2", deps=("s1",))])
    env.invoke("run", "s1")
    text = (env.handoffs / "local" / "s01-session-s1-title.md").read_text()
    assert "- s2: Session s2 title — `finks run s2 --env local`" in text


def test_prime_includes_predecessor_handoffs_and_validation_commands(env: Env) -> None:
    write_plan(env.plan, [session("s1"), session("s2", deps=("s1",), context_prime="Build the second thing.",
                                                 pitfalls=["Ports collide"])])
    env.invoke("run", "s1")
    out = env.invoke("prime", "s2").stdout
    assert "Build the second thing." in out and "Ports collide" in out
    assert "## Session 1 Handoff" in out
    assert "`finks run s2 --env local`" in out


def test_corrupt_state_is_reported_with_path_and_never_overwritten(env: Env) -> None:
    write_plan(env.plan, [session("s1")])
    env.invoke("run", "s1")
    history = env.state / "state/local/history.jsonl"
    history.write_text(history.read_text() + "{not json\n")
    before = history.read_bytes()
    proc = env.subprocess("status")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3
    assert f"corrupt state file {history}:" in err and "Traceback" not in err
    proc = env.subprocess("run", "s1")
    proc.communicate(timeout=60)
    assert proc.returncode == 3
    assert history.read_bytes() == before


def test_a_locked_session_refuses_no_wait_while_an_independent_one_runs(env: Env, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    write_plan(env.plan, [session("s1", checks=[py("slow", timeout=60)]), session("s2")])
    first = env.subprocess("run", "s1", env={**os.environ, "FINKS_TEST_MARKER": str(marker), "FINKS_TEST_SLEEP": "4"})
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists(), first.stderr.read() if first.poll() is not None else "check never started"
    assert status_of(env)["s1"] == "in_progress"
    same = env.subprocess("run", "s1", "--no-wait")
    _, err = same.communicate(timeout=60)
    assert same.returncode == 3
    assert "session s1 is locked" in err and "pid" in err
    other = env.subprocess("run", "s2")
    other.communicate(timeout=60)
    assert other.returncode == 0  # s2 does not wait for s1's run
    first.communicate(timeout=60)
    assert first.returncode == 0
    assert status_of(env) == {"s1": "complete", "s2": "complete"}


def test_sigkill_during_a_check_leaves_interrupted_and_the_next_run_works(env: Env, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    write_plan(env.plan, [session("s1", checks=[py("slow", timeout=60)])])
    proc = env.subprocess("run", "s1", env={**os.environ, "FINKS_TEST_MARKER": str(marker), "FINKS_TEST_SLEEP": "2"},
                          start_new_session=True)
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert status_of(env)["s1"] == "interrupted"
    assert "never finished" in env.invoke("why", "s1").stdout
    os.environ["FINKS_TEST_MARKER"], os.environ["FINKS_TEST_SLEEP"] = str(marker), "0"
    try:
        result = env.invoke("run", "s1")
    finally:
        del os.environ["FINKS_TEST_MARKER"], os.environ["FINKS_TEST_SLEEP"]
    assert result.exit_code == 0
    assert status_of(env)["s1"] == "complete"


def test_reset_forgets_runs_but_keeps_history(env: Env) -> None:
    write_plan(env.plan, [session("s1")])
    env.invoke("run", "s1")
    result = env.invoke("reset", "s1", "--yes")
    assert result.exit_code == 0 and "now ready" in result.stdout
    lines = (env.state / "state/local/history.jsonl").read_text().splitlines()
    assert any('"type":"run_finished"' in ln for ln in lines) and '"type":"reset"' in lines[-1]


def test_dry_run_changes_nothing(env: Env) -> None:
    write_plan(env.plan, [session("s1"), session("s2", deps=("s1",))])
    result = env.invoke("run", "--all", "--dry-run")
    assert result.exit_code == 0 and "would_run" in result.stdout
    assert not (env.state / "state/local/history.jsonl").exists()


def test_pytest_selection_check_passes_and_fails_by_the_tests(env: Env) -> None:
    (env.root / "test_sample.py").write_text("def test_ok():\n    assert 1 + 1 == 2\n\ndef test_bad():\n    assert 1 == 2\n")
    write_plan(env.plan, [session("s1", checks=[{"id": "good", "pytest": "test_sample.py::test_ok"}]),
                          session("s2", checks=[{"id": "bad", "pytest": "test_sample.py::test_bad"}]),
                          session("s3", checks=[{"id": "none", "pytest": "test_sample.py -k nothing_matches"}])])
    env.invoke("run", "--all")
    assert status_of(env) == {"s1": "complete", "s2": "failed", "s3": "failed"}
    history = (env.state / "state/local/history.jsonl").read_text()
    assert "pytest collected no tests: not implemented" in history
    assert "1 passed" in history and "1 failed" in history


def test_each_check_run_gets_a_fresh_work_dir(env: Env) -> None:
    # The check fails if its scratch directory holds anything from an earlier run.
    check = {"id": "c", "shell": 'test -z "$(ls -A "$FINKS_WORK" 2>/dev/null)" && touch "$FINKS_WORK/left-over"'}
    work = env.state / "work" / "local" / "s1" / "c"
    write_plan(env.plan, [session("s1", checks=[dict(check, shell=check["shell"].replace("$FINKS_WORK", str(work)))])])
    assert env.invoke("run", "s1").exit_code == 0
    assert (work / "left-over").exists()
    assert env.invoke("run", "s1").exit_code == 0


def test_on_a_terminal_a_run_draws_its_checks_done_of_total(env: Env, tmp_path: Path) -> None:
    """The console reporter's live bar (rich) on a pseudo-terminal; the lines stay plain off one."""
    import pty
    import select

    checks = [{"id": "one", "shell": "sleep 0.5"}, {"id": "two", "shell": "sleep 0.5"}]
    write_plan(env.plan, [session("s1", checks=checks)])
    pid, fd = pty.fork()
    if pid == 0:  # the child: finks on the terminal's side (the env fixture's variables are inherited)
        os.environ.update(COLUMNS="100", TERM="xterm")
        os.execv(sys.executable, [sys.executable, "-m", "finks", "run", "s1"])
    out = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    _, status = os.waitpid(pid, 0)
    text = out.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert "checks" in text and ("1/2" in text or "2/2" in text), text
    assert "■ s1 passed" in text
