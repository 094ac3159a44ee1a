"""Benchmark: bronze→silver on ~2 million EOD rows, DuckDB vs Spark local.

    python bench/bench_transform.py [--rows 2000000] [--engines duckdb,spark] [--dir /tmp/finks-bench]

Writes one trading date of bronze in the connector's layout (gzipped JSON
arrays of 100k records each, as the bulk EOD endpoint would give), with 1%
restated rows in a second ingestion and 0.5% exact duplicates, then runs each
engine in its own process and samples the process tree's resident memory.
Prints one JSON document with wall time, peak RSS and the Spark/DuckDB ratio.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

DATE = "2024-03-15"
PER_FILE = 100_000


def write_bronze(root: Path, rows: int) -> None:
    import duckdb

    base = root / "lake" / "bronze" / "fmp" / "eod" / f"date={DATE}"
    first, second = base / "ingested_at=20240315T213000Z", base / "ingested_at=20240316T013000Z"
    first.mkdir(parents=True, exist_ok=True)
    second.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET threads = 2")
    record = f"""
        SELECT printf('S%07d', i) AS symbol, '{DATE}' AS date,
               round(p * 0.995, 2) AS open, round(p * 1.01, 2) AS high, round(p * 0.99, 2) AS low,
               round(p, 2) AS close, CAST(1000000 + (i * 7919) % 90000000 AS BIGINT) AS volume,
               round(p * 0.005, 4) AS change, 0.50251 AS changePercent, round(p * 1.001, 4) AS vwap
        FROM (SELECT i, 10 + (i * 37 % 5000) / 10.0 AS p FROM range(?, ?) t(i))"""
    files = []
    for n, start in enumerate(range(0, rows, PER_FILE)):
        stop = min(rows, start + PER_FILE)
        # 0.5% exact duplicates: each file repeats the first 500 rows of its own slice
        query = f"SELECT * FROM ({record}) UNION ALL SELECT * FROM ({record})"
        path = first / f"part-{n}.json.gz"
        con.execute(f"COPY ({query}) TO '{path}' (FORMAT json, ARRAY true, COMPRESSION gzip)",
                    [start, stop, start, start + min(500, stop - start)])
        files.append({"path": path.name, "records": stop - start})
    (first / "_manifest.json").write_text(json.dumps({
        "dataset": "eod", "date": DATE, "ingested_at": first.name.split("=")[1], "schema_version": 1,
        "symbols": {}, "files": files, "plan": "bench", "calls": len(files), "calls_per_minute": 0}))
    restated = f"SELECT * REPLACE (volume + 1 AS volume) FROM ({record})"
    con.execute(f"COPY ({restated}) TO '{second / 'part-0.json.gz'}' (FORMAT json, ARRAY true, COMPRESSION gzip)",
                [0, rows // 100])
    (second / "_manifest.json").write_text(json.dumps({
        "dataset": "eod", "date": DATE, "ingested_at": second.name.split("=")[1], "schema_version": 1,
        "symbols": {}, "files": [{"path": "part-0.json.gz", "records": rows // 100}], "plan": "bench",
        "calls": 1, "calls_per_minute": 0}))


def worker(root: Path, engine: str) -> None:
    """One engine, one process: its result as JSON on stdout."""
    from core.settings import load_settings
    from jobs.bronze_to_silver import run

    settings = load_settings(env="local", state_dir=root / f"state-{engine}",
                             lake_uri=str(root / f"lake-{engine}"))
    started = time.monotonic()
    result = run(settings, DATE, ["eod_prices"], engine=engine)
    d = result.get("eod_prices")
    print(json.dumps({"engine": engine, "seconds_in_job": round(time.monotonic() - started, 2),
                      "rows_read": d.rows_read, "rows_written": d.rows_written,
                      "deduplicated": d.deduplicated, "quarantined": d.quarantined}))


def measure(root: Path, engine: str) -> dict:
    import psutil

    lake = root / f"lake-{engine}"
    if not (lake / "bronze").exists():
        lake.mkdir(parents=True, exist_ok=True)
        (lake / "bronze").symlink_to(root / "lake" / "bronze")
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, __file__, "--worker", engine, "--dir", str(root)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        parent = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                procs = [parent, *parent.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                pass
            time.sleep(0.1)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out, _ = proc.communicate()
    done.set()
    thread.join()
    wall = time.monotonic() - started
    if proc.returncode != 0:
        return {"engine": engine, "error": f"exit {proc.returncode}"}
    return {**json.loads(out.strip().splitlines()[-1]), "wall_seconds": round(wall, 2),
            "peak_rss_mb": round(peak / 2**20)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--dir", default="/tmp/finks-bench")
    parser.add_argument("--worker", default="")
    args = parser.parse_args()
    root = Path(args.dir)
    if args.worker:
        worker(root, args.worker)
        return
    started = time.monotonic()
    if not (root / "lake" / "bronze").exists():
        write_bronze(root, args.rows)
    generate = round(time.monotonic() - started, 1)
    results = {e: measure(root, e) for e in args.engines.split(",")}
    report = {"rows": args.rows, "generate_seconds": generate, "results": results}
    if "duckdb" in results and "spark" in results and "wall_seconds" in results["spark"]:
        report["spark_over_duckdb_wall"] = round(results["spark"]["wall_seconds"]
                                                 / results["duckdb"]["wall_seconds"], 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
