"""`resources:` in a session's YAML: sessions naming the same resource never run at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.planbuilder import CliEnv, cli_env, session, write_plan


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliEnv:
    return cli_env(tmp_path, monkeypatch)


def _timed(log: Path, sid: str) -> dict[str, str]:
    """A check that records when it starts and ends, holding on for a second in between."""
    return {"id": "timed", "shell": f"echo {sid} start $(date +%s.%N) >> {log}; sleep 1.5; "
                                   f"echo {sid} end $(date +%s.%N) >> {log}"}


def _spans(log: Path) -> dict[str, tuple[float, float]]:
    marks: dict[str, dict[str, float]] = {}
    for line in log.read_text().splitlines():
        sid, what, at = line.split()
        marks.setdefault(sid, {})[what] = float(at)
    return {sid: (m["start"], m["end"]) for sid, m in marks.items()}


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


@pytest.mark.parametrize("shared", [True, False])
def test_sessions_sharing_a_resource_do_not_overlap_under_jobs(env: CliEnv, tmp_path: Path, shared: bool) -> None:
    log = tmp_path / "spans.log"
    extra = {"resources": ["local-stack"]} if shared else {}
    write_plan(env.plan, [session("s1", checks=[_timed(log, "s1")], **extra),
                          session("s2", checks=[_timed(log, "s2")], **extra)])
    result = env.invoke("run", "--all", "--jobs", "2")
    assert result.exit_code == 0, result.stderr
    spans = _spans(log)
    assert _overlap(spans["s1"], spans["s2"]) is (not shared)
    assert "waiting for" not in result.stderr  # the scheduler starts something else instead of waiting


def test_a_resource_name_must_be_a_slug(env: CliEnv) -> None:
    write_plan(env.plan, [session("s1", resources=["Local Stack"])])
    result = env.invoke("status")
    assert result.exit_code == 2
    assert "resource 'Local Stack' must be a lowercase slug" in result.stderr


def _timed_check(log: Path, cid: str, *, isolated: bool, fail: bool = False) -> dict[str, object]:
    spec = _timed(log, cid) | {"id": cid, "isolated": isolated}
    if fail:
        spec["shell"] = str(spec["shell"]) + "; exit 1"
    return spec


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_isolated_checks_run_beside_their_sessions_other_checks_only_under_jobs(env: CliEnv, tmp_path: Path,
                                                                               jobs: str) -> None:
    log = tmp_path / "spans.log"
    checks = [_timed_check(log, "seq-a", isolated=False), _timed_check(log, "iso-b", isolated=True),
              _timed_check(log, "seq-c", isolated=False), _timed_check(log, "iso-d", isolated=True)]
    write_plan(env.plan, [session("s1", checks=checks)])
    result = env.invoke("run", "s1", "--jobs", jobs)
    assert result.exit_code == 0, result.stderr
    spans = _spans(log)
    assert not _overlap(spans["seq-a"], spans["seq-c"]), "checks not marked isolated ran at once"
    assert spans["seq-a"][1] <= spans["seq-c"][0], "the others keep their plan order"
    parallel = jobs != "1"
    assert _overlap(spans["iso-b"], spans["seq-a"]) is parallel
    assert _overlap(spans["iso-b"], spans["iso-d"]) is parallel
    recorded = [e["check"] for e in env.history() if e["type"] == "check"]
    assert sorted(recorded) == ["iso-b", "iso-d", "seq-a", "seq-c"]


def test_a_failing_isolated_check_fails_its_session(env: CliEnv, tmp_path: Path) -> None:
    log = tmp_path / "spans.log"
    write_plan(env.plan, [session("s1", checks=[_timed_check(log, "seq-a", isolated=False),
                                                _timed_check(log, "iso-b", isolated=True, fail=True)])])
    result = env.invoke("run", "s1", "--jobs", "2")
    assert result.exit_code == 1, result.stderr
    assert env.status()["s1"] == "failed"
    failed = [e["check"] for e in env.history() if e["type"] == "check" and e["outcome"] != "passed"]
    assert failed == ["iso-b"]


def test_the_longest_isolated_checks_start_first(env: CliEnv, tmp_path: Path) -> None:
    """The largest last recorded duration starts first, else the largest timeout (the plan's bound
    on a check): the short ones then fill in beside the long one instead of holding its slot."""
    log = tmp_path / "spans.log"

    def check(cid: str, seconds: float, timeout: int) -> dict[str, object]:
        return {"id": cid, "isolated": True, "timeout": timeout,
                "shell": f"echo {cid} start $(date +%s.%N) >> {log}; sleep {seconds}; "
                         f"echo {cid} end $(date +%s.%N) >> {log}"}

    # No history yet: "slow" has the smallest timeout, so the other two start first.
    write_plan(env.plan, [session("s1", checks=[check("brief", 0.5, 300), check("slow", 3, 60),
                                                check("quick", 0.5, 900)])])
    assert env.invoke("run", "s1", "--jobs", "2").exit_code == 0
    spans = _spans(log)
    assert spans["slow"][0] >= min(spans["quick"][1], spans["brief"][1]), spans
    # Now the history says "slow" is the long one: it starts in the first pair.
    log.unlink()
    assert env.invoke("run", "s1", "--jobs", "2", "--force").exit_code == 0
    spans = _spans(log)
    assert spans["slow"][0] < max(spans["brief"][0], spans["quick"][0]), spans
