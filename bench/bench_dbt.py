"""Benchmark: `dbt build` of the whole project (write-audit-publish included).

    python bench/bench_dbt.py [--symbols 500] [--days 60] [--dir /tmp/finks-bench-dbt]

Generates clean bronze for the holdings' symbols plus synthetic ones over
``--days`` trading days, transforms it to silver with DuckDB (timed), then
times run_dbt(build): seeds, 7 models, every data and unit test, source
freshness, export of the marts. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--end", default="2024-03-15")
    parser.add_argument("--dir", default="/tmp/finks-bench-dbt")
    args = parser.parse_args()

    import psutil

    from core.settings import load_settings
    from jobs.bronze_to_silver import run
    from jobs.dbt import run_dbt
    from jobs.engines import DuckDBEngine
    from jobs.testdata import generate_bronze, synthetic_symbols, trading_days

    root = Path(args.dir)
    settings = load_settings(env="local", state_dir=root / "state", lake_uri=str(root / "lake"))
    days = trading_days(args.end, args.days)
    t0 = time.monotonic()
    generate_bronze(settings, synthetic_symbols(args.symbols), days, "none")
    t1 = time.monotonic()
    engine = DuckDBEngine()
    rows = sum(run(settings, d, engine_instance=engine).rows_written for d in days)
    engine.close()
    t2 = time.monotonic()
    result = run_dbt(settings, quiet=True)
    t3 = time.monotonic()
    slowest = sorted(result.nodes, key=lambda n: -n.seconds)[:5]
    print(json.dumps({
        "symbols": args.symbols, "days": args.days, "silver_rows": rows,
        "generate_seconds": round(t1 - t0, 1), "transform_seconds": round(t2 - t1, 1),
        "transform_per_day_seconds": round((t2 - t1) / len(days), 3),
        "dbt_build_seconds": round(t3 - t2, 1), "dbt_ok": result.ok, "published": result.published,
        "nodes": len(result.nodes), "tests": len(result.tests),
        "slowest_nodes": [(n.name, n.seconds) for n in slowest],
        "peak_rss_mb": round(psutil.Process().memory_info().rss / 2**20),
    }, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
