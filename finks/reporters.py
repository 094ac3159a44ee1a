"""Render runner events: progress on stderr for people, JSON on stdout for machines."""

from __future__ import annotations

import json
import os
import sys
from typing import IO, Any

from finks.checks import CheckResult

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

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        if event == "session_started":
            self._out(f"▶ {data['session']}: {data['title']}  (run {data['run_id']})")
        elif event == "action_started":
            self._out(f"  … {data['task']}")
        elif event in ("action_finished", "check_finished"):
            result: CheckResult = data["result"]
            word = result.outcome.value
            label = data.get("task") or result.check_id
            line = f"  {paint(word.upper().ljust(7), word, self.colour)} {label} [{result.duration_s:.1f}s] {result.evidence.message}"
            self._out(line)
            if word in ("failed", "error") and result.evidence.excerpt and self.verbose:
                for ln in result.evidence.excerpt.splitlines()[-10:]:
                    self._out("      " + ln)
        elif event == "session_finished":
            word = data["outcome"]
            self._out(f"■ {data['session']} {paint(word, word, self.colour)} in {data['duration_s']:.1f}s → {data['handoff']}")
        elif event == "session_skipped":
            self._out(f"■ {data['session']} {paint('skipped', 'skipped_upstream', self.colour)}: {data['reason']}")
        elif event == "gate_evaluated":
            word = "passed" if data["passed"] else "failed"
            self._out(f"◆ gate {data['gate']} {paint(word, word, self.colour)}: {data['reason']}")


class QuietReporter:
    """Used with --json: progress still goes to stderr, but only one line per session."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        if event == "session_finished":
            self.stream.write(f"{data['session']} {data['outcome']}\n")
        elif event == "session_skipped":
            self.stream.write(f"{data['session']} skipped: {data['reason']}\n")
