"""Check processes forked from a preloaded parent (finks.zygote) against fresh interpreters.

A plan of N sessions with one Python check each, every check importing what the
platform's checks import (Prefect's client, dbt's runner, DuckDB), run by
`finks verify --all` with FINKS_CHECK_PRELOAD=1 and =0, alternating, in the same
process tree. Prints the medians of wall time and of CPU (user + sys of the
whole tree, from the kernel's accounting of waited-for children) and the ratios.

    .venv/bin/python bench/bench_preload.py [--checks 8] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
TARGET = "bench_preload_checks:imports_what_checks_import"
CHECK_MODULE = '''
from finks.checks import CheckContext, Evidence


def imports_what_checks_import(ctx: CheckContext) -> Evidence:
    import dbt.cli.main  # noqa: F401
    import duckdb
    import prefect.client.orchestration  # noqa: F401

    return Evidence("imported", {"duckdb": duckdb.__version__})
'''


def _plan(base: Path, checks: int) -> Path:
    plan = base / "plan"
    plan.mkdir()
    for i in range(1, checks + 1):
        session = {"id": f"s{i}", "title": f"bench session {i}", "week": 1, "area": "bench", "estimate_hours": [1, 2],
                   "tasks": [{"title": "nothing"}],
                   "criteria": [{"text": "imports", "checks": [{"id": "imports", "python": TARGET}]}]}
        (plan / f"s{i}.yaml").write_text(yaml.safe_dump(session))
    (plan / "gates.yaml").write_text("strict: false\ngates: []\n")
    (base / "bench_preload_checks.py").write_text(CHECK_MODULE)
    return plan


def _once(plan: Path, base: Path, preload: str, n: int) -> tuple[float, float]:
    env = {**os.environ, "FINKS_SESSIONS": str(plan), "FINKS_STATE_DIR": str(base / f"state-{preload}-{n}"),
           "FINKS_HANDOFFS": str(base / "handoffs"), "FINKS_CHECK_PRELOAD": preload, "NO_COLOR": "1",
           "PYTHONPATH": os.pathsep.join([str(base), str(REPO)])}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "finks", "verify", "--all"], cwd=REPO, env=env,
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"finks verify failed ({proc.returncode}): {proc.stdout[-800:]} {proc.stderr[-800:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checks", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="finks-bench-preload-") as tmp:
        base = Path(tmp)
        plan = _plan(base, args.checks)
        samples: dict[str, list[tuple[float, float]]] = {"1": [], "0": []}
        for n in range(args.runs):
            for preload in ("1", "0") if n % 2 == 0 else ("0", "1"):
                samples[preload].append(_once(plan, base, preload, n))
    print(f"finks verify --all over {args.checks} checks importing Prefect, dbt and DuckDB "
          f"(medians of {args.runs}, load average {os.getloadavg()[0]:.1f})")
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in samples.items()}
    print(f"  fresh interpreter per check (FINKS_CHECK_PRELOAD=0): wall {med['0'][0]:6.1f} s   CPU {med['0'][1]:6.1f} s")
    print(f"  forked from the preloaded parent (default)         : wall {med['1'][0]:6.1f} s   CPU {med['1'][1]:6.1f} s")
    print(f"  ratio preloaded / fresh: wall {med['1'][0] / med['0'][0]:.2f}×, CPU {med['1'][1] / med['0'][1]:.2f}×")


if __name__ == "__main__":
    main()
