"""The gate policy in force: in the plan's waves and critical path, in selectors, in dry runs and runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from finks.graph import select, topo_order
from finks.loader import load_plan
from tests.planbuilder import REPO, CliEnv, cli_env, session, write_plan

REAL_PLAN = REPO / "sessions"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliEnv:
    return cli_env(tmp_path, monkeypatch)


@pytest.fixture
def real_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliEnv:
    """The real plan and repository, a fresh state."""
    e = cli_env(tmp_path, monkeypatch)
    monkeypatch.setenv("FINKS_ROOT", str(REPO))
    monkeypatch.setenv("FINKS_SESSIONS", str(REAL_PLAN))
    return e


def _weeks(plan_dir: Path) -> dict[str, int]:
    return {sid: s.week for sid, s in load_plan(plan_dir).sessions.items()}


def test_plan_json_has_no_next_week_session_in_a_wave_at_or_before_this_weeks_under_strict_gates(
        real_env: CliEnv) -> None:
    doc = real_env.json("plan")
    assert doc["schema"] == "finks.plan/v2" and doc["gates"] == "strict"
    week = _weeks(REAL_PLAN)
    position = {node: i for i, wave in enumerate(doc["waves"]) for node in wave}
    for a, wa in week.items():
        for b, wb in week.items():
            if wb > wa:
                assert position[b] > position[a], f"{b} (week {wb}) runs no later than {a} (week {wa})"
    for gid in ("week1", "week2", "week3", "week4", "week5"):
        n = int(gid[4:])
        assert all(position[s] < position[gid] for s, w in week.items() if w == n)
        assert all(position[s] > position[gid] for s, w in week.items() if w == n + 1)


def test_plan_json_shows_the_enforced_and_the_diagrams_totals(real_env: CliEnv) -> None:
    doc = real_env.json("plan")
    assert doc["diagram"]["total_hours"] == {"low": 42, "high": 53}
    assert doc["total_hours"]["high"] > doc["diagram"]["total_hours"]["high"]
    assert "week3" in doc["critical_path"]["high"] and "week3" not in doc["diagram"]["critical_path"]["high"]
    assert {"s0", "s15"} == set(doc["diagram"]["waves"][0])  # the diagram: s15 needs nothing


def test_advisory_gates_leave_the_schedule_to_the_dependencies(tmp_path: Path) -> None:
    write_plan(tmp_path, [session("s1", week=1), session("s2", week=2)],
               gates={"strict": False, "gates": [{"id": "week1", "week": 1, "title": "w1"}]})
    plan = load_plan(tmp_path)
    assert select(plan, "+s2") == ["s2"]
    from finks.graph import plan_data

    doc = plan_data(plan)
    assert doc["waves"] == doc["diagram"]["waves"] == [["s1", "s2"]]


def test_run_plus_s19_dry_run_on_a_fresh_state_lists_everything_s19_needs_gates_included(real_env: CliEnv) -> None:
    result = real_env.invoke("run", "+s19", "--dry-run")
    assert result.exit_code == 0, result.stderr
    steps = [line.split()[0] for line in result.stdout.splitlines()]
    needed = [f"s{i}" for i in range(20)]
    assert [s for s in steps if s.startswith("s")] == topo_order(load_plan(REAL_PLAN), set(needed), gates=True)
    assert set(needed) <= set(steps)  # s1, s4, s7, s11 for gates week1-3; s17, s18 for gate week5
    assert [s for s in steps if s.startswith("week")] == ["week1", "week2", "week3", "week4", "week5"]
    position = {s: i for i, s in enumerate(steps)}
    assert position["s4"] < position["week1"] < position["s5"]
    assert position["s18"] < position["week5"] < position["s19"]
    assert "week1  would_evaluate" in result.stdout and "s19    would_run" in result.stdout
    doc = real_env.json("run", "+s19", "--dry-run")
    assert doc["gates"] == {f"week{i}": "would_evaluate" for i in range(1, 6)}
    assert not (real_env.state / "state" / "local" / "history.jsonl").exists()


def test_plus_selector_brings_the_sessions_the_gate_before_it_waits_for(env: CliEnv) -> None:
    write_plan(env.plan, [session("s1", week=1), session("s2", week=1), session("s3", week=2, deps=("s2",))],
               gates={"gates": [{"id": "week1", "week": 1, "title": "w1", "checks": [{"id": "g", "shell": "true"}]}]})
    dry = env.json("run", "+s3", "--dry-run")
    assert dry["steps"] == ["s1", "s2", "week1", "s3"]
    result = env.json("run", "+s3")
    assert result["steps"] == ["s1", "s2", "week1", "s3"] and result["gates"] == {"week1": "passed"}
    assert env.status() == {"s1": "complete", "s2": "complete", "s3": "complete"}


def test_a_gate_member_that_fails_in_the_batch_skips_the_next_week(env: CliEnv) -> None:
    write_plan(env.plan, [session("s1", week=1, checks=[{"id": "no", "shell": "false"}]), session("s2", week=2)],
               gates={"gates": [{"id": "week1", "week": 1, "title": "w1"}]})
    doc = env.json("run", "--all")
    outcomes = {s["id"]: (s["outcome"], s["reason"]) for s in doc["sessions"]}
    assert outcomes["s2"] == ("skipped_upstream", "upstream did not pass: s1 (failed) for gate week1")


def test_a_gate_whose_checks_all_skip_is_not_passed(env: CliEnv) -> None:
    write_plan(env.plan, [session("s1", week=1), session("s2", week=2)],
               gates={"gates": [{"id": "week1", "week": 1, "title": "w1",
                                 "checks": [{"id": "aws-only", "shell": "true", "envs": ["prod"]}]}]})
    env.invoke("run", "s1")
    result = env.invoke("gate", "week1")
    assert result.exit_code == 1
    gates = {g["id"]: g for g in env.json("status")["gates"]}
    assert gates["week1"]["status"] == "unverified"
    assert "no check applies on local" in gates["week1"]["reason"]
    assert env.status()["s2"] == "blocked"
    doc = env.json("gate", "week1")
    assert doc["schema"] == "finks.gate/v2" and doc["status"] == "unverified" and doc["passed"] is False


def test_a_gate_with_no_checks_passes_when_its_sessions_are_complete(env: CliEnv) -> None:
    write_plan(env.plan, [session("s1", week=1), session("s2", week=2)],
               gates={"gates": [{"id": "week1", "week": 1, "title": "w1"}]})
    env.invoke("run", "s1")
    gates = {g["id"]: g["status"] for g in env.json("status")["gates"]}
    assert gates == {"week1": "passed"} and env.status()["s2"] == "ready"


def test_run_all_evaluates_the_last_gate_too(env: CliEnv) -> None:
    write_plan(env.plan, [session("s1", week=1), session("s2", week=2, deps=("s1",))],
               gates={"gates": [{"id": "week1", "week": 1, "title": "w1", "checks": [{"id": "g", "shell": "true"}]},
                                {"id": "week2", "week": 2, "title": "w2", "checks": [{"id": "g", "shell": "true"}]}]})
    dry = env.invoke("run", "--all", "--dry-run").stdout.splitlines()
    assert [line.split()[:2] for line in dry] == [["s1", "would_run"], ["week1", "would_evaluate"],
                                                  ["s2", "would_run"], ["week2", "would_evaluate"]]
    result = env.invoke("run", "--all")
    assert result.exit_code == 0
    assert "gates: week1 passed, week2 passed" in result.stdout
    assert {g["id"]: g["status"] for g in env.json("status")["gates"]} == {"week1": "passed", "week2": "passed"}


def test_a_gate_blocked_from_outside_the_batch_is_refused_naming_what_it_waits_for(env: CliEnv) -> None:
    write_plan(env.plan, [session("s1", week=1), session("s2", week=1), session("s3", week=2)],
               gates={"gates": [{"id": "week1", "week": 1, "title": "w1"}]})
    result = env.invoke("run", "s3")
    assert result.exit_code == 1
    assert "s3 is blocked by gate week1, which waits for s1 (ready), s2 (ready)" in result.stderr


def test_a_gate_listing_a_later_weeks_session_is_a_cycle_under_strict_gates(tmp_path: Path) -> None:
    from core.errors import PlanError

    write_plan(tmp_path, [session("s1", week=1), session("s2", week=2)],
               gates={"gates": [{"id": "week1", "week": 1, "title": "w1", "sessions": ["s1", "s2"]}]})
    with pytest.raises(PlanError, match="cycle through a gate: .*week1.*s2"):
        load_plan(tmp_path)
