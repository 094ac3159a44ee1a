"""Concurrent `finks run` processes: per-session locks, waiting, --no-wait, crashes, the append-only history."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from finks.state import StateStore, session_lock
from tests.planbuilder import session, write_plan

REPO = Path(__file__).resolve().parent.parent


class Scratch:
    """A tiny plan, a scratch state and handoffs; `finks` runs as separate processes."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.plan, self.state = tmp, tmp / "plan", tmp / "state"
        (tmp / "repo").mkdir()
        self.env = {**os.environ, "FINKS_ROOT": str(tmp / "repo"), "FINKS_SESSIONS": str(self.plan),
                    "FINKS_STATE_DIR": str(self.state), "FINKS_HANDOFFS": str(tmp / "handoffs"),
                    "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
        self.env.pop("FINKS_ENV", None)

    def start(self, *args: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "finks", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env={**self.env, **env}, cwd=REPO,
                                start_new_session=True)

    def finks(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "finks", *args], capture_output=True, text=True,
                              env=self.env, cwd=REPO, timeout=120)

    def status(self) -> dict[str, str]:
        data = json.loads(self.finks("status", "--json").stdout)
        return {s["id"]: s["status"] for s in data["sessions"]}

    def stamps(self, name: str) -> list[tuple[str, float]]:
        """The (start|end, time) lines a timed check wrote to tmp/<name>.log."""
        path = self.tmp / f"{name}.log"
        if not path.exists():
            return []
        return [(word, float(t)) for word, t in (ln.split() for ln in path.read_text().splitlines())]

    def timed(self, name: str, seconds: float) -> dict[str, str]:
        """A shell check that logs its start and end around a sleep."""
        log = self.tmp / f"{name}.log"
        return {"id": "timed", "shell": f"echo start $(date +%s.%N) >> {log}; sleep {seconds}; "
                                        f"echo end $(date +%s.%N) >> {log}", "timeout": 60}

    def wait_for(self, name: str, count: int = 1, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while sum(w == "start" for w, _ in self.stamps(name)) < count:
            assert time.monotonic() < deadline, f"{name} never started"
            time.sleep(0.05)


@pytest.fixture
def scratch(tmp_path: Path) -> Scratch:
    return Scratch(tmp_path)


def _done(proc: subprocess.Popen[str], timeout: float = 90) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def test_independent_sessions_run_together_in_two_processes(scratch: Scratch) -> None:
    write_plan(scratch.plan, [session("s1", checks=[scratch.timed("s1", 2)]),
                              session("s2", checks=[scratch.timed("s2", 2)])])
    first, second = scratch.start("run", "s1"), scratch.start("run", "s2")
    (rc1, _, err1), (rc2, _, err2) = _done(first), _done(second)
    assert (rc1, rc2) == (0, 0), err1 + err2
    (_, start1), (_, end1) = scratch.stamps("s1")
    (_, start2), (_, end2) = scratch.stamps("s2")
    assert start1 < end2 and start2 < end1, "the two checks did not overlap in time"
    assert "waiting" not in err1 + err2
    assert scratch.status() == {"s1": "complete", "s2": "complete"}


def test_two_runs_of_one_session_serialize_and_the_later_one_waits(scratch: Scratch) -> None:
    write_plan(scratch.plan, [session("s1", checks=[scratch.timed("s1", 2)])])
    first = scratch.start("run", "s1")
    scratch.wait_for("s1")
    named = scratch.start("run", "s1")  # names s1: runs it again once the first is done
    whole = scratch.start("run", "--all", "--json")  # names nothing: finds s1 complete after waiting
    results = [_done(p) for p in (first, named, whole)]
    assert [rc for rc, _, _ in results] == [0, 0, 0], [err for _, _, err in results]
    for _, _, err in results[1:]:
        assert "s1: waiting for the session s1 lock on env 'local', held by another finks run (pid " in err
    assert [w for w, _ in scratch.stamps("s1")] == ["start", "end", "start", "end"]  # never overlapping
    assert {s["id"]: s["outcome"] for s in json.loads(results[2][1])["sessions"]} == {"s1": "up_to_date"}
    assert scratch.status() == {"s1": "complete"}


def test_no_wait_exits_3_naming_the_holder_and_leaves_other_sessions_free(scratch: Scratch) -> None:
    # s1's check outlasts the four finks processes started while it runs.
    write_plan(scratch.plan, [session("s1", checks=[scratch.timed("s1", 10)]), session("s2")])
    first = scratch.start("run", "s1")
    scratch.wait_for("s1")
    history = scratch.state / "state/local/history.jsonl"
    before = history.read_bytes()
    refused = scratch.finks("run", "s1", "--no-wait")
    assert refused.returncode == 3
    assert f"session s1 is locked on env 'local' by another finks run (pid {first.pid} since" in refused.stderr
    assert "Traceback" not in refused.stderr
    reset = scratch.finks("reset", "s1", "--yes")  # forgetting a run under way would orphan its evidence
    assert reset.returncode == 3 and f"(pid {first.pid} since" in reset.stderr
    assert history.read_bytes() == before
    assert scratch.finks("run", "s2", "--no-wait").returncode == 0  # s2 is not s1's business
    assert scratch.status() == {"s1": "in_progress", "s2": "complete"}
    assert _done(first)[0] == 0
    assert scratch.status() == {"s1": "complete", "s2": "complete"}


def test_sigkill_of_one_run_leaves_the_others_result_and_shows_interrupted(scratch: Scratch) -> None:
    marker = scratch.tmp / "marker"
    write_plan(scratch.plan, [
        session("s1", checks=[{"id": "c", "python": "tests.check_targets:slow", "timeout": 60}]),
        session("s2", checks=[scratch.timed("s2", 6)])])
    killed = scratch.start("run", "s1", FINKS_TEST_MARKER=str(marker), FINKS_TEST_SLEEP="30")
    survivor = scratch.start("run", "s2")
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert time.monotonic() < deadline and killed.poll() is None, "s1's check never started"
        time.sleep(0.05)
    scratch.wait_for("s2")
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait(timeout=10)
    # Decided per session: s1's lock died with its process while s2's is still held.
    store = StateStore(scratch.state, "local")
    assert store.holder(session_lock("s1")) is None
    assert store.session_running("s2") and not store.session_running("s1")
    assert scratch.status() == {"s1": "interrupted", "s2": "in_progress"}
    rc, _, err = _done(survivor)
    assert rc == 0, err
    assert scratch.status() == {"s1": "interrupted", "s2": "complete"}
    assert "never finished" in scratch.finks("why", "s1").stdout
    again = scratch.start("run", "s1", FINKS_TEST_MARKER=str(marker), FINKS_TEST_SLEEP="0")
    assert _done(again)[0] == 0
    assert scratch.status() == {"s1": "complete", "s2": "complete"}


_APPENDER = """
import sys
from pathlib import Path
from finks.state import StateStore
store = StateStore(Path(sys.argv[1]), "local")
writer, count = int(sys.argv[2]), int(sys.argv[3])
for seq in range(count):
    # Lines from 100 bytes to ~200 kB: far past PIPE_BUF and a page, so torn writes would show.
    store.append({"type": "check", "writer": writer, "seq": seq, "pad": "é" * ((seq * 7919 + writer) % 100_000)})
"""


def test_concurrent_appenders_write_whole_lines_and_readers_never_see_a_torn_one(tmp_path: Path) -> None:
    writers, count = 8, 60
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", _APPENDER, str(tmp_path), str(w), str(count)], env=env)
             for w in range(writers)]
    store = StateStore(tmp_path, "local")
    reads = 0
    while any(p.poll() is None for p in procs):
        list(store.events())  # raises on a line that does not parse: an interleaved or torn write
        reads += 1
    assert [p.wait() for p in procs] == [0] * writers
    lines = store.path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) - 1 == writers * count
    events = [json.loads(line) for line in lines[:-1]]
    for w in range(writers):
        seqs = [e["seq"] for e in events if e["writer"] == w]
        assert seqs == list(range(count))  # each writer's lines whole, in its own order
    assert reads > 0


def test_reader_ignores_an_append_in_flight_and_a_torn_tail_stays_its_own_line(tmp_path: Path) -> None:
    store = StateStore(tmp_path, "local")
    store.append({"type": "reset", "session": "s1"})
    with open(store.path, "ab") as handle:
        handle.write(b'{"type": "res')  # what a reader may see mid-append, or a crash leaves
    assert [e["type"] for _, e in store.events()] == ["reset"]
    store.append({"type": "reset", "session": "s2"})
    lines = store.path.read_text().splitlines()
    assert lines[1] == '{"type": "res' and json.loads(lines[2])["session"] == "s2"
