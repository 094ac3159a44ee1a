"""Benchmark: bronze→silver on 1-2 million EOD rows, the engines against bare DuckDB.

    python bench/bench_transform.py [--rows 1000000,2000000] [--engines duckdb,bare,spark]
                                    [--rounds 5] [--dir /tmp/finks-bench]

Writes one trading date of bronze per size in the connector's layout (gzipped
JSON arrays of 100k records each, as the bulk EOD endpoint would give), with 1%
restated rows in a second ingestion and 0.5% exact duplicates. Then, round
after round, runs each engine in a fresh process of its own, in alternating
order, so that every engine sees the same load on shared cores:

    duckdb   jobs.bronze_to_silver.run(..., engine="duckdb"): the job as the flows run it
    bare     hand-written minimal DuckDB SQL doing the same work on this data: typed
             read_json, the same validation CASE, latest-ingestion-wins ROW_NUMBER with
             the job's tie-breaks, silver and quarantine Parquet, the counts
    spark    the job on Spark local (slow to start: add it when you want it)

Each worker imports its libraries before its clock starts: ``job_s`` is the
transform alone, ``wall_s`` the whole process, ``cpu_s`` its user+system time
(its threads and the children it reaped: so not Spark's JVM), ``maxrss_mb``
the worker's own peak RSS (``wait4``) and ``tree_rss_mb`` the sampled peak of
its process tree (with Spark's JVM). Prints one JSON document: per size and
engine the medians, the ratios engine/bare of the medians (job time, CPU) and
whether every engine wrote the same silver rows.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

DATE = "2024-03-15"
PER_FILE = 100_000
EOD_FIELDS = ("symbol", "date", "open", "high", "low", "close", "volume", "vwap", "change", "changePercent")


def write_bronze(root: Path, rows: int) -> None:
    import duckdb

    base = root / "lake" / "bronze" / "fmp" / "eod" / f"date={DATE}"
    first, second = base / "ingested_at=20240315T213000Z", base / "ingested_at=20240316T013000Z"
    first.mkdir(parents=True, exist_ok=True)
    second.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute("SET enable_progress_bar = false")
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


# The baseline: what someone would write by hand for exactly this data (no malformed
# numbers, no broken files, so typed read_json may fail hard on them).
_BARE_TYPES = {"symbol": "VARCHAR", "date": "DATE", "volume": "BIGINT"}
_BARE_CHECKED = """
CREATE TEMP TABLE checked AS
SELECT symbol, date, open, high, low, close, volume, vwap, change, changePercent AS change_pct,
       strptime(regexp_extract(filename, 'ingested_at=([0-9]{{8}}T[0-9]{{6}}Z)', 1),
                '%Y%m%dT%H%M%SZ') AS ingested_at,
       regexp_extract(filename, '(fmp/.*)$', 1) AS source_file,
       CASE WHEN symbol IS NULL THEN 'missing_symbol'
            WHEN date IS NULL THEN 'bad_date'
            WHEN date <> DATE '{date}' THEN 'outside_partition_date'
            WHEN close IS NULL THEN 'missing_close'
            WHEN NOT (close > 0 AND close < 1e9) OR open <= 0 OR high <= 0 OR low <= 0
              THEN 'non_positive_price'
            WHEN high < low THEN 'high_below_low'
            WHEN volume < 0 THEN 'negative_volume'
       END AS reason
FROM read_json({files}, format = 'array', filename = true, columns = {columns})
"""
_BARE_SILVER = """
SELECT * EXCLUDE (reason) FROM checked WHERE reason IS NULL
QUALIFY row_number() OVER (
    PARTITION BY symbol, date
    ORDER BY ingested_at DESC NULLS LAST, source_file DESC NULLS LAST, close DESC NULLS LAST,
             volume DESC NULLS LAST, vwap DESC NULLS LAST, open DESC NULLS LAST,
             high DESC NULLS LAST, low DESC NULLS LAST) = 1
"""


def bare(files: list[str], silver: Path, quarantine: Path) -> dict[str, int]:
    import duckdb

    silver.parent.mkdir(parents=True, exist_ok=True)
    quarantine.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    columns = "{" + ", ".join(f"{f}: '{_BARE_TYPES.get(f, 'DOUBLE')}'" for f in EOD_FIELDS) + "}"
    listed = "[" + ", ".join(f"'{f}'" for f in files) + "]"
    con.execute(_BARE_CHECKED.format(date=DATE, files=listed, columns=columns))
    written = con.execute(f"COPY ({_BARE_SILVER}) TO '{silver}' (FORMAT parquet)").fetchone()
    con.execute(f"COPY (SELECT * FROM checked WHERE reason IS NOT NULL) TO '{quarantine}' "
                "(FORMAT parquet)")
    read, valid, quarantined = con.execute(
        "SELECT count(*), count(*) FILTER (reason IS NULL), count(*) FILTER (reason IS NOT NULL) "
        "FROM checked").fetchone() or (0, 0, 0)
    rows_written = int(written[0]) if written else 0
    return {"rows_read": read, "rows_written": rows_written, "deduplicated": valid - rows_written,
            "quarantined": quarantined}


def worker(root: Path, engine: str) -> None:
    """One engine, one process: its result as JSON on stdout."""
    import duckdb  # noqa: F401  (imports before the clock, like every worker)
    import pyarrow.fs  # noqa: F401

    from core.settings import load_settings
    from jobs.bronze_to_silver import run

    lake = root / f"lake-{engine}"
    if engine == "bare":
        from core import lake as lakes

        settings = load_settings(env="local", state_dir=root / "state-bare", lake_uri=str(root / "lake"))
        files = [f for ing in lakes.list_ingestions(settings, str(root / "lake" / "bronze"), "eod", DATE)
                 for f in ing.files]
        started = time.monotonic()
        counts = bare(files, lake / "silver" / "eod_prices" / f"date={DATE}" / "part-0.parquet",
                      lake / "silver" / "_quarantine" / "eod_prices" / f"date={DATE}" / "part-0.parquet")
    else:
        if engine == "spark":
            from jobs.engines import spark_session

            spark_session()        # the JVM starts before the clock, as in a Glue job
        settings = load_settings(env="local", state_dir=root / f"state-{engine}", lake_uri=str(lake))
        started = time.monotonic()
        d = run(settings, DATE, ["eod_prices"], engine=engine).get("eod_prices")
        counts = {"rows_read": d.rows_read, "rows_written": d.rows_written,
                  "deduplicated": d.deduplicated, "quarantined": d.quarantined}
    print(json.dumps({"engine": engine, "job_s": round(time.monotonic() - started, 3), **counts}))


def measure(root: Path, engine: str) -> dict[str, Any]:
    import psutil

    lake = root / f"lake-{engine}"
    if engine != "bare" and not (lake / "bronze").exists():
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
            time.sleep(0.05)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    assert proc.stdout is not None
    out = proc.stdout.read()
    # wait4, not wait: the worker's own rusage (peak RSS, CPU of its threads and reaped children)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    thread.join()
    wall = time.monotonic() - started
    if proc.returncode != 0:
        return {"engine": engine, "error": f"exit {proc.returncode}"}
    return {**json.loads(out.strip().splitlines()[-1]), "wall_s": round(wall, 3),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
            "maxrss_mb": round(usage.ru_maxrss / 1024), "tree_rss_mb": round(peak / 2**20)}


def same_silver(root: Path, engines: list[str]) -> bool:
    """Every engine wrote the same silver rows (the baseline does the same work)."""
    import duckdb

    con = duckdb.connect()
    digests = set()
    for e in engines:
        path = root / f"lake-{e}" / "silver" / "eod_prices" / f"date={DATE}" / "part-0.parquet"
        digests.add(con.execute(
            "SELECT count(*), sum(hash(symbol, date, open, high, low, close, volume, vwap, change, "
            f"change_pct, ingested_at, source_file)) FROM read_parquet('{path}')").fetchone())
    return len(digests) == 1


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 3)


def bench_size(root: Path, rows: int, engines: list[str], rounds: int) -> dict[str, Any]:
    started = time.monotonic()
    if not (root / "lake" / "bronze").exists():
        write_bronze(root, rows)
    generate = round(time.monotonic() - started, 1)
    runs: dict[str, list[dict[str, Any]]] = {e: [] for e in engines}
    for n in range(rounds):
        order = engines if n % 2 == 0 else engines[::-1]
        for e in order:
            runs[e].append(measure(root, e))
            print(f"[bench] rows={rows} round {n + 1}/{rounds} {e}: {runs[e][-1]}", file=sys.stderr, flush=True)
    results: dict[str, Any] = {}
    for e, rs in runs.items():
        ok = [r for r in rs if "error" not in r]
        if not ok:
            results[e] = {"error": rs[-1].get("error")}
            continue
        results[e] = {k: ok[-1][k] for k in ("rows_read", "rows_written", "deduplicated", "quarantined")}
        results[e] |= {f"median_{k}": _median(ok, k) for k in ("job_s", "wall_s", "cpu_s")}
        results[e] |= {"max_maxrss_mb": max(r["maxrss_mb"] for r in ok),
                       "max_tree_rss_mb": max(r["tree_rss_mb"] for r in ok),
                       "job_s": [r["job_s"] for r in ok]}
    report: dict[str, Any] = {"rows": rows, "rounds": rounds, "generate_seconds": generate, "results": results}
    good = [e for e in engines if "error" not in results[e]]
    if "bare" in good:
        base = results["bare"]
        for e in good:
            if e != "bare":
                report[f"{e}_over_bare_job"] = round(results[e]["median_job_s"] / base["median_job_s"], 2)
                if e != "spark":        # the JVM's CPU is not the worker's (see the docstring)
                    report[f"{e}_over_bare_cpu"] = round(results[e]["median_cpu_s"] / base["median_cpu_s"], 2)
    if "duckdb" in good and "spark" in good:
        report["spark_over_duckdb_wall"] = round(results["spark"]["median_wall_s"]
                                                 / results["duckdb"]["median_wall_s"], 1)
    report["same_silver"] = same_silver(root, good)
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", default="1000000,2000000", help="comma-separated sizes")
    parser.add_argument("--engines", default="duckdb,bare")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", default="/tmp/finks-bench")
    parser.add_argument("--worker", default="")
    args = parser.parse_args()
    root = Path(args.dir)
    if args.worker:
        worker(root, args.worker)
        return
    engines = args.engines.split(",")
    sizes = [int(r) for r in args.rows.split(",")]
    print(json.dumps([bench_size(root / f"rows={n}", n, engines, args.rounds) for n in sizes], indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
