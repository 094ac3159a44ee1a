"""Every error mode of the client, over real HTTP against the simulator (or a closed port)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from connectors.fmp.client import FmpClient
from connectors.fmp.errors import (
    FmpApiError,
    FmpAuthError,
    FmpPlanError,
    FmpQuotaExhausted,
    FmpRateLimited,
    FmpTransientError,
)
from connectors.fmp.limiter import RateLimiter
from connectors.fmp.simulator import Faults
from tests.fixtures.fmp import TEST_KEY, free_port


def call(base_url: str, method: str, *args: Any, retries: int = 2, timeout_s: float = 5.0,
         limiter: RateLimiter | None = None) -> Any:
    async def go() -> Any:
        async with FmpClient(base_url, TEST_KEY, limiter or RateLimiter(None, 4), max_retries=retries,
                             backoff_base_s=0.02, backoff_max_s=0.1, timeout_s=timeout_s, seed=1) as client:
            return await getattr(client, method)(*args)

    return asyncio.run(go())


def test_quote_returns_the_exact_body_and_records(fmp_sim) -> None:
    response = call(fmp_sim.base_url, "quote", "AAPL")
    assert response.status == 200 and response.data[0]["symbol"] == "AAPL"
    assert response.body.lstrip().startswith(b"[")


def test_invalid_key_is_an_auth_error_without_retries(make_fmp_sim) -> None:
    sim = make_fmp_sim(api_keys={"the-right-key"})
    with pytest.raises(FmpAuthError) as info:
        call(sim.base_url, "quote", "AAPL", retries=4)
    assert sim.stats.requests == 1
    assert "API key" in str(info.value) and "FMP_API_KEY" in str(info.value)
    assert TEST_KEY not in str(info.value)


def test_plan_restriction_names_the_endpoint(make_fmp_sim) -> None:
    sim = make_fmp_sim(faults=Faults(restricted=frozenset({"/stable/batch-quote"})))
    with pytest.raises(FmpPlanError) as info:
        call(sim.base_url, "batch_quote", ["AAPL", "MSFT"])
    assert "/stable/batch-quote" in str(info.value) and "402" in str(info.value)
    assert sim.stats.requests == 1


def test_legacy_path_403_is_a_plan_error(fmp_sim) -> None:
    async def go() -> None:
        async with FmpClient(fmp_sim.base_url, TEST_KEY, RateLimiter(None, 1), max_retries=0) as client:
            await client.get("/api/v3/quote/AAPL", {})

    with pytest.raises(FmpPlanError, match="/api/v3/quote/AAPL"):
        asyncio.run(go())


def test_error_message_with_http_200_is_an_error(make_fmp_sim) -> None:
    sim = make_fmp_sim(faults=Faults(symbol_faults={"AAPL": "error200"}))
    with pytest.raises(FmpApiError, match="Something went wrong"):
        call(sim.base_url, "quote", "AAPL")


def test_5xx_is_retried_until_it_succeeds(make_fmp_sim) -> None:
    sim = make_fmp_sim(faults=Faults(fail_first={"AAPL": 2}))
    response = call(sim.base_url, "quote", "AAPL", retries=3)
    assert response.attempts == 3 and sim.stats.requests == 3


def test_5xx_gives_up_after_the_retries(make_fmp_sim) -> None:
    sim = make_fmp_sim(faults=Faults(symbol_faults={"AAPL": "503"}))
    with pytest.raises(FmpTransientError, match="gave up after 3 attempts"):
        call(sim.base_url, "quote", "AAPL", retries=2)
    assert sim.stats.requests == 3


def test_malformed_json_is_retried_then_reported(make_fmp_sim) -> None:
    sim = make_fmp_sim(faults=Faults(symbol_faults={"AAPL": "malformed"}))
    with pytest.raises(FmpTransientError, match="malformed JSON"):
        call(sim.base_url, "quote", "AAPL", retries=1)
    assert sim.stats.requests == 2


def test_timeout_is_retried_then_reported(make_fmp_sim) -> None:
    sim = make_fmp_sim(faults=Faults(symbol_faults={"AAPL": "slow"}, slow_s=1.0))
    with pytest.raises(FmpTransientError, match="timed out"):
        call(sim.base_url, "quote", "AAPL", retries=1, timeout_s=0.2)


def test_connection_error_is_retried_then_reported() -> None:
    with pytest.raises(FmpTransientError, match="connection failed") as info:
        call(f"http://127.0.0.1:{free_port()}", "quote", "AAPL", retries=1)
    assert TEST_KEY not in str(info.value)


def test_429_is_retried_and_slows_the_limiter(make_fmp_sim) -> None:
    sim = make_fmp_sim(calls_per_minute=3, window_s=0.5)
    limiter = RateLimiter(None, 4)  # a client that believes it has no limit

    async def go() -> list[Any]:
        async with FmpClient(sim.base_url, TEST_KEY, limiter, max_retries=8, backoff_base_s=0.05,
                             backoff_max_s=0.4, seed=3) as client:
            return await asyncio.gather(*(client.quote(s) for s in ["AAPL", "MSFT", "AMZN", "META", "NVDA"]))

    responses = asyncio.run(go())
    assert [r.data[0]["symbol"] for r in responses] == ["AAPL", "MSFT", "AMZN", "META", "NVDA"]
    assert sim.stats.rejected_429 >= 1 and limiter.slowdowns >= 1


def test_429_that_persists_is_a_rate_limit_error(make_fmp_sim) -> None:
    sim = make_fmp_sim(calls_per_minute=1)
    call(sim.base_url, "quote", "AAPL")
    with pytest.raises(FmpRateLimited, match="Limit Reach"):
        call(sim.base_url, "quote", "MSFT", retries=1)


def test_daily_cap_is_a_quota_error_that_stops(make_fmp_sim) -> None:
    sim = make_fmp_sim(faults=Faults(daily_limit=1))
    call(sim.base_url, "quote", "AAPL")
    with pytest.raises(FmpQuotaExhausted) as info:
        call(sim.base_url, "quote", "MSFT", retries=5)
    assert info.value.stops_run and sim.stats.requests == 2  # not retried


def test_unknown_symbol_is_an_empty_answer(fmp_sim) -> None:
    assert call(fmp_sim.base_url, "quote", "NOPE123").data == []


def test_the_key_travels_but_no_log_record_of_the_http_layer_shows_it(fmp_sim, caplog) -> None:
    """aiohttp logs no URLs today; a record that did carry one (at any level) is redacted while
    the client is open, and the filter leaves with the client."""
    import logging

    caplog.set_level("DEBUG")

    async def go() -> None:
        async with FmpClient(fmp_sim.base_url, TEST_KEY, RateLimiter(None, 4), seed=1) as client:
            await client.profile("AAPL")
            logging.getLogger("aiohttp.client").debug("GET %s/stable/profile?symbol=AAPL&apikey=%s",
                                                      fmp_sim.base_url, TEST_KEY)

    asyncio.run(go())
    assert TEST_KEY in fmp_sim.stats.keys_seen
    assert "apikey=***" in caplog.text and TEST_KEY not in caplog.text
    assert not logging.getLogger("aiohttp.client").filters




def test_the_environments_proxy_carries_the_calls(fmp_sim, monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY applies (read once per client): FMP's host does not resolve here, and the call
    still lands, through the proxy (the simulator answers a proxy's absolute-URI requests)."""
    for var in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTP_PROXY", fmp_sim.base_url)
    response = call("http://fmp.invalid", "quote", "AAPL")
    assert response.status == 200 and response.data[0]["symbol"] == "AAPL"
    assert fmp_sim.stats.requests == 1

    monkeypatch.setenv("NO_PROXY", "other.example,fmp.invalid")     # the host is exempt: no proxy
    with pytest.raises(FmpTransientError, match="connection failed"):
        call("http://fmp.invalid", "quote", "AAPL", retries=0)
    assert fmp_sim.stats.requests == 1


def test_credentials_in_the_proxy_url_become_its_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    from connectors.fmp.client import env_proxy

    for var in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://svc%40corp:p%3Ass@proxy.corp:3128")
    proxy, headers = env_proxy("https://financialmodelingprep.com/stable")
    assert proxy == "http://proxy.corp:3128"
    assert headers == {"Proxy-Authorization": "Basic " + base64.b64encode(b"svc@corp:p:ss").decode()}
    assert env_proxy("http://financialmodelingprep.com") == (None, None)   # no proxy for http here
