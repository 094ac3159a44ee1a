"""One daily pipeline in this (fresh) process, broken down by step; bench_pipeline.py's child.

    python bench/pipeline_run.py --lake DIR --date 2024-03-15 --universe FILE --out FILE [--plain] [--root DIR]

The Prefect server, moto and FINKS_STATE_DIR come from the environment the
parent set. The process is set up as `make run` sets up S16's
`validation.pipeline:run_daily_pipeline`: the third-party libraries that
finks.zygote preloads for every check process (Prefect, dbt, DuckDB, ...) are
imported before the clock starts (timed apart: `preload_s`). The FMP
simulator runs in this process, as in S16 (validation.support.fmp), or, with
``--fmp-url``, elsewhere, as FMP does. ``--root`` runs the
platform code of another checkout (a before/after in one session).

    flows   daily_pipeline(...) on the Prefect server: the path S16 (`make run`) takes
    plain   the same steps as plain functions (run_ingest x3 in threads, bronze_to_silver.run,
            run_dbt): the baseline that shows what Prefect and the flows add

The breakdown comes from what the platform itself reports: the steps' seconds
of the pipeline's result, the ingestions' elapsed_s, the TransformResult's
seconds per dataset, the DbtResult's wall clock per dbt command and
run_results.json (elapsed, per-node timing), the files the publish writes, and
the run's OpenTelemetry spans (flows.tracing). Writes one JSON document to --out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import sys
import time
from pathlib import Path
from typing import Any

STARTED = time.perf_counter()
ROOT = Path(__file__).resolve().parent.parent
if "--root" in sys.argv:       # before anything of ours is imported
    ROOT = Path(sys.argv[sys.argv.index("--root") + 1]).resolve()
sys.path.insert(0, str(ROOT))

_REPORT = re.compile(r"Resource report: (\{.*\})")   # dbt's debug log, one line per command


def dbt_breakdown(dbt: dict[str, Any], warehouse: Path) -> dict[str, Any]:
    """Wall seconds of each dbt command of the run (the DbtResult's ``seconds``), the build's
    run_results.json, and the publish (freshness written → warehouse promoted)."""
    run_dir = Path(dbt["run_dir"])
    out: dict[str, Any] = {f"{name.split()[-1]}_s": value for name, value in dbt.get("seconds", {}).items()}
    log = run_dir / "logs" / "dbt.log"
    if "seconds" not in dbt and log.exists():     # a checkout from before runs timed their commands
        for m in _REPORT.finditer(log.read_text(errors="replace")):
            report = json.loads(m.group(1))
            key = f"{report['command_name']}_s"
            out[key] = round(out.get(key, 0.0) + float(report["command_wall_clock_time"]), 3)
    results = run_dir / "target" / "run_results.json"
    if results.exists():
        data = json.loads(results.read_text())
        nodes = data.get("results", [])
        out["build_elapsed_s"] = round(float(data.get("elapsed_time", 0.0)), 3)
        out["nodes"] = len(nodes)
        out["node_seconds_sum"] = round(sum(float(n.get("execution_time") or 0) for n in nodes), 3)
        out["slowest_nodes"] = [(n["unique_id"].split(".")[-1], round(float(n.get("execution_time") or 0), 2))
                                for n in sorted(nodes, key=lambda n: -float(n.get("execution_time") or 0))[:3]]
        out["threads"] = (data.get("args") or {}).get("threads")
    freshness = run_dir / "target" / "sources.json"
    if freshness.exists() and warehouse.exists():
        out["publish_s"] = round(warehouse.stat().st_mtime - freshness.stat().st_mtime, 3)
    return out


def span_seconds(settings: Any, trace_of: str | None) -> dict[str, float]:
    """Seconds of each span of the pipeline's trace, by name (task runs summed by task;
    Prefect names them `<task>-<3 hex>`)."""
    from flows import tracing

    tracing.flush()
    spans = tracing.read_spans(tracing.trace_dir(settings))
    root = next((s for s in spans if trace_of and s["attributes"].get("prefect.run.id") == trace_of), None)
    if root is None:
        return {}
    out: dict[str, float] = {}
    for s in spans:
        if s["trace_id"] == root["trace_id"]:
            name = re.sub(r"-[0-9a-f]{3}$", "", s["name"])
            out[name] = round(max(out.get(name, 0.0), float(s["duration_s"])), 3)
    return out


def flows_run(settings: Any, date: str) -> tuple[dict[str, Any], dict[str, float], str | None]:
    from flows.common import RetryPolicy
    from flows.master_flow import daily_pipeline

    result = daily_pipeline(date=date, settings=settings, retry=RetryPolicy(delay_s=1))
    steps = {s["step"]: float(s["seconds"]) for s in result["steps"]}
    return result["results"], steps, result.get("run_id")


def plain_run(settings: Any, date: str) -> tuple[dict[str, Any], dict[str, float], str | None]:
    """The steps the flows run, called directly (same order, ingestion's datasets concurrent)."""
    from concurrent.futures import ThreadPoolExecutor

    from connectors.fmp import run_ingest
    from flows.common import DEFAULT_DATASETS, as_dict
    from jobs import bronze_to_silver
    from jobs.dbt import run_dbt

    steps: dict[str, float] = {}
    t0 = time.perf_counter()
    with ThreadPoolExecutor(len(DEFAULT_DATASETS)) as pool:
        futures = {ds: pool.submit(run_ingest, settings, date, ds) for ds in DEFAULT_DATASETS}
        ingestion = {ds: as_dict(f.result()) for ds, f in futures.items()}
    steps["ingestion"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    transform = as_dict(bronze_to_silver.run(settings, date))
    steps["transformation"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    dbt = run_dbt(settings, command="build", vars={"run_date": date})
    steps["dbt"] = time.perf_counter() - t0
    if not dbt.ok or not all(r["ok"] for r in ingestion.values()):
        raise SystemExit(f"plain pipeline failed: dbt ok={dbt.ok} {dbt.error}")
    return {"ingestion": ingestion, "transformation": transform, "dbt": as_dict(dbt)}, steps, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", required=True)
    parser.add_argument("--date", required=True)
    parser.add_argument("--universe", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--calls-per-minute", type=int, required=True)
    parser.add_argument("--plain", action="store_true")
    parser.add_argument("--root", help="checkout whose platform code runs (default: this one)")
    parser.add_argument("--no-preload", action="store_true", help="import Prefect, dbt, ... on the clock")
    parser.add_argument("--fmp-url", help="FMP (the simulator) served elsewhere; default: in this process")
    args = parser.parse_args()

    t0 = time.perf_counter()
    if not args.no_preload:
        import importlib

        from finks.zygote import PRELOAD

        for name in PRELOAD:
            importlib.import_module(name)
    preload_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    from connectors.fmp.simulator import SimulatorServer
    from core.settings import load_settings
    from flows import master_flow  # noqa: F401 - what a pipeline process imports (prefect, flows)
    from jobs.dbt import dbt_home

    imports_s = time.perf_counter() - t0
    settings = load_settings(env="local", fmp_calls_per_minute=args.calls_per_minute,
                             universe=args.universe, lake_uri=args.lake)
    with contextlib.nullcontext(None) if args.fmp_url else SimulatorServer(port=0) as sim:
        run = settings.model_copy(update={"fmp_base_url": sim.base_url if sim is not None else args.fmp_url})
        t0, cpu0 = time.perf_counter(), os.times()
        results, steps, run_id = (plain_run if args.plain else flows_run)(run, args.date)
        total, cpu1 = time.perf_counter() - t0, os.times()
    dbt = results["dbt"]
    ingestion = results["ingestion"]
    report = {
        "path": "plain" if args.plain else "flows",
        "total_s": round(total, 3),
        "cpu_s": round(cpu1.user + cpu1.system - cpu0.user - cpu0.system, 3),
        "process_s": round(time.perf_counter() - STARTED, 3),
        "preload_s": round(preload_s, 3),
        "imports_s": round(imports_s, 3),
        "steps_s": {k: round(v, 3) for k, v in steps.items()},
        "ingestion": {ds: {"elapsed_s": r.get("elapsed_s"), "calls": r.get("calls"),
                           "calls_per_minute": r.get("calls_per_minute"), "records": r.get("records")}
                      for ds, r in ingestion.items()},
        "bronze_to_silver_s": round(sum(d.get("seconds", 0.0) for d in results["transformation"]["datasets"]), 3),
        "silver_rows": results["transformation"]["rows_written"],
        "dbt": dbt_breakdown(dbt, dbt_home(settings) / "warehouse.duckdb")
               | {"published": dbt.get("published"), "tests": sum(1 for n in dbt["nodes"]
                                                                   if n["resource_type"] in ("test", "unit_test"))},
        "spans_s": span_seconds(settings, run_id),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    Path(args.out).write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
