"""Benchmark: the daily pipeline end to end, and a backfill parallel vs sequential.

    .venv/bin/python bench/bench_pipeline.py                      # 500 symbols, 30 days
    .venv/bin/python bench/bench_pipeline.py --symbols 100 --days 10 --skip-daily

Starts a throw-away stack (Prefect server on SQLite + moto, free ports, temp
state) and an unthrottled FMP simulator, so the figures measure our pipeline,
not FMP's rate limit. Prints one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _universe_file(state: Path, count: int) -> str:
    from connectors.fmp.universe import SIM_UNIVERSE_SIZE, synthetic_symbols

    path = state / f"universe-{count}.txt"
    path.write_text("\n".join(synthetic_symbols(SIM_UNIVERSE_SIZE)[:count]) + "\n")
    return str(path)


def _stage(name: str, settings: Any, lake: Path, fn: Any) -> dict[str, Any]:
    """Time ``fn(settings)`` on its own lake."""
    import psutil

    proc = psutil.Process()
    cpu0, t0 = proc.cpu_times(), time.monotonic()
    result = fn(settings.model_copy(update={"lake_uri": str(lake)}))
    cpu1 = proc.cpu_times()
    out = {"wall_s": round(time.monotonic() - t0, 1),
           "cpu_s": round(cpu1.user + cpu1.system - cpu0.user - cpu0.system, 1),
           "rss_mb": round(proc.memory_info().rss / 2**20)}
    print(f"[bench] {name}: {out}", file=sys.stderr, flush=True)
    return out | {"result": result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--date", default="2024-03-15")
    parser.add_argument("--skip-daily", action="store_true")
    parser.add_argument("--skip-sequential", action="store_true")
    parser.add_argument("--calls-per-minute", type=int, default=60000,
                        help="Client-side FMP limit (default: effectively none; 300 = FMP starter plan).")
    parser.add_argument("--bulk", action=argparse.BooleanOptionalAction, default=None,
                        help="Force the bulk EOD endpoint on/off (default: bulk for ranges > 5 days).")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="Simulator latency per request.")
    args = parser.parse_args()
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally: stop the throw-away stack

    state = Path(tempfile.mkdtemp(prefix="finks-bench-"))
    from core.settings import load_settings
    from finks.devstack import down, up
    from finks.devstack.procs import free_port

    env = {"FINKS_STATE_DIR": str(state), "FINKS_PREFECT_PORT": str(free_port()), "FINKS_MOTO_PORT": str(free_port()),
           "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           # SQLite even when a local PostgreSQL answers: the figures should not depend on it.
           "FINKS_PREFECT_DATABASE": "sqlite"}
    os.environ.update(env)
    os.environ.pop("FINKS_DATABASE_URL", None)
    settings = load_settings(env="local", fmp_calls_per_minute=args.calls_per_minute,
                             universe=_universe_file(state, args.symbols))
    os.environ["PREFECT_API_URL"] = settings.prefect_api
    os.environ["PREFECT_HOME"] = str(settings.prefect_home)
    from connectors.fmp.simulator import SimulatorServer

    report: dict[str, Any] = {"symbols": args.symbols, "days": args.days, "cpus": os.cpu_count(),
                              "fmp_calls_per_minute": args.calls_per_minute, "bulk": args.bulk,
                              "latency_ms": args.latency_ms,
                              "load_before": os.getloadavg()}
    up(settings)
    try:
        from connectors.fmp.simulator import Faults

        with SimulatorServer(port=0, faults=Faults(latency_ms=args.latency_ms)) as sim:
            from flows.backfill import backfill_flow
            from flows.calendar import parse_date, trading_days
            from flows.common import RetryPolicy
            from flows.master_flow import daily_pipeline

            bench = settings.model_copy(update={"fmp_base_url": sim.base_url})
            retry = RetryPolicy(delay_s=1)
            if not args.skip_daily:
                daily = _stage("daily pipeline", bench, state / "lake-daily",
                               lambda s: daily_pipeline(date=args.date, settings=s, retry=retry))
                report["daily"] = {k: v for k, v in daily.items() if k != "result"} | {
                    "steps": {s["step"]: s["seconds"] for s in daily["result"]["steps"]}}
            end = parse_date(args.date)
            start = end
            while len(trading_days(start, end)) < args.days:
                start = start.fromordinal(start.toordinal() - 1)

            def run(settings: Any, concurrency: int) -> dict[str, Any]:
                r = backfill_flow(start=start.isoformat(), end=end.isoformat(), concurrency=concurrency,
                                  bulk=args.bulk, settings=settings, retry=retry)
                return {k: r[k] for k in ("dates", "ran", "failed", "gold", "bulk", "seconds")}

            parallel = _stage(f"backfill x{args.concurrency}", bench, state / "lake-par",
                              lambda s: run(s, args.concurrency))
            report["backfill_parallel"] = parallel
            if not args.skip_sequential:
                sequential = _stage("backfill x1", bench, state / "lake-seq", lambda s: run(s, 1))
                report["backfill_sequential"] = sequential
                report["speedup"] = round(sequential["wall_s"] / max(parallel["wall_s"], 0.1), 2)
    finally:
        down(settings)
    report["load_after"] = os.getloadavg()
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
