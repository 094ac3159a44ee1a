"""Evidence history: per environment, append-only, safe under concurrency and crashes.

Layout (under ``FINKS_STATE_DIR``, default ``.finks/``)::

    state/<env>/history.jsonl          one JSON event per line, never rewritten
    state/<env>/history.lock           flock held only while one line is appended
    state/<env>/locks/session-s8.lock  flock held while a run of s8 is under way
    state/<env>/locks/gate-week1.lock  flock held while gate week1 is evaluated
    state/<env>/locks/resource-*.lock  flock on a shared resource a session needs

Concurrency policy: a lock per session, not per environment. `finks run s1`
and `finks run s2` in two processes proceed together; two runs of one session,
or of sessions that need the same named resource, serialize: the later one
waits (its runner says so on stderr) or, with ``--no-wait``, exits 3 naming
the holder's pid. A run takes its locks in sorted order, and holds at most one
session's set at a time per thread, so runs never deadlock. Read commands take
no lock at all and can run at any time.

Every append is one ``write()`` of a whole line under ``history.lock``, so N
concurrent writers never interleave lines; a reader ignores an unterminated
last line (an append in flight). The kernel releases flocks when a process
dies, so a run killed with SIGKILL leaves a ``run_started`` without a
``run_finished`` and a free session lock: that session, and only that one,
shows as *interrupted* (:meth:`StateStore.session_running`), and the next run
simply proceeds.

A line that does not parse is reported with its path and line number; the
file is never rewritten to "repair" it.

Claims say who is on what: a ``claim`` event (session, owner, lease expiry,
pid, host) and a ``release`` event, appended like any other. A session's
claim is its latest claim not released since; it holds until its lease
expires, when the session is free again with nothing written. A claim or
release is decided under the session's claim lock (``claim-sN.lock``), so two
owners claiming at once cannot both win.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import re
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from core.clock import now_iso, utcnow
from core.errors import BlockedError, StateError, StateLockedError
from finks.claims import Claim, iso_ms
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
    fingerprint: dict[str, Any] | None = None  # what it was judged on (finks.fingerprint); None: an older finks
    upstream: dict[str, str] | None = None  # the fingerprint of each upstream session when it ran
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
    claims: dict[str, Claim] = field(default_factory=dict)  # the latest claim of each session not released since

    def claim(self, sid: str, now: dt.datetime | None = None) -> Claim | None:
        """The live claim on a session: None when unclaimed, released, or its lease has expired."""
        found = self.claims.get(sid)
        return found if found is not None and found.live(now) else None

    def live_claims(self, now: dt.datetime | None = None) -> dict[str, Claim]:
        return {sid: c for sid, c in self.claims.items() if c.live(now)}

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


def session_lock(sid: str) -> str:
    """The name of the lock a run of ``sid`` holds."""
    return f"session:{sid}"


def gate_lock(gid: str) -> str:
    return f"gate:{gid}"


def claim_lock(sid: str) -> str:
    """Held for the moment a claim or release of ``sid`` is decided and appended."""
    return f"claim:{sid}"


def resource_lock(resource: str) -> str:
    """A shared resource a check needs: ``stack``, ``lake:2026-11-24``, ``deployment:daily``."""
    return f"resource:{resource}"


# A lock's file name: its name with anything but [A-Za-z0-9._-] as '-'.
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# A probe (status reading a lock) holds a free lock for microseconds: retry that long
# before calling a lock held, so that a read never makes a run wait or exit 3.
_PROBE_RETRIES, _PROBE_PAUSE_S = 5, 0.02


class StateStore:
    def __init__(self, state_dir: Path, env: str) -> None:
        self.env = env
        self.dir = Path(state_dir) / "state" / env
        self.path = self.dir / "history.jsonl"
        self.locks_dir = self.dir / "locks"
        self._append_lock = self.dir / "history.lock"

    # ---- writing ---------------------------------------------------------
    def append(self, event: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        record = {"v": SCHEMA, "at": now_iso(), **event}
        line = (json.dumps(record, default=str, separators=(",", ":")) + "\n").encode()
        with open(self._append_lock, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = b"\n" + line  # a line torn by a crash stays a line of its own
                # One write() of the whole line: a reader sees all of it or an unterminated tail.
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)

    def reset(self, sid: str) -> None:
        """Forget a session's runs: one 'reset' event; nothing is deleted.

        It takes the session's lock without waiting: forgetting a run that is
        under way would orphan its evidence, so that is refused (exit 3).
        """
        with self.lock([session_lock(sid)], wait=False):
            self.append({"type": "reset", "session": sid})

    # ---- claims ------------------------------------------------------------
    def claim(self, sid: str, owner: str, lease_s: float, *, steal: bool = False,
              now: dt.datetime | None = None) -> tuple[Claim, Claim | None]:
        """Claim a session for ``owner`` for ``lease_s`` seconds; return the claim and the one it replaced.

        The owner's own live claim is renewed. Another owner's live claim is
        refused (BlockedError, exit 1, naming the holder and the expiry) unless
        ``steal``; an expired one is no claim at all.
        """
        with self.lock([claim_lock(sid)]):
            now = now or utcnow()
            held = self.history().claim(sid, now)
            if held is not None and held.owner != owner and not steal:
                raise BlockedError(
                    f"{sid} is {held.describe(now)} (until {held.expires_at}, pid {held.pid} on {held.host or '?'})",
                    hint=f"wait for the lease to end, ask {held.owner} to run 'finks release {sid} --owner "
                         f"{held.owner}', or take it over with 'finks claim {sid} --steal'")
            claim = Claim(sid, owner, iso_ms(now), iso_ms(now + dt.timedelta(seconds=lease_s)), os.getpid(),
                          socket.gethostname())
            event: dict[str, Any] = {"type": "claim", "session": sid, "owner": owner, "claimed_at": claim.claimed_at,
                                     "expires_at": claim.expires_at, "lease_s": lease_s, "pid": claim.pid,
                                     "host": claim.host}
            if held is not None:
                event["replaces"] = held.owner
            self.append(event)
            return claim, held

    def release(self, sid: str, owner: str, *, now: dt.datetime | None = None) -> Claim | None:
        """Release ``owner``'s live claim on a session; return it, or None when there was none.

        Another owner's live claim is not released (BlockedError, exit 1).
        """
        with self.lock([claim_lock(sid)]):
            now = now or utcnow()
            held = self.history().claim(sid, now)
            if held is None:
                return None
            if held.owner != owner:
                raise BlockedError(
                    f"{sid} is {held.describe(now)}, not by {owner}: not released",
                    hint=f"release it as its owner ('finks release {sid} --owner {held.owner}'), "
                         f"or take it over with 'finks claim {sid} --steal'")
            self.append({"type": "release", "session": sid, "owner": owner})
            return held

    # ---- locks -------------------------------------------------------------
    def lock_path(self, name: str) -> Path:
        return self.locks_dir / (_UNSAFE.sub("-", name) + ".lock")

    @contextmanager
    def lock(self, names: Iterable[str], *, wait: bool = True,
             on_wait: Callable[[str, str], None] | None = None) -> Iterator[bool]:
        """Hold every named lock; yield whether it had to wait for one.

        Locks are taken in sorted order. A lock another process (or thread)
        holds is waited for, after ``on_wait(name, holder)``; with
        ``wait=False`` it raises StateLockedError naming the holder instead.
        """
        self.locks_dir.mkdir(parents=True, exist_ok=True)
        held: list[IO[str]] = []
        waited = False
        try:
            for name in sorted(set(names)):
                handle = open(self.lock_path(name), "a+")
                try:
                    if not _try_flock(handle):
                        holder = _holder_text(handle)
                        if not wait:
                            raise self.locked_error(name, holder)
                        if on_wait is not None:
                            on_wait(name, holder)
                        fcntl.flock(handle, fcntl.LOCK_EX)
                        waited = True
                except BaseException:
                    handle.close()
                    raise
                held.append(handle)
                handle.seek(0)
                handle.truncate()
                handle.write(f"pid {os.getpid()} since {now_iso()}")
                handle.flush()
            yield waited
        finally:
            for owned in reversed(held):
                # Emptied before unlocking: a probe reads an empty file as free without a flock.
                with suppress(OSError):
                    owned.truncate(0)
                    owned.flush()
                owned.close()  # closing the description releases its flock

    def locked_error(self, name: str, holder: str) -> StateLockedError:
        return StateLockedError(
            f"{name.replace(':', ' ')} is locked on env {self.env!r} by another finks run ({holder})",
            hint=f"wait for it to finish (without --no-wait, finks waits for it), or check {self.lock_path(name)}",
        )

    def holder(self, name: str) -> str | None:
        """Who holds a lock (``pid 123 since …``), or None when it is free. Takes no lock."""
        return _held_by(self.lock_path(name))

    def session_running(self, sid: str) -> bool:
        """True while some process runs ``sid``: running vs interrupted, per session."""
        return self.holder(session_lock(sid)) is not None

    def run_in_progress(self) -> bool:
        """True while any session of this environment is being run."""
        if not self.locks_dir.is_dir():
            return False
        return any(_held_by(path) is not None for path in self.locks_dir.glob("session-*.lock"))

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
        with open(self.path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    event = json.loads(raw.decode("utf-8"))
                    if not isinstance(event, dict) or "type" not in event:
                        raise ValueError("not an event object")
                except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
                    if not raw.endswith(b"\n"):
                        return  # the unterminated tail of an append in flight
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
                run.fingerprint = event.get("fingerprint")
                run.upstream = event.get("upstream")
            elif kind == "gate":
                hist.gates[event["gate"]] = event
            elif kind == "reset":
                hist.runs.pop(event["session"], None)
            elif kind == "batch":
                hist.batches.append(event)
            elif kind == "claim":
                try:
                    hist.claims[event["session"]] = Claim(
                        event["session"], event["owner"], event.get("claimed_at") or event["at"],
                        iso_ms(dt.datetime.fromisoformat(event["expires_at"])), event.get("pid", 0),
                        event.get("host", ""))
                except (KeyError, TypeError, ValueError) as exc:
                    raise self._corrupt(number, f"claim without a valid owner or expiry ({exc})") from None
            elif kind == "release":
                held = hist.claims.get(event.get("session", ""))
                if held is not None and held.owner == event.get("owner"):
                    del hist.claims[held.session]
        return hist


# ---- flock helpers -----------------------------------------------------------
def _try_flock(handle: IO[str]) -> bool:
    """Take an exclusive flock without blocking; a probe's momentary hold is not a holder."""
    for attempt in range(_PROBE_RETRIES):
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if attempt + 1 < _PROBE_RETRIES:
                time.sleep(_PROBE_PAUSE_S)
    return False


def _holder_text(handle: IO[str]) -> str:
    handle.seek(0)
    return handle.read().strip() or "pid unknown"


def _held_by(path: Path) -> str | None:
    try:
        handle = open(path)
    except FileNotFoundError:
        return None
    with handle:
        text = handle.read().strip()
        if not text:
            return None  # never locked, or released: the holder empties it first
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return text
        return None  # what a killed process left behind (closing drops the probe's flock)
