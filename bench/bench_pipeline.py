"""Benchmark: the daily pipeline end to end, step by step (and, on request, a backfill).

    .venv/bin/python bench/bench_pipeline.py                      # 500 symbols, 1 cold + 5 runs
    .venv/bin/python bench/bench_pipeline.py --runs 7 --json /tmp/pipeline.json
    .venv/bin/python bench/bench_pipeline.py --baseline-root /tmp/before   # before/after, interleaved
    .venv/bin/python bench/bench_pipeline.py --backfill --days 30 # also backfill x4 vs x1

Starts a throw-away stack (Prefect server on SQLite + moto, free ports, temp
state) and runs the daily pipeline as S16 (`make run`) runs it: the flows on
that Prefect server, in a check process whose heavy libraries finks.zygote
has preloaded; each run in a fresh process on an empty lake
(bench/pipeline_run.py). FMP answers from a simulator process of its own,
started once (`--fmp remote`, the default: the real API is another machine,
its data already there); `--fmp in-process` puts it inside each pipeline
process as S16's check does, where its synthetic market is generated afresh
every run and competes with the pipeline for the interpreter. The state directory is kept from
run to run as `make run` keeps it, so the first run parses the dbt project in
full ("cold") and the others reuse dbt's partial parse.

Baseline, in the same session and interleaved with the flow runs: the same
steps as plain functions (no Prefect), so the table shows what the flows add;
or, with --baseline-root, the flows of another checkout (before/after). The
machine is shared and noisy: the CPU seconds of the pipeline's process and of
the Prefect server are printed beside the wall clock.

The client-side FMP limit is lifted (--calls-per-minute 60000): the local
default is the starter plan's 300 calls/min, under which 1,500 calls alone
take minutes; the figures measure our pipeline, not FMP's rate limit.
Prints the table of medians and the target check on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TARGET_S = 8.0


def _universe_file(state: Path, count: int) -> str:
    from connectors.fmp.universe import SIM_UNIVERSE_SIZE, synthetic_symbols

    path = state / f"universe-{count}.txt"
    path.write_text("\n".join(synthetic_symbols(SIM_UNIVERSE_SIZE)[:count]) + "\n")
    return str(path)


def _server_cpu(state: Path) -> float:
    """CPU seconds the Prefect server has used so far (its pid file from finks.devstack)."""
    import psutil

    try:
        pid = json.loads((state / "dev" / "prefect.pid").read_text())["pid"]
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
        return sum(p.cpu_times().user + p.cpu_times().system for p in procs)
    except (OSError, KeyError, ValueError, psutil.Error):
        return float("nan")


def _fmp_process(args: argparse.Namespace) -> subprocess.Popen[bytes]:
    """The simulator as FMP is to the pipeline: another process, up before the first run and
    warm after it (its synthetic market is generated once, as FMP's data exists already)."""
    from connectors.fmp.settings import is_listening
    from finks.devstack.procs import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "finks", "fmp-sim", "--port", str(port), "--no-limit"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not is_listening("127.0.0.1", port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the FMP simulator did not start on port {port} (exit {proc.poll()})")
        time.sleep(0.1)
    args.fmp_url = f"http://127.0.0.1:{port}"
    return proc


def one_run(state: Path, n: int, args: argparse.Namespace, universe: str, *, plain: bool = False,
            root: str | None = None) -> dict[str, Any]:
    """A daily pipeline in a fresh process on an empty lake; its breakdown.

    Always the same lake path, as in `make run`: dbt's partial parse is kept per
    (target, vars, profile), and the lake's path is one of its vars."""
    lake, out = state / "lake", state / f"run-{n}.json"
    shutil.rmtree(lake, ignore_errors=True)
    cmd = [sys.executable, str(ROOT / "bench" / "pipeline_run.py"), "--lake", str(lake), "--date", args.date,
           "--universe", universe, "--out", str(out), "--calls-per-minute", str(args.calls_per_minute),
           *(["--plain"] if plain else []), *(["--root", root] if root else []),
           *(["--no-preload"] if args.no_preload else []),
           *(["--fmp-url", args.fmp_url] if args.fmp_url else [])]
    started, server0 = time.perf_counter(), _server_cpu(state)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"run {n} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    report = json.loads(out.read_text()) | {"wall_s": round(time.perf_counter() - started, 3),
                                            "server_cpu_s": round(_server_cpu(state) - server0, 3),
                                            "root": root or str(ROOT)}
    print(f"[bench] run {n} {report['path']}{' @' + root if root else ''}: {report['total_s']:.1f}s "
          f"(cpu {report['cpu_s']:.1f}s) {report['steps_s']}", file=sys.stderr, flush=True)
    return report


# (name, seconds of a run, counts toward the pipeline total's share)
ROWS: list[tuple[str, Any, bool]] = [
    ("ingestion (3 datasets, HTTP)", lambda r: r["steps_s"]["ingestion"], True),
    ("  fetch+land, slowest dataset", lambda r: max(d["elapsed_s"] for d in r["ingestion"].values()), False),
    ("bronze->silver", lambda r: r["steps_s"]["transformation"], True),
    ("  TransformResult seconds", lambda r: r["bronze_to_silver_s"], False),
    ("dbt (build+tests+publish)", lambda r: r["steps_s"]["dbt"], True),
    ("  dbt parse", lambda r: r["dbt"].get("parse_s", 0.0), False),
    ("  dbt build (the command)", lambda r: r["dbt"].get("build_s", 0.0), False),
    ("  dbt source freshness", lambda r: r["dbt"].get("freshness_s", 0.0), False),
    ("  publish (export, promote)", lambda r: r["dbt"].get("publish_s", 0.0), False),
    ("between steps (flow overhead)", lambda r: r["total_s"] - sum(r["steps_s"].values()), True),
    ("pipeline total", lambda r: r["total_s"], True),
    ("  CPU s, pipeline process", lambda r: r["cpu_s"], False),
    ("  CPU s, Prefect server", lambda r: r["server_cpu_s"], False),
    ("off the clock: preload", lambda r: r["preload_s"], False),
    ("off the clock: start+imports", lambda r: r["process_s"] - r["total_s"] - r["preload_s"], False),
    ("peak RSS (MB)", lambda r: r["peak_rss_mb"], False),
]
TOTAL = "pipeline total"


def _median(runs: list[dict[str, Any]], fn: Any) -> float:
    return statistics.median(fn(r) for r in runs)


def table(flows: list[dict[str, Any]], base: list[dict[str, Any]], cold: dict[str, Any], base_name: str) -> list[str]:
    total = _median(flows, next(fn for name, fn, _ in ROWS if name == TOTAL))
    lines = [f"{'step':32} {'flows':>7} {'share':>6} {base_name:>8} {'ratio':>6} {'cold':>7}"]
    for name, fn, share in ROWS:
        f, c = _median(flows, fn), fn(cold)
        b = _median(base, fn) if base else float("nan")
        ratio = f"{f / b:6.2f}" if base and b else "     -"
        lines.append(f"{name:32} {f:7.2f} {f'{f / total:6.0%}' if share else '':>6} {b:8.2f} {ratio} {c:7.2f}")
    return lines


def daily(state: Path, args: argparse.Namespace, universe: str) -> dict[str, Any]:
    cold = one_run(state, 0, args, universe)
    if args.baseline_root:
        one_run(state, 1, args, universe, root=args.baseline_root)   # its own cold parse, not measured
    flows, base = [], []
    for i in range(args.runs):
        flows.append(one_run(state, 2 * i + 2, args, universe))
        if args.baseline_root:
            base.append(one_run(state, 2 * i + 3, args, universe, root=args.baseline_root))
        elif args.baseline == "plain":
            base.append(one_run(state, 2 * i + 3, args, universe, plain=True))
    return {"cold": cold, "flows": flows, "baseline": base}


def backfill(state: Path, settings: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Backfill x{concurrency} vs x1 in this process (unchanged from the first version of the bench)."""
    import psutil

    from connectors.fmp.simulator import Faults, SimulatorServer
    from flows.backfill import backfill_flow
    from flows.calendar import parse_date, trading_days
    from flows.common import RetryPolicy

    end = parse_date(args.date)
    start = end
    while len(trading_days(start, end)) < args.days:
        start = start.fromordinal(start.toordinal() - 1)
    report: dict[str, Any] = {}
    with SimulatorServer(port=0, faults=Faults(latency_ms=args.latency_ms)) as sim:
        bench = settings.model_copy(update={"fmp_base_url": sim.base_url})

        def stage(name: str, lake: str, concurrency: int) -> dict[str, Any]:
            proc = psutil.Process()
            cpu0, t0 = proc.cpu_times(), time.monotonic()
            r = backfill_flow(start=start.isoformat(), end=end.isoformat(), concurrency=concurrency,
                              bulk=args.bulk, settings=bench.model_copy(update={"lake_uri": str(state / lake)}),
                              retry=RetryPolicy(delay_s=1))
            cpu1 = proc.cpu_times()
            out = {"wall_s": round(time.monotonic() - t0, 1),
                   "cpu_s": round(cpu1.user + cpu1.system - cpu0.user - cpu0.system, 1),
                   "rss_mb": round(proc.memory_info().rss / 2**20)} | {
                k: r[k] for k in ("dates", "ran", "failed", "gold", "bulk", "seconds")}
            print(f"[bench] {name}: {out}", file=sys.stderr, flush=True)
            return out

        report["backfill_parallel"] = stage(f"backfill x{args.concurrency}", "lake-par", args.concurrency)
        if not args.skip_sequential:
            report["backfill_sequential"] = stage("backfill x1", "lake-seq", 1)
            report["speedup"] = round(report["backfill_sequential"]["wall_s"]
                                      / max(report["backfill_parallel"]["wall_s"], 0.1), 2)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5, help="measured runs of each path (after one cold run)")
    parser.add_argument("--date", default="2024-03-15")
    parser.add_argument("--baseline", choices=("plain", "none"), default="plain",
                        help="interleaved baseline: the steps as plain functions (default), or none")
    parser.add_argument("--baseline-root", help="baseline: the flows of another checkout instead "
                                                "(e.g. a `git worktree` of main): before/after in one session")
    parser.add_argument("--no-preload", action="store_true",
                        help="do not preload finks.zygote's libraries: Prefect's and dbt's imports on the clock")
    parser.add_argument("--fmp", choices=("remote", "in-process"), default="remote",
                        help="where FMP (the simulator) answers: a process of its own started once for the "
                             "bench, as the real API is remote (default), or inside each pipeline process, "
                             "as S16's check runs it")
    parser.add_argument("--skip-daily", action="store_true")
    parser.add_argument("--json", help="also write the whole report (every run) to this file")
    parser.add_argument("--calls-per-minute", type=int, default=60000,
                        help="Client-side FMP limit (default: effectively none; 300 = FMP starter plan).")
    parser.add_argument("--backfill", action="store_true", help="also time a backfill, parallel vs sequential")
    parser.add_argument("--days", type=int, default=30, help="backfill: trading days")
    parser.add_argument("--concurrency", type=int, default=4, help="backfill: dates at once")
    parser.add_argument("--skip-sequential", action="store_true", help="backfill: skip the x1 run")
    parser.add_argument("--bulk", action=argparse.BooleanOptionalAction, default=None,
                        help="backfill: force the bulk EOD endpoint on/off (default: bulk for ranges > 5 days).")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="backfill: simulator latency per request.")
    parser.set_defaults(fmp_url=None)
    args = parser.parse_args()
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally: stop the throw-away stack

    state = Path(tempfile.mkdtemp(prefix="finks-bench-"))
    from core.settings import load_settings
    from finks.devstack import down, up
    from finks.devstack.procs import free_port

    os.environ.update({"FINKS_STATE_DIR": str(state), "FINKS_PREFECT_PORT": str(free_port()),
                       "FINKS_MOTO_PORT": str(free_port()), "DO_NOT_TRACK": "1",
                       "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                       # SQLite even when a local PostgreSQL answers: the figures should not depend on it.
                       "FINKS_PREFECT_DATABASE": "sqlite"})
    os.environ.pop("FINKS_DATABASE_URL", None)
    universe = _universe_file(state, args.symbols)
    settings = load_settings(env="local", fmp_calls_per_minute=args.calls_per_minute, universe=universe)
    os.environ["PREFECT_API_URL"] = settings.prefect_api
    os.environ["PREFECT_HOME"] = str(settings.prefect_home)
    report: dict[str, Any] = {"symbols": args.symbols, "cpus": os.cpu_count(),
                              "fmp_calls_per_minute": args.calls_per_minute, "load_before": os.getloadavg()}
    up(settings)
    fmp = _fmp_process(args) if args.fmp == "remote" else None
    try:
        if not args.skip_daily:
            report["daily"] = daily(state, args, universe)
        if args.backfill:
            report["backfill"] = backfill(state, settings, args)
    finally:
        if fmp is not None:
            fmp.terminate()
            fmp.wait(timeout=30)
        down(settings)
    report["load_after"] = os.getloadavg()
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    load = "load average before {:.2f} {:.2f} {:.2f}, after {:.2f} {:.2f} {:.2f}".format(
        *report["load_before"], *report["load_after"])
    base_name = "before" if args.baseline_root else args.baseline
    where = "FMP simulator in a process of its own" if args.fmp == "remote" else "FMP simulator in-process"
    print(f"daily pipeline (flows on the Prefect server, as S16 runs it; {where}), {args.symbols} symbols, medians of "
          f"{args.runs} fresh processes; seconds; ratio = flows / {base_name}; cold = the first run "
          f"(full dbt parse); {load}")
    if "daily" in report:
        d = report["daily"]
        print("\n".join(table(d["flows"], d["baseline"], d["cold"], base_name)))
        x = _median(d["flows"], lambda r: r["total_s"])
        print(f"pipeline at {args.symbols} symbols: {x:.1f} s "
              f"(≤ {TARGET_S:.0f} s target: {'met' if x <= TARGET_S else 'not met'})")
    if "backfill" in report:
        print(json.dumps(report["backfill"], indent=2))


if __name__ == "__main__":
    main()
