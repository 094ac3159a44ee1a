"""What the runner tells a reporter while it works: one frozen dataclass per event.

The runner never prints (see :mod:`finks.runner`); it hands each event to a
:class:`Reporter`. A run of one session emits, in order::

    SessionStarted
      ActionStarted, ActionFinished      for each task action that applies here
      CheckStarted, CheckFinished        for each check of each criterion
    SessionFinished

A session that does not start emits one ``SessionSkipped`` instead; a gate
emits a ``CheckFinished`` per gate check, then ``GateEvaluated``. With
``--jobs`` above 1 the events of different sessions interleave, and reporters
are called from the runner's worker threads.

A reporter is anything with ``handle(event)``. The ones in
:mod:`finks.reporters` dispatch on the event's type with
:func:`functools.singledispatchmethod` and ignore the events they do not show;
:meth:`Event.to_dict` gives a JSON-ready form for reporters that stream them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Protocol

from finks.checks import CheckResult
from finks.outcomes import SessionOutcome


@dataclass(frozen=True)
class Event:
    """Base of every event; ``kind`` names it in :meth:`to_dict`."""

    kind: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.kind}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.to_dict() if isinstance(value, CheckResult) else (
                str(value) if isinstance(value, Path) else value)
        return out


@dataclass(frozen=True)
class SessionStarted(Event):
    kind: ClassVar[str] = "session_started"
    session: str
    title: str
    run_id: str
    checks: int = 0  # how many checks the run will try (for progress displays)


@dataclass(frozen=True)
class ActionStarted(Event):
    kind: ClassVar[str] = "action_started"
    session: str
    task: str  # the title of the task whose action runs


@dataclass(frozen=True)
class ActionFinished(Event):
    kind: ClassVar[str] = "action_finished"
    session: str
    task: str
    result: CheckResult


@dataclass(frozen=True)
class CheckStarted(Event):
    kind: ClassVar[str] = "check_started"
    session: str
    check: str


@dataclass(frozen=True)
class CheckFinished(Event):
    kind: ClassVar[str] = "check_finished"
    session: str  # the session, or the gate, the check belongs to
    criterion: str  # the criterion's text (a gate's title for a gate check)
    result: CheckResult


@dataclass(frozen=True)
class SessionFinished(Event):
    kind: ClassVar[str] = "session_finished"
    session: str
    outcome: SessionOutcome  # passed | failed | unverified | not_applicable
    duration_s: float
    handoff: Path  # the handoff note just written
    verdicts: str = ""  # its criteria by verdict: "5 verified, 3 planned"


@dataclass(frozen=True)
class SessionSkipped(Event):
    kind: ClassVar[str] = "session_skipped"
    session: str
    outcome: SessionOutcome  # skipped_upstream | blocked
    reason: str


@dataclass(frozen=True)
class GateEvaluated(Event):
    kind: ClassVar[str] = "gate_evaluated"
    gate: str
    passed: bool
    reason: str
    status: str = ""  # passed | failed | unverified | pending (its sessions are not complete)


class Reporter(Protocol):
    """Receives every event of a run. It should not raise: an exception stops the run."""

    def handle(self, event: Event) -> None: ...
