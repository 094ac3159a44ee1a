"""Benchmark: wall time of `finks --help`, `finks status` and `finks plan` on the real plan.

Each command runs as a fresh process (what a user waits for), N times; we
report the median and the spread. Target: median under 0.3 s.

    .venv/bin/python bench/bench_cli.py [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_S = 0.3


def time_command(args: list[str], runs: int, env: dict[str, str]) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "finks.cli", *args], cwd=REPO, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        samples.append(time.perf_counter() - started)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        env = {**os.environ, "FINKS_STATE_DIR": state, "NO_COLOR": "1"}
        baseline = time_command(["--version-does-not-exist"], 3, env)  # warm the page cache
        del baseline
        python_only = []
        for _ in range(opts.runs):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=False)
            python_only.append(time.perf_counter() - started)
        results = {"python -c pass": python_only}
        for args in (["--help"], ["status"], ["plan"], ["status", "--json"]):
            results["finks " + " ".join(args)] = time_command(args, opts.runs, env)
    report = {
        name: {"median_s": round(statistics.median(s), 4), "min_s": round(min(s), 4), "max_s": round(max(s), 4),
               "runs": len(s)}
        for name, s in results.items()
    }
    if opts.json:
        print(json.dumps(report, indent=2))
    else:
        floor = report["python -c pass"]["median_s"]
        print(f"{'command':<24} {'median':>8} {'min':>8} {'max':>8}  vs interpreter start")
        for name, r in report.items():
            print(f"{name:<24} {r['median_s']:>8.3f} {r['min_s']:>8.3f} {r['max_s']:>8.3f}  {r['median_s'] / floor:>5.1f}x")
        slow = [n for n, r in report.items() if n.startswith("finks") and r["median_s"] > TARGET_S]
        print("target <0.3 s median:", "met" if not slow else f"missed by {', '.join(slow)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
