"""Benchmark: `dbt build` of the whole project (write-audit-publish included).

    python bench/bench_dbt.py [--symbols 500] [--days 60] [--rounds 3] [--dir /tmp/finks-bench-dbt]

Generates clean bronze for the holdings' symbols plus synthetic ones over
``--days`` trading days and transforms it to silver with DuckDB (timed; kept
for the next run in the same ``--dir``), then
times run_dbt(build) (seeds, 7 models, every data and unit test, source
freshness, export of the marts) three ways, each round:

    cold        a fresh process with no parse kept: dbt parses the project in full
    same        again in that process: the manifest held in memory, no parse at all
    new         a fresh process after a previous one: dbt's partial parsing reuses its parse

Every build is a child process's second or first build as named, so the
three see the same machine. Prints one JSON document with the medians.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def _settings(root: Path) -> Any:
    from core.settings import load_settings

    return load_settings(env="local", state_dir=root / "state", lake_uri=str(root / "lake"))


def prepare(root: Path, symbols: int, days: int, end: str) -> dict[str, Any]:
    from jobs.bronze_to_silver import run
    from jobs.engines import DuckDBEngine
    from jobs.testdata import generate_bronze, synthetic_symbols, trading_days

    settings = _settings(root)
    dates = trading_days(end, days)
    t0 = time.monotonic()
    generate_bronze(settings, synthetic_symbols(symbols), dates, "none")
    t1 = time.monotonic()
    engine = DuckDBEngine()
    rows = sum(run(settings, d, engine_instance=engine).rows_written for d in dates)
    engine.close()
    t2 = time.monotonic()
    return {"silver_rows": rows, "generate_seconds": round(t1 - t0, 1),
            "transform_seconds": round(t2 - t1, 1),
            "transform_per_day_seconds": round((t2 - t1) / len(dates), 3)}


def builds(root: Path, count: int) -> None:
    """``count`` builds in this process: each one's seconds, as JSON on stdout."""
    import psutil

    from jobs.dbt import run_dbt

    settings = _settings(root)
    out = []
    for _ in range(count):
        started = time.monotonic()
        result = run_dbt(settings, quiet=True)
        out.append({"seconds": round(time.monotonic() - started, 2), "ok": result.ok,
                    "published": result.published, "nodes": len(result.nodes), "tests": len(result.tests),
                    "slowest_nodes": [(n.name, n.seconds) for n in sorted(result.nodes, key=lambda n: -n.seconds)[:5]]})
    print(json.dumps({"builds": out, "peak_rss_mb": round(psutil.Process().memory_info().rss / 2**20)}))


def _child(root: Path, count: int) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, "--builds", str(count), "--dir", str(root)],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--end", default="2024-03-15")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default="/tmp/finks-bench-dbt")
    parser.add_argument("--builds", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    root = Path(args.dir)
    if args.builds:
        builds(root, args.builds)
        return
    report: dict[str, Any] = {"symbols": args.symbols, "days": args.days, "rounds": args.rounds}
    if (root / "lake").exists():
        report["silver"] = f"kept from a previous run in {root}"
    else:
        report |= prepare(root, args.symbols, args.days, args.end)
    times: dict[str, list[float]] = {"cold": [], "same": [], "new": []}
    last: dict[str, Any] = {}
    for _ in range(args.rounds):
        shutil.rmtree(root / "state" / "dbt" / "parse", ignore_errors=True)
        first = _child(root, 2)                   # cold, then same process
        times["cold"].append(first["builds"][0]["seconds"])
        times["same"].append(first["builds"][1]["seconds"])
        last = _child(root, 1)                    # new process, parse kept from the one before
        times["new"].append(last["builds"][0]["seconds"])
    build = last["builds"][0]
    report |= {f"dbt_build_{k}_seconds": round(statistics.median(v), 2) for k, v in times.items()}
    report |= {"dbt_build_seconds_each": times, "dbt_ok": build["ok"], "published": build["published"],
               "nodes": build["nodes"], "tests": build["tests"], "slowest_nodes": build["slowest_nodes"],
               "peak_rss_mb": last["peak_rss_mb"]}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
