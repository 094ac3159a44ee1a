"""Check for S20: distributed tracing, one trace per pipeline run.

The check runs the daily pipeline for a date on a scratch lake (the stack's
Prefect server, FMP or the simulator) with the file exporter writing under
its work dir, then reads the spans back: the run's trace must hold every
step with its duration, all with the run's trace id and under its root.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from typing import Any

from finks.checks import CheckContext, CheckFailed, Evidence
from validation import support

TRACE_DATE = "2024-03-14"
ROOT = "daily-pipeline"
STEPS = ("ingestion", "transformation", "dbt", "publish")


def pipeline_traced(ctx: CheckContext) -> Evidence:
    """One pipeline run, one trace: ingestion, transformation, dbt and publish under its root."""
    from flows import tracing
    from flows.master_flow import daily_pipeline

    settings = support.stack(ctx.settings)
    traces = ctx.work_dir / "traces"
    shutil.rmtree(traces, ignore_errors=True)
    lake = support.scratch_lake(settings, ctx.work_dir / "tracing" / "lake")
    with support.fmp(lake) as source, tracing.exporting(tracing.JsonLinesExporter(traces)):
        result = daily_pipeline(date=TRACE_DATE, settings=source, retry=support.SCRATCH_RETRY)
    return run_trace(tracing.read_spans(traces), result["run_id"], where=str(traces))


def run_trace(spans: Sequence[dict[str, Any]], run_id: str, *, where: str = "the trace file") -> Evidence:
    """The verdict on one run's spans (records as `flows.tracing.span_record` writes them)."""
    roots = [s for s in spans if s["name"] == ROOT and s["attributes"].get("finks.run_id") == run_id]
    if len(roots) != 1:
        raise CheckFailed(f"{len(roots)} root span(s) '{ROOT}' for run {run_id} in {where}; expected 1",
                          figures={"spans": len(spans), "names": sorted({s["name"] for s in spans})})
    root = roots[0]
    if root["parent"] is not None:
        raise CheckFailed(f"the root span of run {run_id} has a parent ({root['parent']}): the run is not its own trace")
    trace = [s for s in spans if s["trace_id"] == root["trace_id"]]
    by_id = {s["span_id"]: s for s in trace}
    figures: dict[str, Any] = {"trace_id": root["trace_id"], "spans": len(trace),
                               "seconds": {ROOT: root["duration_s"]}}
    problems = []
    for step in STEPS:
        named = [s for s in spans if s["name"] == step and _near(s, root)]
        mine = [s for s in named if s["trace_id"] == root["trace_id"]]
        if not mine:
            problems.append(f"{step}: no span in trace {root['trace_id']}"
                            + (f" (found in trace {named[0]['trace_id']})" if named else ""))
            continue
        s = mine[0]
        if not _descends(s, root["span_id"], by_id):
            problems.append(f"{step}: span {s['span_id']} is not under the root {root['span_id']}")
        if not s.get("duration_s", 0) > 0:
            problems.append(f"{step}: no duration")
        figures["seconds"][step] = s.get("duration_s")
    orphans = [s["name"] for s in trace if s is not root and not _descends(s, root["span_id"], by_id)]
    if orphans:
        problems.append(f"spans outside the root's tree: {sorted(set(orphans))}")
    if problems:
        raise CheckFailed(f"trace of run {run_id} ({where}): " + "; ".join(problems), figures=figures)
    return Evidence(f"run {run_id}: one trace {root['trace_id']} of {len(trace)} spans holds "
                    + ", ".join(f"{step} {figures['seconds'][step]:.1f}s" for step in STEPS)
                    + f" under {ROOT} ({root['duration_s']:.1f}s)", figures=figures)


def _near(span: dict[str, Any], root: dict[str, Any]) -> bool:
    # A step of another run in the same file is not this run's step in the wrong trace.
    return bool(root["start"] <= span["start"] <= root["end"])


def _descends(span: dict[str, Any], root_id: str, by_id: dict[str, dict[str, Any]]) -> bool:
    seen = set()
    parent = span["parent"]
    while parent is not None and parent not in seen:
        if parent == root_id:
            return True
        seen.add(parent)
        parent = by_id[parent]["parent"] if parent in by_id else None
    return False
