"""Time `finks dev up` from cold (the plan asks for under 2 minutes).

Each round uses a fresh state dir, free ports and (for PostgreSQL) a fresh
database, so nothing is warm except the OS page cache. It also times a
second, idempotent `up` and `down`.

    .venv/bin/python bench/bench_dev_up.py --rounds 3 --backend sqlite --backend postgresql
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any


def one_round(backend: str, services: list[str]) -> dict[str, float]:
    from core.settings import load_settings
    from finks.devstack import down, up
    from finks.devstack.database import drop_database
    from finks.devstack.procs import free_port

    db_url = None
    if backend == "postgresql":
        db_url = f"postgresql://postgres@127.0.0.1:5432/finks_bench_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="finks-bench-") as tmp:
        settings = load_settings(env="local", state_dir=Path(tmp), prefect_port=free_port(),
                                 moto_port=free_port(), database_url=db_url)
        try:
            t0 = time.monotonic()
            st = up(settings, services)
            cold = time.monotonic() - t0
            if not st.healthy_services(services):
                raise SystemExit(f"unhealthy after up: {st.to_dict()}")
            t1 = time.monotonic()
            up(settings, services)
            warm = time.monotonic() - t1
        finally:
            t2 = time.monotonic()
            down(settings)
            stop = time.monotonic() - t2
            if db_url:
                drop_database(db_url)
    return {"cold_up_s": cold, "second_up_s": warm, "down_s": stop}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--worker", action="store_true", help="also start the process worker")
    args = parser.parse_args(argv)
    services = ["moto", "prefect"] + (["worker"] if args.worker else [])
    report: dict[str, Any] = {"services": services, "rounds": args.rounds, "results": {}}
    for backend in args.backend or ["sqlite"]:
        rounds = [one_round(backend, services) for _ in range(args.rounds)]
        report["results"][backend] = {
            key: {"median": round(statistics.median(r[key] for r in rounds), 2),
                  "max": round(max(r[key] for r in rounds), 2)}
            for key in rounds[0]
        }
        print(f"{backend}: cold up median {report['results'][backend]['cold_up_s']['median']}s",
              file=sys.stderr)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
