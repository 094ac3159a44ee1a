"""Evidence history: per environment, append-only, safe under concurrency and crashes.

Layout (under ``FINKS_STATE_DIR``, default ``.finks/``)::

    state/<env>/history.jsonl   one JSON event per line, never rewritten
    state/<env>/history.lock    flock held only while one line is appended
    state/<env>/run.lock        flock held for the whole of a `finks run`

Concurrency policy: one `finks run` per environment at a time. A second one
does not wait: it exits 3 naming the holder's pid, so that two runs never
interleave checks against the same local stack. Read commands never take the
run lock and can run at any time. The kernel releases flocks when a process
dies, so a `finks run` killed with SIGKILL leaves a ``run_started`` without a
``run_finished`` and a free lock: that session shows as *interrupted*, and the
next run simply proceeds.

A line that does not parse is reported with its path and line number; the
file is never rewritten to "repair" it.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.clock import now_iso
from core.errors import StateError, StateLockedError
from finks.outcomes import NOT_OK, SessionOutcome

SCHEMA = 1


@dataclass
class SessionRun:
    run_id: str
    session: str
    started_at: str
    pid: int
    git: dict[str, Any] = field(default_factory=dict)
    finished_at: str | None = None
    outcome: SessionOutcome | None = None
    deliverables_hash: str | None = None
    duration_s: float | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.outcome is not None

    @property
    def validated(self) -> bool:
        """It finished having proved what applies here (passed, or nothing applied)."""
        return self.outcome in (SessionOutcome.passed, SessionOutcome.not_applicable)


@dataclass
class History:
    """Everything recorded for one environment, folded per session and gate."""

    runs: dict[str, list[SessionRun]] = field(default_factory=dict)
    gates: dict[str, dict[str, Any]] = field(default_factory=dict)
    batches: list[dict[str, Any]] = field(default_factory=list)

    def latest(self, sid: str) -> SessionRun | None:
        runs = self.runs.get(sid)
        return runs[-1] if runs else None

    def last_passed(self, sid: str) -> SessionRun | None:
        for run in reversed(self.runs.get(sid, [])):
            if run.validated:
                return run
        return None

    def to_retry(self) -> list[str] | None:
        """Sessions that failed, were skipped or blocked in the last batch (None: no batch yet)."""
        if not self.batches:
            return None
        return [sid for sid, outcome in self.batches[-1]["results"].items() if outcome in NOT_OK]


class StateStore:
    def __init__(self, state_dir: Path, env: str) -> None:
        self.env = env
        self.dir = Path(state_dir) / "state" / env
        self.path = self.dir / "history.jsonl"
        self._append_lock = self.dir / "history.lock"
        self._run_lock = self.dir / "run.lock"

    # ---- writing ---------------------------------------------------------
    def append(self, event: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        record = {"v": SCHEMA, "at": now_iso(), **event}
        line = (json.dumps(record, default=str, separators=(",", ":")) + "\n").encode()
        with open(self._append_lock, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                # One write() of the whole line: a reader sees all of it or none.
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

    def reset(self, sid: str) -> None:
        """Forget a session's runs: one 'reset' event under the run lock; nothing is deleted."""
        with self.run_lock():
            self.append({"type": "reset", "session": sid})

    @contextmanager
    def run_lock(self) -> Iterator[None]:
        """Hold the environment's run lock, or raise StateLockedError at once."""
        self.dir.mkdir(parents=True, exist_ok=True)
        handle = open(self._run_lock, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise StateLockedError(
                f"another finks run holds the state lock for env {self.env!r} ({holder})",
                hint=f"wait for it to finish, or check {self._run_lock}",
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {now_iso()}")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    def run_in_progress(self) -> bool:
        """True while some process holds the run lock."""
        if not self._run_lock.exists():
            return False
        with open(self._run_lock, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False

    # ---- reading -----------------------------------------------------------
    def _corrupt(self, number: int, problem: object) -> StateError:
        return StateError(
            f"corrupt state file {self.path}:{number}: {problem}",
            hint=f"nothing was changed; inspect that line, or move the file aside "
            f"(mv {self.path} {self.path}.bad) to start this environment's history afresh",
        )

    def events(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """Every recorded event with its line number (for messages that name the line)."""
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                    if not isinstance(event, dict) or "type" not in event:
                        raise ValueError("not an event object")
                except ValueError as exc:
                    raise self._corrupt(number, exc) from None
                yield number, event

    def history(self) -> History:
        hist = History()
        by_id: dict[str, SessionRun] = {}
        for number, event in self.events():
            kind = event["type"]
            if kind == "run_started":
                run = SessionRun(
                    event["run_id"], event["session"], event["at"], event.get("pid", 0), event.get("git", {})
                )
                by_id[run.run_id] = run
                hist.runs.setdefault(run.session, []).append(run)
            elif kind in ("check", "action") and event.get("run_id") in by_id:
                target = by_id[event["run_id"]]
                (target.checks if kind == "check" else target.actions).append(event)
            elif kind == "run_finished" and event.get("run_id") in by_id:
                run = by_id[event["run_id"]]
                run.finished_at = event["at"]
                try:
                    run.outcome = SessionOutcome(event["outcome"])
                except ValueError:
                    raise self._corrupt(number, f"unknown outcome {event['outcome']!r}") from None
                run.deliverables_hash = event.get("deliverables_hash")
                run.duration_s = event.get("duration_s")
            elif kind == "gate":
                hist.gates[event["gate"]] = event
            elif kind == "reset":
                hist.runs.pop(event["session"], None)
            elif kind == "batch":
                hist.batches.append(event)
        return hist
