"""Render runner events: progress on stderr for people, JSON on stdout for machines.

Both reporters implement :class:`finks.events.Reporter`: ``handle(event)``
dispatches on the event's type, and an event a reporter does not show falls
through to the base method, which ignores it.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from typing import IO, Any

from finks.events import (
    ActionFinished,
    ActionStarted,
    CheckFinished,
    Event,
    GateEvaluated,
    SessionFinished,
    SessionSkipped,
    SessionStarted,
)
from finks.outcomes import FAILING

JSON_SCHEMA_VERSION = 1

_COLOURS = {"passed": "32", "complete": "32", "failed": "31", "error": "31", "blocked": "31",
            "skipped": "90", "skipped_upstream": "33", "ready": "33", "stale": "33", "interrupted": "35",
            "in_progress": "34", "up_to_date": "90", "not_applicable": "90"}


def use_colour(stream: IO[str]) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def paint(text: str, word: str, enabled: bool) -> str:
    code = _COLOURS.get(word)
    return f"\033[{code}m{text}\033[0m" if enabled and code else text


def envelope(kind: str, payload: dict[str, Any]) -> str:
    """Every --json document carries its kind and schema version."""
    return json.dumps({"schema": f"finks.{kind}/v{JSON_SCHEMA_VERSION}", **payload}, indent=2, default=str)


class TextReporter:
    """Progress lines on stderr; colour only on a TTY and never with NO_COLOR."""

    def __init__(self, stream: IO[str] | None = None, verbose: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.colour = use_colour(self.stream)
        self.verbose = verbose

    def _out(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    @functools.singledispatchmethod
    def handle(self, event: Event) -> None:
        """An event this reporter does not show (CheckStarted)."""

    @handle.register
    def _session_started(self, event: SessionStarted) -> None:
        self._out(f"▶ {event.session}: {event.title}  (run {event.run_id})")

    @handle.register
    def _action_started(self, event: ActionStarted) -> None:
        self._out(f"  … {event.task}")

    @handle.register
    def _result(self, event: ActionFinished | CheckFinished) -> None:
        result = event.result
        word = result.outcome.value
        label = (event.task if isinstance(event, ActionFinished) else "") or result.check_id
        self._out(f"  {paint(word.upper().ljust(7), word, self.colour)} {label} [{result.duration_s:.1f}s] "
                  f"{result.evidence.message}")
        if result.outcome in FAILING and result.evidence.excerpt and self.verbose:
            for ln in result.evidence.excerpt.splitlines()[-10:]:
                self._out("      " + ln)

    @handle.register
    def _session_finished(self, event: SessionFinished) -> None:
        word = event.outcome
        self._out(f"■ {event.session} {paint(word, word, self.colour)} in {event.duration_s:.1f}s → {event.handoff}")

    @handle.register
    def _session_skipped(self, event: SessionSkipped) -> None:
        self._out(f"■ {event.session} {paint('skipped', 'skipped_upstream', self.colour)}: {event.reason}")

    @handle.register
    def _gate_evaluated(self, event: GateEvaluated) -> None:
        word = "passed" if event.passed else "failed"
        self._out(f"◆ gate {event.gate} {paint(word, word, self.colour)}: {event.reason}")


class QuietReporter:
    """Used with --json: progress still goes to stderr, but only one line per session."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr

    @functools.singledispatchmethod
    def handle(self, event: Event) -> None:
        """Every event but a session's end is left out."""

    @handle.register
    def _session_finished(self, event: SessionFinished) -> None:
        self.stream.write(f"{event.session} {event.outcome}\n")

    @handle.register
    def _session_skipped(self, event: SessionSkipped) -> None:
        self.stream.write(f"{event.session} skipped: {event.reason}\n")
