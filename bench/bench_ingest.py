"""Benchmark the FMP connector against the simulator (run in its own process).

    python bench/bench_ingest.py                 # full: 500 symbols, quotes + profiles at 300/min (~3.5 min)
    python bench/bench_ingest.py --symbols 100   # quicker iteration
    python bench/bench_ingest.py --skip-limited  # only the unlimited and memory parts

Figures (JSON on stdout):
  limited:   achieved calls/min (server side, first to last accepted call) vs the limit, 429s provoked,
             most calls seen in any 60 s window;
  unlimited: calls/second with no limit;
  memory:    tracemalloc peak of the ingest per universe size (flat = bytes per symbol stays small).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DAY = "2024-03-05"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Sim:
    """The simulator in a child process, so it does not share our GIL."""

    def __init__(self, *flags: str) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "connectors.fmp", "fmp-sim", "--port", str(self.port), *flags],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/stable/quote?symbol=ZZZZZZ", timeout=1).read()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("simulator did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _settings(url: str, lake: str, cpm: int, concurrency: int) -> Any:
    from core.settings import load_settings

    return load_settings(fmp_base_url=url, fmp_calls_per_minute=cpm, fmp_max_concurrency=concurrency,
                         lake_uri=lake, fmp_api_key="bench-key")


def limited(symbols: list[str], limit: int) -> dict[str, Any]:
    from connectors.fmp.ingest import run_ingest

    # In-process simulator here: we need its server-side counters (accepted times, 429s).
    from connectors.fmp.simulator import SimulatorServer

    with tempfile.TemporaryDirectory() as lake, SimulatorServer(port=0, calls_per_minute=limit) as sim:
        settings = _settings(sim.base_url, lake, limit, 8)
        results = [run_ingest(settings, DAY, ds, symbols=symbols) for ds in ("quotes", "profiles")]
        times = list(sim.stats.accepted_at)
        span = times[-1] - times[0]
        rate = (len(times) - 1) / span * 60 if span > 0 else 0.0
        return {"limit_per_min": limit, "calls": sim.stats.requests, "accepted": sim.stats.accepted,
                "rejected_429": sim.stats.rejected_429, "achieved_per_min": round(rate, 1),
                "achieved_pct_of_limit": round(100 * rate / limit, 1),
                "max_calls_in_any_60s": sim.stats.max_in_window(60.0), "elapsed_s": round(span, 1),
                "all_ok": all(r.ok for r in results)}


def unlimited(url: str, symbols: list[str], concurrency: int) -> dict[str, Any]:
    from connectors.fmp.ingest import run_ingest

    with tempfile.TemporaryDirectory() as lake:
        settings = _settings(url, lake, 10_000_000, concurrency)
        started = time.perf_counter()
        result = run_ingest(settings, DAY, "quotes", symbols=symbols)
        elapsed = time.perf_counter() - started
    return {"symbols": len(symbols), "concurrency": concurrency, "calls": result.calls,
            "elapsed_s": round(elapsed, 2), "calls_per_s": round(result.calls / elapsed, 1), "ok": result.ok}


def memory(url: str, sizes: list[int]) -> dict[str, Any]:
    from connectors.fmp.ingest import run_ingest
    from connectors.fmp.universe import synthetic_symbols

    peaks = {}
    for n in sizes:
        with tempfile.TemporaryDirectory() as lake:
            settings = _settings(url, lake, 10_000_000, 8)
            tracemalloc.start()
            run_ingest(settings, DAY, "quotes", symbols=list(synthetic_symbols(1000)[:n]))
            peaks[n] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    lo, hi = min(sizes), max(sizes)
    per_symbol = (peaks[hi] - peaks[lo]) / (hi - lo)
    return {"peak_kib": {str(n): round(p / 1024) for n, p in peaks.items()},
            "extra_bytes_per_symbol": round(per_symbol)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--skip-limited", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from connectors.fmp.universe import synthetic_symbols

    symbols = list(synthetic_symbols(1000)[: args.symbols])
    figures: dict[str, Any] = {}
    if not args.skip_limited:
        print(f"limited: {2 * len(symbols)} calls at {args.limit}/min ...", file=sys.stderr)
        figures["limited"] = limited(symbols, args.limit)
    sim = _Sim("--no-limit")
    try:
        print("unlimited ...", file=sys.stderr)
        # Cold: the simulator generates each symbol's walk on first use; warm: cached (client-bound).
        figures["unlimited_cold"] = unlimited(sim.url, symbols, 16)
        figures["unlimited_warm"] = unlimited(sim.url, symbols, 16)
        print("memory ...", file=sys.stderr)
        figures["memory"] = memory(sim.url, [100, 300, 1000])
    finally:
        sim.stop()
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
