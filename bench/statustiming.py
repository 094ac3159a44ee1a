"""What bench_cli.py and bench_plan_size.py share: timing `finks` in fresh processes
side by side with a bare interpreter start, and the two ways of emptying its caches."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def time_command(args: list[str], runs: int, env: dict[str, str],
                 before: Callable[[], None] | None = None) -> list[float]:
    """Wall seconds of `python -m finks ARGS`, one fresh process per run; a failing run stops the bench."""
    samples = []
    for _ in range(runs):
        if before is not None:
            before()
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "finks", *args], cwd=REPO, env=env,
                              capture_output=True, text=True, check=False)
        samples.append(time.perf_counter() - started)
        if proc.returncode != 0:
            raise SystemExit(f"finks {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
    return samples


def python_start(runs: int) -> list[float]:
    """The baseline: `python -c pass`, timed the same way."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=False)
        samples.append(time.perf_counter() - started)
    return samples


def cache_resetters(state: Path) -> tuple[Callable[[], None], Callable[[], None]]:
    """(drop the status memo only, drop every cache incl. file hashes), for 'cold' and 'fresh' runs."""
    def no_memo() -> None:
        for memo in (state / "cache").glob("status-*.json"):
            memo.unlink()

    def nothing_cached() -> None:
        shutil.rmtree(state / "cache", ignore_errors=True)

    return no_memo, nothing_cached


def summarise(results: dict[str, list[float]]) -> dict[str, dict[str, Any]]:
    """Median, min, max and the ratio of medians to the interpreter start ("python -c pass")."""
    report: dict[str, dict[str, Any]] = {
        name: {"median_s": round(statistics.median(s), 4), "min_s": round(min(s), 4),
               "max_s": round(max(s), 4), "runs": len(s)} for name, s in results.items()}
    floor = report["python -c pass"]["median_s"]
    for r in report.values():
        r["vs_python"] = round(r["median_s"] / floor, 2)
    return report
