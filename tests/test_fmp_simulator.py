"""The simulator speaks FMP: limit answered with FMP's 429 body, faults by option, a runnable command."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from connectors.fmp.ingest import run_ingest
from connectors.fmp.simulator import LIMIT_BODY, Faults
from tests.fixtures.fmp import free_port

ROOT = Path(__file__).resolve().parent.parent


def test_limit_is_answered_with_fmps_429_body(make_fmp_sim) -> None:
    sim = make_fmp_sim(calls_per_minute=2)
    codes = [httpx.get(f"{sim.base_url}/stable/quote", params={"symbol": "AAPL"}) for _ in range(3)]
    assert [r.status_code for r in codes] == [200, 200, 429]
    assert codes[2].json() == LIMIT_BODY and "retry-after" not in codes[2].headers
    assert sim.stats.rejected_429 == 1


def test_fault_rates_mix_errors_into_answers(make_fmp_sim) -> None:
    sim = make_fmp_sim(faults=Faults(error_rate=0.2, malformed_rate=0.2, error_200_rate=0.2), seed=11)
    with httpx.Client(base_url=sim.base_url) as client:
        answers = [client.get("/stable/quote", params={"symbol": "AAPL"}) for _ in range(100)]
    errors_5xx = sum(a.status_code == 500 for a in answers)
    error_200 = sum(a.status_code == 200 and "Error Message" in a.text for a in answers)
    malformed = sum(a.status_code == 200 and a.text.endswith(": 1") for a in answers)
    assert all(5 <= n <= 40 for n in (errors_5xx, error_200, malformed)), (errors_5xx, error_200, malformed)


def test_legacy_paths_answer_403_with_an_error_message(fmp_sim) -> None:
    answer = httpx.get(f"{fmp_sim.base_url}/api/v3/quote/AAPL")
    assert answer.status_code == 403 and "Legacy Endpoint" in answer.json()["Error Message"]


def test_unknown_fault_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault 'boom' for AAPL"):
        Faults(symbol_faults={"AAPL": "boom"})


def test_history_is_trading_days_only(fmp_sim) -> None:
    rows = httpx.get(f"{fmp_sim.base_url}/stable/historical-price-eod/full",
                     params={"symbol": "AAPL", "from": "2024-06-01", "to": "2024-07-10"}).json()
    days = [r["date"] for r in rows]
    assert days == sorted(days, reverse=True) and "2024-07-04" not in days and "2024-06-08" not in days
    assert all(r["low"] <= min(r["open"], r["close"]) <= max(r["open"], r["close"]) <= r["high"] for r in rows)


def test_batch_quotes_ingest_in_one_call_per_batch(fmp_sim, fmp_settings) -> None:
    result = run_ingest(fmp_settings(fmp_sim), "2024-03-05", "quotes", universe="sim100", batch_size=40)
    assert result.ok and result.calls == 3 and result.counts()["ok"] == 100


def test_run_ingest_works_inside_a_running_event_loop(fmp_sim, fmp_settings) -> None:
    settings = fmp_settings(fmp_sim)

    async def flow() -> bool:
        return run_ingest(settings, "2024-03-05", "profiles", symbols=["AAPL"]).ok

    assert asyncio.run(flow())


def test_fmp_sim_command_serves_until_stopped(tmp_path) -> None:
    port = free_port()
    env = {**os.environ, "FINKS_STATE_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "connectors.fmp", "fmp-sim", "--port", str(port), "--no-limit",
                             "--symbol-fault", "MSFT=500"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                ok = httpx.get(f"http://127.0.0.1:{port}/stable/quote", params={"symbol": "AAPL"})
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "fmp-sim did not start"
                time.sleep(0.1)
        assert ok.json()[0]["symbol"] == "AAPL"
        assert httpx.get(f"http://127.0.0.1:{port}/stable/quote", params={"symbol": "MSFT"}).status_code == 500
    finally:
        proc.terminate()
        proc.wait(10)


def test_concurrent_runs_share_the_started_simulator(tmp_path, monkeypatch) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from core.settings import load_settings

    for name in ("FMP_API_KEY", "FMP_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(lake_uri=str(tmp_path / "lake"), state_dir=tmp_path, fmp_sim_port=free_port(),
                             fmp_calls_per_minute=60_000)
    assert settings.uses_simulator
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda ds: run_ingest(settings, "2024-03-05", ds, universe="default"),
                                ["quotes", "profiles", "eod"]))
    assert all(r.ok and r.counts()["ok"] == 25 for r in results)
