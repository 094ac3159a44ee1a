"""One platform command's console: progress on stderr, the libraries' logs in the run's log file.

    with command_console(settings.home, "backfill", verbose=False, prefect=True) as display:
        display.start("backfill 2024-03-11..2024-03-13", total=3, unit="dates")
        backfill_flow(...)        # its progress(...) events advance the display
    typer.echo(data)              # stdout is the command's again

For the block:

- stdout is kept for the command's data: whatever else writes there (dbt's
  console logger, a dbt ``print()``) is relayed as records of ``finks.stdout``;
- Prefect's console handler is off the root logger; records of INFO and above
  (Prefect's, dbt's relayed lines) go to ``<home>/logs/<command>-<stamp>.log``,
  and with ``verbose`` to stderr too;
  the path is printed on stderr at the end when anything was logged;
- dbt and Prefect are told not to colour (their output is relayed, never a
  terminal's), and the display honours ``NO_COLOR``.

Engines report progress with :func:`progress`: records of the
``finks.progress`` logger, which only a command's display listens to (outside
one the logger is below INFO and an event costs one level check).
Imports are light: rich loads when a display is drawn on a terminal.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from core import clock
from core.environ import scoped

PROGRESS = "finks.progress"
RELAY = "finks.stdout"
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# Relayed output is never a terminal: colour codes would only litter the log file.
NO_COLOUR_ENV = {"DBT_USE_COLORS": "false", "DBT_USE_COLORS_FILE": "false", "PREFECT_LOGGING_COLORS": "false"}


def progress(event: str, **fields: Any) -> None:
    """Report one event: ``start`` (title, total, unit), ``advance`` (item, status,
    detail, quiet), ``info`` (text: the bar's side note) or ``note`` (text: a line)."""
    log = logging.getLogger(PROGRESS)
    if log.isEnabledFor(logging.INFO):
        log.info("%s %s", event, fields, extra={"finks_progress": {"event": event, **fields}})


def no_color() -> bool:
    """https://no-color.org: any non-empty NO_COLOR turns colour off."""
    return bool(os.environ.get("NO_COLOR"))


class Display:
    """Progress on a stream (stderr): a rich bar on a terminal, one plain line per item otherwise."""

    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = _isatty(self.stream) if tty is None else tty
        self.title, self.unit, self.done = "", "", 0
        self.total: int | None = None
        self._lock = threading.RLock()
        self._bar: Any = None
        self._task: Any = None

    def handle(self, event: dict[str, Any]) -> None:
        kind = event.pop("event", None)
        if kind in ("start", "advance", "info", "note"):
            getattr(self, kind)(**event)

    def start(self, title: str, total: int | None = None, unit: str = "") -> None:
        with self._lock:
            self.close()
            self.title, self.total, self.unit, self.done = title, total, unit, 0
            if self.tty:
                self._bar = _rich_bar(self.stream)
                self._task = self._bar.add_task(title, total=total, unit=unit, info="")
                self._bar.start()
            else:
                self._write(f"{title}: {total} {unit}" if total is not None else title)

    def advance(self, item: str | None = None, status: str = "", detail: str = "", quiet: bool = False) -> None:
        with self._lock:
            self.done += 1
            if self._bar is not None:
                self._bar.update(self._task, advance=1)
            if quiet or item is None:
                return
            count = f" {self.done}/{self.total}" if self.total else ""
            self._line(f"{self.title}{count}: {item} {status}{f' ({detail})' if detail else ''}".rstrip())

    def info(self, text: str) -> None:
        """A side note on the bar (calls/min); no line of its own."""
        with self._lock:
            if self._bar is not None:
                self._bar.update(self._task, info=text)

    def note(self, text: str) -> None:
        self._line(f"{self.title}: {text}" if self.title else text)

    def log(self, line: str) -> None:
        """A log line (verbose): above the bar on a terminal."""
        self._line(line)

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.stop()
                self._bar = None

    def _line(self, text: str) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.console.print(text, markup=False, highlight=False, soft_wrap=True)
            else:
                self._write(text)

    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _rich_bar(stream: TextIO) -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(file=stream, no_color=no_color(), highlight=False)
    # Not redirecting: stdout is the command's data, and the log handlers print through this console.
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[unit]}"), TimeElapsedColumn(), TextColumn("{task.fields[info]}"),
                    console=console, redirect_stdout=False, redirect_stderr=False)


class _ToDisplay(logging.Handler):
    """Verbose: log records as lines on the display."""

    def __init__(self, display: Display) -> None:
        super().__init__(logging.INFO)
        self.display = display
        self.setFormatter(logging.Formatter(LOG_FORMAT, "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        # dbt's lines carry their own time stamps.
        self.display.log(record.getMessage() if record.name == RELAY else self.format(record))


class _ProgressHandler(logging.Handler):
    def __init__(self, display: Display) -> None:
        super().__init__(logging.INFO)
        self.display = display

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "finks_progress", None)
        if isinstance(event, dict):
            self.display.handle(dict(event))


class _Relay(io.TextIOBase):
    """A stand-in stdout: each line written becomes an INFO record of ``finks.stdout``."""

    def __init__(self) -> None:
        self._log = logging.getLogger(RELAY)
        self._buffer = ""
        self._lock = threading.Lock()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._buffer += text
            *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            if line.strip():
                self._log.info("%s", line.rstrip())
        return len(text)

    def flush(self) -> None:
        with self._lock:
            rest, self._buffer = self._buffer, ""
        if rest.strip():
            self._log.info("%s", rest.rstrip())


@contextlib.contextmanager
def command_console(home: Path, command: str, *, verbose: bool = False, prefect: bool = False,
                    stream: TextIO | None = None) -> Iterator[Display]:
    """The console of one command run (see the module docstring); yields its display."""
    display = Display(stream)
    log_path = Path(home) / "logs" / f"{command}-{clock.stamp()}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(log_path, encoding="utf-8", delay=True)
    to_file.setLevel(logging.INFO)
    to_file.setFormatter(logging.Formatter(LOG_FORMAT))
    root, progress_log, relay_log = logging.getLogger(), logging.getLogger(PROGRESS), logging.getLogger(RELAY)
    levels = {progress_log: progress_log.level, relay_log: relay_log.level}
    propagates = progress_log.propagate
    added: list[tuple[logging.Logger, logging.Handler]] = [(root, to_file), (progress_log, _ProgressHandler(display))]
    if verbose:
        added.append((root, _ToDisplay(display)))
    removed: list[logging.Handler] = []
    relay = _Relay()
    with scoped(NO_COLOUR_ENV):
        try:
            if prefect:
                removed = _quiet_prefect_console(root)
            for logger in levels:
                logger.setLevel(logging.INFO)
            progress_log.propagate = False  # drawn, not logged: the engines log their own lines
            for logger, handler in added:
                logger.addHandler(handler)
            with contextlib.redirect_stdout(relay):
                try:
                    yield display
                finally:
                    relay.flush()
        finally:
            for logger, handler in added:
                logger.removeHandler(handler)
            for logger, level in levels.items():
                logger.setLevel(level)
            progress_log.propagate = propagates
            for handler in removed:
                root.addHandler(handler)
            display.close()
            to_file.close()
            if log_path.exists():
                display.stream.write(f"log: {log_path}\n")
                display.stream.flush()


def _quiet_prefect_console(root: logging.Logger) -> list[logging.Handler]:
    """Configure Prefect's logging now (it does on import), then take its console handler off the root."""
    from prefect.logging.configuration import ensure_logging_setup
    from prefect.logging.handlers import PrefectConsoleHandler

    ensure_logging_setup()
    found: list[logging.Handler] = [h for h in root.handlers if isinstance(h, PrefectConsoleHandler)]
    for handler in found:
        root.removeHandler(handler)
    return found


__all__ = ["PROGRESS", "RELAY", "Display", "command_console", "no_color", "progress"]
