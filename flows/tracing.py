"""Distributed tracing: one OpenTelemetry trace per pipeline run.

Prefect 3 opens a span for every flow run and task run itself
(`prefect.telemetry.run_telemetry`), on the tracer provider that is global
when the run *starts*, and parents a nested run's span under its parent's
through the run's labels (so also across the threads of `.submit`). Tracing
here is therefore three small things:

* an SDK tracer provider, installed when this module is imported: the flow
  modules import it, so it is in place before a deployment's first run
  starts (a provider set inside a flow's body would be too late for that
  run's own span);
* `configure`: where this process's spans go, by the standard variables

      otlp  OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is set: OTLP
            over HTTP; in AWS to the ADOT collector sidecar on localhost:4318,
            which forwards to X-Ray (infra/components/ecs.py)
      file  otherwise: JSON lines in <home>/traces/<UTC day>.jsonl, a span a line
      none  OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none

  (`exporting` routes them to a given exporter for a block: tests, checks);
* `step` and `annotate`: give a run's span the step's name (Prefect names it
  after the run, e.g. "gentle-otter") and the date, env, dataset and counts.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

if TYPE_CHECKING:
    from opentelemetry.context import Context

    from core.settings import Settings

SERVICE = "finks-pipeline"
ATTRIBUTE_PREFIX = "finks."


# ---- where spans go -----------------------------------------------------------

class _Route(SpanProcessor):
    """The provider's one processor of ours: forwards to the processor `configure` chose.

    OpenTelemetry lets a process set its global provider once, and a provider
    cannot drop a processor; so the provider stays, and this route is re-pointed.
    """

    def __init__(self) -> None:
        self.key: tuple[str, str] | None = None
        self.target: SpanProcessor | None = None
        self.pinned = 0
        self.lock = threading.Lock()

    def switch(self, key: tuple[str, str] | None, target: SpanProcessor | None) -> SpanProcessor | None:
        """Point at `target`; returns the previous processor (flushed, not shut down)."""
        previous, self.key, self.target = self.target, key, target
        if previous is not None:
            previous.force_flush()
        return previous

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if (target := self.target) is not None:
            target.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if (target := self.target) is not None:
            target.on_end(span)

    def shutdown(self) -> None:
        if (target := self.target) is not None:
            target.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        target = self.target
        return target.force_flush(timeout_millis) if target is not None else True


_ROUTE = _Route()


def _install() -> None:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        trace.set_tracer_provider(TracerProvider(
            resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or SERVICE})))
        provider = trace.get_tracer_provider()  # someone else's, if they set one first
    if isinstance(provider, TracerProvider):
        provider.add_span_processor(_ROUTE)


_install()


def exporter_for(settings: Settings) -> tuple[str, str]:
    """("otlp", endpoint), ("file", directory) or ("none", "") for this environment."""
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true" or os.environ.get("OTEL_TRACES_EXPORTER") == "none":
        return "none", ""
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if endpoint:
        return "otlp", endpoint
    return "file", str(trace_dir(settings))


def trace_dir(settings: Settings) -> Path:
    """Where the file exporter writes: `<home>/traces/`."""
    return settings.home / "traces"


def configure(settings: Settings) -> str:
    """Send this process's spans where the environment says; returns "otlp <endpoint>",
    "file <dir>" or "none". Idempotent; a no-op inside `exporting`."""
    kind, target = exporter_for(settings)
    with _ROUTE.lock:
        if not _ROUTE.pinned and _ROUTE.key != (kind, target):
            processor: SpanProcessor | None = None
            if kind == "otlp":
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

                # The exporter reads the endpoint (and headers, timeout) from the OTEL_ variables itself.
                processor = BatchSpanProcessor(OTLPSpanExporter())
            elif kind == "file":
                processor = SimpleSpanProcessor(JsonLinesExporter(Path(target)))
            previous = _ROUTE.switch((kind, target), processor)
            if previous is not None:
                previous.shutdown()
    return f"{kind} {target}".strip()


@contextmanager
def exporting(exporter: SpanExporter) -> Iterator[SpanExporter]:
    """Every span that ends in the block goes to `exporter` (and nowhere else), whatever
    `configure` is asked meanwhile. For tests and checks."""
    with _ROUTE.lock:
        saved = (_ROUTE.key, _ROUTE.target)
        _ROUTE.switch(("exporter", repr(exporter)), SimpleSpanProcessor(exporter))
        _ROUTE.pinned += 1
    try:
        yield exporter
    finally:
        with _ROUTE.lock:
            _ROUTE.pinned -= 1
            _ROUTE.switch(*saved)


def flush() -> bool:
    """Export what is buffered (the OTLP exporter batches; the file exporter writes at once)."""
    return _ROUTE.force_flush()


# ---- naming the spans ---------------------------------------------------------

def step(settings: Settings, name: str, **attributes: Any) -> None:
    """At the start of a flow's body: configure the exporter, then name the flow run's
    span after the step and record what is known of it (its env, date, ...)."""
    configure(settings)
    trace.get_current_span().update_name(name)
    annotate(step=name, env=settings.env, **attributes)


def annotate(**attributes: Any) -> None:
    """Add `finks.<name>` attributes to the current span (a flow's or task's); None is skipped."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes({ATTRIBUTE_PREFIX + k: _attribute(v) for k, v in attributes.items() if v is not None})


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[trace.Span]:
    """A span of our own inside a run (a step Prefect has no run for, e.g. publishing gold)."""
    with trace.get_tracer("finks").start_as_current_span(name) as current:
        annotate(step=name, **attributes)
        yield current
        current.set_status(trace.StatusCode.OK)  # as Prefect marks its runs' spans (an error is recorded on the way out)


def _attribute(value: Any) -> Any:
    # OpenTelemetry takes str, bool, int, float and homogeneous sequences of them.
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return json.dumps(value, default=str)


# ---- the file exporter ----------------------------------------------------------

class JsonLinesExporter(SpanExporter):
    """Spans as JSON lines in `<directory>/<UTC day the span started>.jsonl`: locally, the
    stand-in for X-Ray. A line: trace_id, span_id, parent, name, start, end, duration_s,
    status, attributes."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        by_file: dict[Path, list[str]] = {}
        for s in spans:
            record = span_record(s)
            by_file.setdefault(self.directory / f"{record['start'][:10]}.jsonl", []).append(json.dumps(record, default=str))
        try:
            with self._lock:
                self.directory.mkdir(parents=True, exist_ok=True)
                for path, lines in by_file.items():
                    with path.open("a", encoding="utf-8") as f:
                        f.write("".join(line + "\n" for line in lines))
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def span_record(s: ReadableSpan) -> dict[str, Any]:
    """One finished span as the file exporter writes it."""
    ctx, parent = s.get_span_context(), s.parent
    start = s.start_time or 0
    end = s.end_time or start
    return {
        "trace_id": f"{ctx.trace_id if ctx else 0:032x}",
        "span_id": f"{ctx.span_id if ctx else 0:016x}",
        "parent": f"{parent.span_id:016x}" if parent is not None else None,
        "name": s.name,
        "start": _iso(start),
        "end": _iso(end),
        "duration_s": round((end - start) / 1e9, 6),
        "status": s.status.status_code.name,
        "attributes": dict(s.attributes or {}),
    }


def read_spans(directory: Path) -> list[dict[str, Any]]:
    """Every span record in the `.jsonl` files under `directory`, in file order."""
    spans = []
    for path in sorted(Path(directory).glob("*.jsonl")):
        spans += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return spans


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC).isoformat(timespec="microseconds")
