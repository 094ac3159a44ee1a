"""Distributed tracing (S20): the exporters, the S20 check's verdict, and one trace per
pipeline run against the real Prefect server."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from core.settings import Settings, load_settings
from finks.checks import CheckContext, CheckFailed
from flows import tracing
from validation.tracing import STEPS, pipeline_traced, run_trace

REPO = Path(__file__).resolve().parent.parent
CHECK = "validation.tracing:pipeline_traced"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(env="local", state_dir=tmp_path / "state")


@pytest.fixture
def no_exporter(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Leave the process's spans going nowhere after the test (the next configure() re-points them)."""
    yield
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    tracing.configure(settings)


def _records(build: Any) -> list[dict[str, Any]]:
    """Span records of spans made by `build(tracer)` on a provider of the test's own."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    build(provider.get_tracer("test"))
    return [tracing.span_record(s) for s in exporter.get_finished_spans()]


# ---- the file exporter and configure() ---------------------------------------

def test_file_exporter_writes_one_span_a_line_with_its_parent_and_duration(tmp_path: Path) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(tracing.JsonLinesExporter(tmp_path)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("root", attributes={"finks.date": "2024-03-14"}) as root:
        with tracer.start_as_current_span("child"):
            pass
    (path,) = tmp_path.glob("*.jsonl")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    child, parent = lines
    assert path.name == f"{parent['start'][:10]}.jsonl"
    assert child["trace_id"] == parent["trace_id"] == f"{root.get_span_context().trace_id:032x}"
    assert child["parent"] == parent["span_id"] and parent["parent"] is None
    assert parent["attributes"] == {"finks.date": "2024-03-14"}
    assert parent["duration_s"] >= child["duration_s"] >= 0 and parent["end"] >= child["end"]
    assert set(parent) == {"trace_id", "span_id", "parent", "name", "start", "end", "duration_s", "status", "attributes"}
    assert tracing.read_spans(tmp_path) == lines


def test_without_an_endpoint_spans_go_to_the_state_dir(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                                       no_exporter: None) -> None:
    for var in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(var, raising=False)
    assert tracing.configure(settings) == f"file {settings.home / 'traces'}"
    with tracing.span("local", date="2024-03-14"):
        pass
    (span,) = tracing.read_spans(settings.home / "traces")
    assert span["name"] == "local" and span["attributes"] == {"finks.step": "local", "finks.date": "2024-03-14"}


def test_otel_traces_exporter_none_turns_tracing_off(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert tracing.exporter_for(settings) == ("none", "")
    monkeypatch.delenv("OTEL_TRACES_EXPORTER")
    assert tracing.exporter_for(settings) == ("otlp", "http://localhost:4318")


class _Collector(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver: keeps what is POSTed to /v1/traces."""

    received: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_with_an_endpoint_spans_are_sent_over_otlp_http(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                                        no_exporter: None) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    server = http.server.HTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
        assert tracing.configure(settings).startswith("otlp ")
        with tracing.span("over-otlp", date="2024-03-14"):
            pass
        assert tracing.flush()
    finally:
        server.shutdown()
    (path, body), = _Collector.received
    request = ExportTraceServiceRequest.FromString(body)
    (span,) = [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    service = {a.key: a.value.string_value for a in request.resource_spans[0].resource.attributes}["service.name"]
    assert path == "/v1/traces" and span.name == "over-otlp" and service == tracing.SERVICE
    assert not (settings.home / "traces").exists()


def test_status_and_help_do_not_import_opentelemetry() -> None:
    code = ("import sys; from finks.cli import app; from typer.testing import CliRunner; "
            "CliRunner().invoke(app, ['status']); CliRunner().invoke(app, ['--help']); "
            "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "NO_COLOR": "1"})
    assert out.stdout.strip() == "[]", out.stderr


# ---- the S20 check's verdict on a trace file ---------------------------------

RUN_ID = "run-1"


def _pipeline(tracer: Any, *, skip: str | None = None, detach: str | None = None) -> None:
    """What a pipeline run's trace looks like: the root, its steps, a task under each."""
    from opentelemetry import context as otel_context

    with tracer.start_as_current_span("daily-pipeline", attributes={"finks.run_id": RUN_ID}):
        for step in STEPS:
            if step == skip:
                continue
            # A detached step starts a trace of its own, as a lost context would.
            ctx = otel_context.Context() if step == detach else None
            with tracer.start_as_current_span(step, context=ctx):
                with tracer.start_as_current_span(f"{step}-task"):
                    pass


def _trace_file(tmp_path: Path, records: list[dict[str, Any]]) -> Path:
    path = tmp_path / "traces" / "2024-03-14.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path.parent


def test_check_passes_on_one_trace_holding_every_step(tmp_path: Path) -> None:
    spans = tracing.read_spans(_trace_file(tmp_path, _records(_pipeline)))
    evidence = run_trace(spans, RUN_ID)
    assert set(evidence.figures["seconds"]) == {"daily-pipeline", *STEPS}
    assert evidence.figures["spans"] == 1 + 2 * len(STEPS)


@pytest.mark.check_fails(CHECK)
def test_check_fails_when_a_step_is_missing(tmp_path: Path) -> None:
    spans = tracing.read_spans(_trace_file(tmp_path, _records(lambda t: _pipeline(t, skip="dbt"))))
    with pytest.raises(CheckFailed, match="dbt: no span in trace"):
        run_trace(spans, RUN_ID)


@pytest.mark.check_fails(CHECK)
def test_check_fails_when_a_step_has_another_trace_id(tmp_path: Path) -> None:
    spans = tracing.read_spans(_trace_file(tmp_path, _records(lambda t: _pipeline(t, detach="publish"))))
    with pytest.raises(CheckFailed, match=r"publish: no span in trace \w+ \(found in trace \w+\)"):
        run_trace(spans, RUN_ID)


@pytest.mark.check_fails(CHECK)
def test_check_fails_when_a_step_is_not_under_the_root(tmp_path: Path) -> None:
    records = _records(_pipeline)
    transformation = next(r for r in records if r["name"] == "transformation")
    transformation["parent"] = "0" * 16  # same trace, but hangs off a span that is not the run's
    with pytest.raises(CheckFailed, match="transformation: span .* is not under the root"):
        run_trace(tracing.read_spans(_trace_file(tmp_path, records)), RUN_ID)


@pytest.mark.check_fails(CHECK)
def test_check_fails_without_the_runs_root(tmp_path: Path) -> None:
    spans = tracing.read_spans(_trace_file(tmp_path, _records(_pipeline)))
    with pytest.raises(CheckFailed, match="0 root span"):
        run_trace(spans, "another-run")


# ---- against the real Prefect server ------------------------------------------

@pytest.mark.services
def test_nested_flows_and_threaded_tasks_share_one_trace_per_run(local_stack: Settings) -> None:
    from prefect import flow, task

    @task
    def work(i: int) -> int:
        tracing.annotate(item=i)
        return i

    @flow
    def inner(n: int) -> list[int]:
        tracing.step(local_stack, "inner")
        futures = [work.submit(i) for i in range(n)]  # threads of the ThreadPoolTaskRunner
        return [f.result() for f in futures]

    @flow
    def outer() -> list[int]:
        tracing.step(local_stack, "outer")
        return inner(3)

    exporter = InMemorySpanExporter()
    with tracing.exporting(exporter):
        outer()
        outer()
    spans = [tracing.span_record(s) for s in exporter.get_finished_spans()]
    roots = [s for s in spans if s["name"] == "outer"]
    assert len(roots) == 2 and all(r["parent"] is None for r in roots)
    assert len({r["trace_id"] for r in roots}) == 2
    for root in roots:
        mine = [s for s in spans if s["trace_id"] == root["trace_id"]]
        (flow_span,) = [s for s in mine if s["name"] == "inner"]
        tasks = [s for s in mine if "finks.item" in s["attributes"]]
        assert flow_span["parent"] == root["span_id"]
        assert sorted(t["attributes"]["finks.item"] for t in tasks) == [0, 1, 2]
        assert {t["parent"] for t in tasks} == {flow_span["span_id"]}


@pytest.mark.services
@pytest.mark.slow
def test_the_daily_pipeline_is_one_trace(local_stack: Settings, fmp_sim: Any, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMP_BASE_URL", fmp_sim.base_url)  # the check's FMP source: our simulator
    ctx = CheckContext(env="local", root=local_stack.root, state_dir=local_stack.home, work_dir=tmp_path)
    evidence = pipeline_traced(ctx)
    assert set(evidence.figures["seconds"]) == {"daily-pipeline", *STEPS}
    spans = [s for s in tracing.read_spans(tmp_path / "traces") if s["trace_id"] == evidence.figures["trace_id"]]
    by_name: dict[str, list[dict[str, Any]]] = {}
    for s in spans:
        by_name.setdefault(s["name"], []).append(s)
    (root,) = by_name["daily-pipeline"]
    assert root["attributes"]["finks.date"] == "2024-03-14" and root["attributes"]["finks.env"] == "local"
    (ingestion,) = by_name["ingestion"]
    ingests = [s for s in spans if s["attributes"].get("prefect.run.name", "").startswith("ingest-dataset")]
    assert sorted(s["attributes"]["finks.dataset"] for s in ingests) == ["eod", "profiles", "quotes"]
    assert {s["parent"] for s in ingests} == {ingestion["span_id"]}
    assert all(s["attributes"]["finks.records"] > 0 for s in ingests)
    (transformation,) = by_name["transformation"]
    assert transformation["attributes"]["finks.rows_written"] > 0
    (publish,) = by_name["publish"]
    assert publish["parent"] == by_name["dbt"][0]["span_id"] and publish["attributes"]["finks.gold_run_id"]
