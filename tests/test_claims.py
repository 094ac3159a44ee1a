"""Claims with leases: who is on which session, in status, next, runs, and the status memo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.planbuilder import CliEnv, cli_env, session, write_plan


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliEnv:
    e = cli_env(tmp_path, monkeypatch)
    monkeypatch.setenv("FINKS_OWNER", "alice")
    # s1 and s2 are ready at once; s3 waits for s1.
    write_plan(e.plan, [session("s1"), session("s2"), session("s3", deps=("s1",))])
    return e


def rows(e: CliEnv) -> dict[str, dict]:  # type: ignore[type-arg]
    return {s["id"]: s for s in e.json("status")["sessions"]}


def test_a_claimed_ready_session_is_in_progress_naming_its_owner_and_time_left(env: CliEnv) -> None:
    out = env.invoke("claim", "s1", "--lease", "4h")
    assert out.exit_code == 0 and out.stdout.startswith("s1 claimed by alice on local until ")
    s1 = rows(env)["s1"]
    assert s1["status"] == "in_progress" and s1["reason"] == "claimed by alice, 4 h left"
    assert s1["claim"]["owner"] == "alice" and 14300 < s1["claim"]["remaining_s"] <= 14400
    line = next(ln for ln in env.invoke("status").stdout.splitlines() if ln.strip().startswith("s1 "))
    assert "in progress" in line and "claimed by alice, 4 h left" in line


def test_a_claim_is_recorded_in_the_history_with_owner_expiry_pid_and_host(env: CliEnv) -> None:
    env.invoke("claim", "s2", "--owner", "bob", "--lease", "30m")
    event = [e for e in env.history() if e["type"] == "claim"][-1]
    assert event["session"] == "s2" and event["owner"] == "bob" and event["lease_s"] == 1800
    assert event["expires_at"].endswith("Z") and event["pid"] == os.getpid() and event["host"]


def test_a_blocked_session_stays_blocked_and_shows_its_claim(env: CliEnv) -> None:
    env.invoke("claim", "s3", "--owner", "bob", "--lease", "2h")
    s3 = rows(env)["s3"]
    assert s3["status"] == "blocked"
    assert s3["reason"] == "needs s1 (ready) · claimed by bob, 2 h left"


def test_next_offers_unclaimed_sessions_first_then_the_claimed_ones_labelled(env: CliEnv) -> None:
    before = [r["id"] for r in env.json("next")["sessions"]]
    assert before[:2] == ["s1", "s2"]
    env.invoke("claim", "s1", "--owner", "bob")
    doc = env.json("next")
    assert [r["id"] for r in doc["sessions"]] == ["s2", "s1"]
    claimed = doc["sessions"][1]
    assert claimed["claim"]["owner"] == "bob" and claimed["note"] == "claimed by bob, 4 h left"
    assert doc["sessions"][0]["claim"] is None and doc["sessions"][0]["note"] == ""
    text = env.invoke("next").stdout.splitlines()
    assert text[0].startswith("s2 ") and text[1].startswith("s1 ") and text[1].endswith("(claimed by bob, 4 h left)")


def test_another_owners_claim_on_a_live_claim_is_refused_naming_the_holder_and_expiry(env: CliEnv) -> None:
    first = env.json("claim", "s1", "--owner", "alice")
    out = env.invoke("claim", "s1", "--owner", "bob")
    assert out.exit_code == 1
    assert f"s1 is claimed by alice, 4 h left (until {first['claim']['expires_at']}" in out.stderr
    assert "--steal" in out.stderr and "Traceback" not in out.stderr
    assert rows(env)["s1"]["claim"]["owner"] == "alice"


def test_steal_takes_over_a_live_claim_and_the_owner_can_renew_it(env: CliEnv) -> None:
    env.invoke("claim", "s1", "--owner", "alice", "--lease", "1h")
    doc = env.json("claim", "s1", "--owner", "bob", "--steal")
    assert doc["schema"] == "finks.claim/v1" and doc["action"] == "claim"
    assert doc["owner"] == "bob" and doc["replaced"]["owner"] == "alice"
    assert rows(env)["s1"]["reason"] == "claimed by bob, 4 h left"
    renewed = env.invoke("claim", "s1", "--owner", "bob", "--lease", "2h")
    assert renewed.exit_code == 0 and "(renewed)" in renewed.stdout
    assert rows(env)["s1"]["reason"] == "claimed by bob, 2 h left"


def test_an_expired_lease_frees_the_session(env: CliEnv) -> None:
    env.invoke("claim", "s1", "--owner", "bob", "--lease", "1s")
    assert rows(env)["s1"]["status"] == "in_progress"
    time.sleep(1.2)
    s1 = rows(env)["s1"]
    assert s1["status"] == "ready" and s1["claim"] is None and s1["reason"] == ""
    taken = env.invoke("claim", "s1", "--owner", "carol")  # no --steal needed
    assert taken.exit_code == 0


def test_release_frees_the_session_and_only_its_owner_may_release_it(env: CliEnv) -> None:
    env.invoke("claim", "s1", "--owner", "bob")
    refused = env.invoke("release", "s1", "--owner", "carol")
    assert refused.exit_code == 1 and "s1 is claimed by bob" in refused.stderr
    doc = env.json("release", "s1", "--owner", "bob")
    assert doc["schema"] == "finks.claim/v1" and doc["action"] == "release" and doc["released"] is True
    assert doc["claim"]["owner"] == "bob"
    assert rows(env)["s1"]["status"] == "ready"
    again = env.invoke("release", "s1", "--owner", "bob")
    assert again.exit_code == 0 and "not claimed" in again.stdout
    assert [e["type"] for e in env.history()] == ["claim", "release"]


def test_release_without_owner_is_for_finks_owner(env: CliEnv) -> None:
    env.invoke("claim", "s2")  # FINKS_OWNER=alice
    assert rows(env)["s2"]["claim"]["owner"] == "alice"
    assert env.invoke("release", "s2").exit_code == 0
    assert rows(env)["s2"]["claim"] is None


def test_a_run_of_a_session_claimed_by_another_owner_warns_on_stderr(env: CliEnv) -> None:
    env.invoke("claim", "s1", "--owner", "bob", "--lease", "1h")
    out = env.invoke("run", "s1")  # as alice (FINKS_OWNER)
    assert out.exit_code == 0
    assert "warning: s1 is claimed by bob, 1 h left" in out.stderr and "running it as alice anyway" in out.stderr
    assert "warning" not in out.stdout
    own = env.invoke("run", "s1", "--owner", "bob")
    assert own.exit_code == 0 and "warning" not in own.stderr
    env.invoke("release", "s1", "--owner", "bob")
    assert "warning" not in env.invoke("run", "s1").stderr


def test_a_lease_that_is_no_duration_is_a_usage_error(env: CliEnv) -> None:
    for bad in ("soon", "4", "0s", "90d"):
        out = env.invoke("claim", "s1", "--lease", bad)
        assert out.exit_code == 2, bad
        assert f"lease {bad!r}" in out.stderr
    assert env.history() == []


def test_claiming_an_unknown_session_says_which_ones_exist(env: CliEnv) -> None:
    out = env.invoke("claim", "s9")
    assert out.exit_code == 2 and "unknown session 's9'" in out.stderr


def _age(paths: list[Path], seconds: float) -> None:
    """Make files and directories look older than the status memo's racy window."""
    past = time.time() - seconds
    for path in paths:
        os.utime(path, (past, past))


def _status_line(sid: str) -> str:
    """`finks status` in a fresh process (where its memo may answer), the line of one session."""
    proc = subprocess.run([sys.executable, "-m", "finks", "status"], capture_output=True, text=True,
                          timeout=60, env=os.environ)
    assert proc.returncode == 0, proc.stderr
    return next(ln for ln in proc.stdout.splitlines() if ln.strip().startswith(f"{sid} "))


def _memos(e: CliEnv) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in (e.state / "cache").glob("status-*.json")}


def test_the_status_memo_never_outlives_a_claims_time_left_or_its_lease(env: CliEnv) -> None:
    # s3 is blocked: a claim leaves its status as it is (no run, no in_progress); only its reason says so.
    env.invoke("claim", "s3", "--owner", "bob", "--lease", "4s")
    store = env.state / "state" / "local"
    _age([*env.plan.iterdir(), env.plan, store / "history.jsonl", store, store / "locks",
          *(store / "locks").iterdir()], 60)
    first = _status_line("s3")
    assert "blocked" in first and "claimed by bob" in first and " s left" in first
    memo = json.loads(next(iter(_memos(env))).read_text())
    assert memo["valid_until"] is not None and memo["valid_until"] <= time.time() + 4
    time.sleep(4.2)
    line = _status_line("s3")  # the lease has expired: no file changed, and the answer did
    assert "blocked" in line and "claimed" not in line
    remembered = _memos(env)
    assert json.loads(next(iter(remembered)).read_text())["valid_until"] is None
    assert _status_line("s3") == line and _memos(env) == remembered  # answered from the memo, not rewritten


def test_a_long_claim_is_answered_from_the_memo_until_its_time_left_reads_differently(env: CliEnv) -> None:
    env.invoke("claim", "s3", "--owner", "bob", "--lease", "3h")
    store = env.state / "state" / "local"
    _age([*env.plan.iterdir(), env.plan, store / "history.jsonl", store, store / "locks",
          *(store / "locks").iterdir()], 60)
    line = _status_line("s3")
    assert line.endswith("claimed by bob, 3 h left")
    remembered = _memos(env)
    valid_until = json.loads(next(iter(remembered)).read_text())["valid_until"]
    assert time.time() + 25 * 60 < valid_until < time.time() + 31 * 60  # "3 h" reads the same down to 2 h 30
    assert _status_line("s3") == line and _memos(env) == remembered
    doc = subprocess.run([sys.executable, "-m", "finks", "status", "--json"], capture_output=True, text=True,
                         timeout=60, env=os.environ, check=True).stdout
    assert json.loads(doc)["sessions"][2]["claim"]["owner"] == "bob"
    assert _memos(env) == remembered  # --json carries remaining_s, to the tenth of a second: never remembered


def test_mcp_claim_and_release_return_the_cli_documents(env: CliEnv) -> None:
    import anyio
    from mcp import Client

    from finks.mcp import build_server
    from finks.payloads import Workspace

    async def main() -> tuple[dict, dict, dict, dict]:  # type: ignore[type-arg]
        async with Client(build_server(Workspace())) as client:
            took = await client.call_tool("claim", {"session": "s1", "owner": "bob", "lease": "2h"})
            refused = await client.call_tool("claim", {"session": "s1", "owner": "carol"})
            nxt = await client.call_tool("next", {})
            gone = await client.call_tool("release", {"session": "s1", "owner": "bob"})
            return (took.structured_content, refused.structured_content, nxt.structured_content,
                    gone.structured_content)

    took, refused, nxt, gone = anyio.run(main)
    assert took["schema"] == "finks.claim/v1" and took["owner"] == "bob" and took["replaced"] is None
    assert refused["schema"] == "finks.error/v1" and refused["exit_code"] == 1 and "claimed by bob" in refused["error"]
    assert [r["id"] for r in nxt["sessions"]][-1] == "s1" and nxt["sessions"][-1]["note"].startswith("claimed by bob")
    assert gone["action"] == "release" and gone["released"] is True
    assert json.loads(json.dumps(gone)) == gone
