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
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from finks.events import (
    ActionFinished,
    ActionStarted,
    CheckFinished,
    CheckStarted,
    Event,
    GateEvaluated,
    SessionFinished,
    SessionSkipped,
    SessionStarted,
)
from finks.outcomes import FAILING

if TYPE_CHECKING:
    from finks.loader import Plan
    from finks.status import StatusBoard

JSON_SCHEMA_VERSION = 1  # of a kind not listed below
# Kinds whose documents changed shape: v2 carries criterion-level verdicts (and, for
# plan, the schedule finks enforces beside the diagram's).
SCHEMA_VERSIONS = {"status": 2, "session": 2, "why": 2, "run": 2, "gate": 2, "handoff": 2, "prime": 2, "plan": 2}

_COLOURS = {"passed": "32", "complete": "32", "failed": "31", "error": "31", "blocked": "31",
            "skipped": "90", "skipped_upstream": "33", "ready": "33", "stale": "33", "interrupted": "35",
            "in_progress": "34", "up_to_date": "90", "not_applicable": "90", "unverified": "35",
            "verified": "32", "planned": "36", "pending": "33", "would_run": "90", "would_evaluate": "90"}


def use_colour(stream: IO[str]) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def paint(text: str, word: str, enabled: bool) -> str:
    code = _COLOURS.get(word)
    return f"\033[{code}m{text}\033[0m" if enabled and code else text


def envelope(kind: str, payload: dict[str, Any]) -> str:
    """Every --json document carries its kind and schema version."""
    version = SCHEMA_VERSIONS.get(kind, JSON_SCHEMA_VERSION)
    return json.dumps({"schema": f"finks.{kind}/v{version}", **payload}, indent=2, default=str)


class TextReporter:
    """Progress lines on stderr; colour only on a TTY and never with NO_COLOR.

    On a terminal a live bar under the lines counts the session's checks done
    of total and names the one running (rich, transient: it leaves only the
    lines); elsewhere the lines alone, one per check.
    """

    def __init__(self, stream: IO[str] | None = None, verbose: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.colour = use_colour(self.stream)
        self.verbose = verbose
        self._live: Any = None  # rich Progress while a session runs on a terminal
        self._task: Any = None

    def _out(self, text: str) -> None:
        if self._live is not None:
            from rich.text import Text

            self._live.console.print(Text.from_ansi(text), soft_wrap=True)
            return
        self.stream.write(text + "\n")
        self.stream.flush()

    def _bar(self, event: SessionStarted) -> None:
        if not (event.checks and hasattr(self.stream, "isatty") and self.stream.isatty()):
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        console = Console(file=self.stream, no_color=not self.colour, highlight=False)
        self._live = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                              TextColumn("checks"), TimeElapsedColumn(), console=console, transient=True)
        self._live.start()
        self._task = self._live.add_task(event.session, total=event.checks)

    def _end_bar(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = self._task = None

    @functools.singledispatchmethod
    def handle(self, event: Event) -> None:
        """An event this reporter does not show."""

    @handle.register
    def _session_started(self, event: SessionStarted) -> None:
        self._out(f"▶ {event.session}: {event.title}  (run {event.run_id})")
        self._bar(event)

    @handle.register
    def _check_started(self, event: CheckStarted) -> None:
        if self._live is not None:
            self._live.update(self._task, description=f"{event.session} · {event.check}")

    @handle.register
    def _action_started(self, event: ActionStarted) -> None:
        self._out(f"  … {event.task}")

    @handle.register
    def _result(self, event: ActionFinished | CheckFinished) -> None:
        result = event.result
        word = result.outcome.value
        label = (event.task if isinstance(event, ActionFinished) else "") or result.check_id
        grade = f" ({result.grade})" if isinstance(event, CheckFinished) and result.outcome == "passed" else ""
        self._out(f"  {paint(word.upper().ljust(7), word, self.colour)} {label}{grade} [{result.duration_s:.1f}s] "
                  f"{result.evidence.message}")
        if result.outcome in FAILING and result.evidence.excerpt and self.verbose:
            for ln in result.evidence.excerpt.splitlines()[-10:]:
                self._out("      " + ln)
        if isinstance(event, CheckFinished) and self._live is not None:
            self._live.advance(self._task)

    @handle.register
    def _session_finished(self, event: SessionFinished) -> None:
        self._end_bar()
        word = event.outcome
        tail = f" ({event.verdicts})" if event.verdicts else ""
        self._out(f"■ {event.session} {paint(word, word, self.colour)}{tail} in {event.duration_s:.1f}s "
                  f"→ {_shown(event.handoff)}")

    @handle.register
    def _session_skipped(self, event: SessionSkipped) -> None:
        self._out(f"■ {event.session} {paint('skipped', 'skipped_upstream', self.colour)}: {event.reason}")

    @handle.register
    def _gate_evaluated(self, event: GateEvaluated) -> None:
        word = event.status or ("passed" if event.passed else "failed")
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


def render_status(plan: Plan, board: StatusBoard, env: str, tty: bool, colour: bool) -> str:
    """`finks status` as text: a line per session (status · verdicts, reason), then the gates."""
    from finks.status import INDICATOR

    rows = board.all()
    lines = [f"finks status · env {env} · {len(rows)} sessions from {plan.directory} · planned evidence "
             f"{'accepted' if plan.accepts_planned(env) else 'not accepted'} on {env}"]
    for r in rows:
        s = plan.sessions[r.sid]
        word = f"{INDICATOR.get(r.status, ' ')} {r.status.label}" if tty else r.status.label
        tail = r.verdict.summary() if r.verdict is not None else ""
        last = f"last run {r.last_run.started_at} ({r.last_run.outcome or 'unfinished'})" if r.last_run else ""
        detail = " — ".join(x for x in (f"· {tail}" if tail else "", r.reason or ("" if tail else last)) if x)
        lines.append(f"  {r.sid:<4} {paint(word.ljust(16), r.status, colour)} w{s.week} {str(s.estimate_hours):>6}  "
                     f"{s.title[:44]:<44}  {detail}")
    if plan.gates:
        lines.append("gates" + ("" if plan.strict_gates else " (advisory: strict: false)"))
        for gid in plan.gates:
            g = board.gate(gid)
            lines.append(f"  {gid:<6} {paint(g.status.ljust(10), 'passed' if g.passed else 'blocked', colour)} "
                         f"{plan.gates[gid].title} — {g.reason}")
    return "\n".join(lines)


def render_plan(plan: Plan, doc: dict[str, Any]) -> str:
    """`finks plan` as text from its JSON document (finks.graph.plan_data)."""
    strict = doc["gates"] == "strict"
    enforced = "as finks enforces it with strict gates" if strict else "gates advisory: as the diagram draws it"

    def step(node: str) -> str:
        return f"{node}({plan.sessions[node].estimate_hours})" if node in plan.sessions else f"[gate {node}]"

    lines = [f"waves, {enforced}:"]
    lines += [f"wave {i}: " + "  ".join(step(n) for n in wave) for i, wave in enumerate(doc["waves"], 1)]
    total, slack, work, drawn = doc["total_hours"], doc["slack_hours"], doc["sum_of_estimates"], doc["diagram"]
    for basis in ("low", "high"):
        lines.append(f"critical path ({basis}, {total[basis]:g}h, {enforced}): "
                     + " -> ".join(doc["critical_path"][basis]))
    for basis in ("low", "high") if strict else ():
        lines.append(f"critical path ({basis}, {drawn['total_hours'][basis]:g}h, as the diagram draws it): "
                     + " -> ".join(drawn["critical_path"][basis]))
    lines.append("slack (low/high hours): " + "  ".join(f"{s}={h['low']:g}/{h['high']:g}" for s, h in slack.items()))
    lines.append(f"total: {total['low']:g}-{total['high']:g}h elapsed with unlimited parallelism, {enforced}"
                 + (f"; {drawn['total_hours']['low']:g}-{drawn['total_hours']['high']:g}h as the diagram draws it"
                    if strict else "")
                 + f"; {work['low']:g}-{work['high']:g}h of work in sequence")
    return "\n".join(lines)


def _shown(path: Path) -> str:
    """A path as a person reads it: relative to the working directory when it lies under it."""
    try:
        return os.path.relpath(path) if Path(path).resolve().is_relative_to(Path.cwd().resolve()) else str(path)
    except (OSError, ValueError):
        return str(path)
