"""Live probe for S20: the latest pipeline run's trace, as X-Ray holds it.

The flow-run task's ADOT collector sidecar (infra/components/ecs.py) forwards the spans of
``flows.tracing`` to X-Ray. A run is a trace whose root (sub)segment is the ``daily-pipeline``
step (its name, or the ``finks.step`` the platform records, in the ``default`` metadata where
the collector puts span attributes) for this environment (``finks.env``). The latest run in
the last :data:`WINDOW_HOURS` hours must hold the ingestion, transformation, dbt and publish
steps, each under the root and with a duration. X-Ray may return a subsegment on its own or
inside its segment's document: both are read.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

from finks.checks import CheckContext, Evidence
from validation.aws.live import Live

WINDOW_HOURS = 36  # a daily pipeline: its latest run is within a day and a half
BATCH = 5  # BatchGetTraces takes five trace ids a call


def _meta(doc: dict[str, Any]) -> dict[str, Any]:
    return (doc.get("metadata") or {}).get("default") or {}


def _step(doc: dict[str, Any]) -> str:
    return str(_meta(doc).get("finks.step") or doc.get("name") or "")


def _flatten(doc: dict[str, Any], parent: str | None = None) -> Iterator[dict[str, Any]]:
    """A document and the subsegments nested in it, each with its parent's id."""
    item = {**doc, "parent_id": doc.get("parent_id") or parent}
    yield item
    for sub in doc.get("subsegments") or []:
        yield from _flatten(sub, doc.get("id"))


def _traces(live: Live, service: str) -> dict[str, list[dict[str, Any]]]:
    """Trace id -> every (sub)segment, for the traces X-Ray summarises in the window."""
    xray = live.client("xray")
    end = dt.datetime.now(dt.UTC)
    query: dict[str, Any] = {"StartTime": end - dt.timedelta(hours=WINDOW_HOURS), "EndTime": end}
    if not live.emulated:  # the emulator answers a filter expression with an error; it is read whole
        query["FilterExpression"] = f'service("{service}")'
    ids: list[str] = []
    for page in xray.get_paginator("get_trace_summaries").paginate(**query):
        ids += [s["Id"] for s in page.get("TraceSummaries", []) if s.get("Id")]
    traces: dict[str, list[dict[str, Any]]] = {}
    for start in range(0, len(ids), BATCH):
        for trace in xray.batch_get_traces(TraceIds=ids[start:start + BATCH]).get("Traces", []):
            docs = traces.setdefault(trace["Id"], [])
            for segment in trace.get("Segments", []):
                docs += list(_flatten(json.loads(segment["Document"])))
    return traces


def _under(doc: dict[str, Any], root: str, by_id: dict[str, dict[str, Any]]) -> bool:
    seen: set[str] = set()
    current: dict[str, Any] | None = doc
    while current is not None and current.get("parent_id") and current["id"] not in seen:
        seen.add(current["id"])
        if current["parent_id"] == root:
            return True
        current = by_id.get(current["parent_id"])
    return False


def _seconds(doc: dict[str, Any]) -> float:
    return round(float(doc.get("end_time") or 0) - float(doc.get("start_time") or 0), 3)


def pipeline_trace(ctx: CheckContext) -> Evidence:
    """X-Ray holds one trace for the latest pipeline run with its ingestion, transformation, dbt and
    publish segments under the run's root, each with a duration."""
    from flows.tracing import SERVICE
    from validation.tracing import ROOT, STEPS

    live = Live.of(ctx)
    traces = _traces(live, SERVICE)
    runs = []
    for trace_id, docs in traces.items():
        for doc in docs:
            if not doc.get("parent_id") and _step(doc) == ROOT and _meta(doc).get("finks.env", ctx.env) == ctx.env:
                runs.append((float(doc.get("start_time") or 0), trace_id, doc))
    figures: dict[str, Any] = {"window_hours": WINDOW_HOURS, "traces_read": len(traces), "runs": len(runs)}
    remedy = (f"run the pipeline on {ctx.env} (`finks pipeline run --env {ctx.env}`) and check the flow-run task's "
              "aws-otel-collector sidecar (its log stream in the worker's log group) and the task role's X-Ray access")
    if not runs:
        raise live.fail([f"no '{ROOT}' trace of {ctx.env} in X-Ray in the last {WINDOW_HOURS} h "
                         f"({len(traces)} traces read)"], figures, remedy)
    started, trace_id, root = max(runs, key=lambda run: run[0])
    docs = traces[trace_id]
    by_id = {d["id"]: d for d in docs if d.get("id")}
    run_id = _meta(root).get("finks.run_id")
    when = dt.datetime.fromtimestamp(started, dt.UTC).isoformat(timespec="seconds")
    figures.update(trace_id=trace_id, run_id=run_id, started=when, segments=len(docs), seconds={ROOT: _seconds(root)})
    problems = []
    for step in STEPS:
        named = [d for d in docs if _step(d) == step]
        mine = [d for d in named if _under(d, root["id"], by_id)]
        if not mine:
            problems.append(f"trace {trace_id} of run {run_id} ({when}) has no {step} segment"
                            + (" under the run's root" if named else ""))
            continue
        figures["seconds"][step] = _seconds(mine[0])
        if not figures["seconds"][step] > 0:
            problems.append(f"the {step} segment of trace {trace_id} has no duration")
    if problems:
        raise live.fail(problems, figures, remedy)
    return live.evidence(f"X-Ray trace {trace_id} of run {run_id} ({when}): " + ", ".join(
        f"{step} {figures['seconds'][step]:.2f}s" for step in STEPS) + f" under {ROOT} ({figures['seconds'][ROOT]:.2f}s)",
        figures, ["the emulator keeps segments as they were put: no service map, no filter expressions"])
