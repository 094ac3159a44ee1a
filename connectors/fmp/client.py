"""Async client for FMP's /stable API.

Every call goes through the shared :class:`RateLimiter`. Error semantics follow
FMP's habits (see fmp-samples/README): any body carrying ``Error Message`` is
an error whatever the HTTP status; 401 means a bad key and is never retried;
402/403 mean the plan does not cover the endpoint; 429 (or a "Limit Reach"
message) is retried with backoff and slows the limiter; a daily-cap or
bandwidth message stops the run. The key travels in the ``apikey`` query
parameter, so it is redacted from every message and from the HTTP library's log.

The transport is aiohttp: at 500 symbols per dataset the client's own CPU is
what an ingestion spends, and httpx/httpcore's pool spends about seven times
aiohttp's per request (it polls every pooled socket on every request).
"""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import json
import logging
import random
from dataclasses import dataclass, field
from typing import Any, Self

from connectors.fmp.errors import (
    FmpApiError,
    FmpAuthError,
    FmpError,
    FmpPlanError,
    FmpQuotaExhausted,
    FmpRateLimited,
    FmpTransientError,
    redact,
)
from connectors.fmp.limiter import RateLimiter

QUOTE = "/stable/quote"
BATCH_QUOTE = "/stable/batch-quote"
PROFILE = "/stable/profile"
HISTORICAL_EOD = "/stable/historical-price-eod/full"
BULK_EOD = "/stable/eod-bulk"
_QUOTA_WORDS = ("daily", "per day", "bandwidth")
_PLAN_WORDS = ("restricted endpoint", "exclusive endpoint", "legacy endpoint", "subscription")


@dataclass
class FmpResponse:
    endpoint: str
    params: dict[str, str]
    status: int
    body: bytes  # exactly as received (or the JSON form of a CSV bulk answer)
    data: list[Any]
    attempts: int = 1
    converted_from: str | None = None


_HTTP_LOGGERS = ("aiohttp.client", "aiohttp.internal")


@dataclass(frozen=True)
class _Answer:
    """What the client keeps of an HTTP answer (read whole inside the request's context)."""

    status: int
    body: bytes
    content_type: str


def env_proxy(url: str) -> tuple[str | None, dict[str, str] | None]:
    """The proxy the environment names for ``url`` (``<scheme>_proxy``, unless ``no_proxy``
    covers its host), and the Proxy-Authorization its credentials make: (proxy, headers)."""
    import base64
    import urllib.request
    from urllib.parse import unquote, urlsplit

    target = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(target.scheme)
    if not proxy or urllib.request.proxy_bypass(target.hostname or ""):
        return None, None
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if parts.username is None:
        return parts.geturl(), None
    secret = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    headers = {"Proxy-Authorization": "Basic " + base64.b64encode(secret).decode()}
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host).geturl(), headers


@functools.cache
def _tls_context() -> Any:
    """Verify servers against certifi's CA bundle when installed (as httpx did), else the system's.
    Built once per process: loading the bundle costs ~20 ms, and every ingestion opens a client."""
    import ssl

    try:
        import certifi
    except ImportError:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


@dataclass
class CallStats:
    calls: int = 0
    retries: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


class _RedactKey(logging.Filter):
    """aiohttp may log request URLs (at DEBUG): strip the key before any handler sees it."""

    def __init__(self, secret: str | None) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secret)
        record.args = ()
        return True


class FmpClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        limiter: RateLimiter,
        *,
        timeout_s: float = 15.0,
        max_retries: int = 4,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        sim_extensions: bool = False,
        seed: int | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self.limiter = limiter
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.sim_extensions = sim_extensions
        self.stats = CallStats()
        self._random = random.Random(seed)
        self._http: Any = None
        self._proxy: str | None = None
        self._proxy_headers: dict[str, str] | None = None
        self._filter = _RedactKey(api_key)

    async def __aenter__(self) -> Self:
        import aiohttp

        for name in _HTTP_LOGGERS:
            logging.getLogger(name).addFilter(self._filter)
        connector = aiohttp.TCPConnector(limit=self.limiter.max_concurrency, ssl=_tls_context())
        # timeout_s bounds connecting and each wait for data, not the whole answer (as httpx did):
        # a large bulk answer that keeps arriving is not a timeout
        timeout = aiohttp.ClientTimeout(total=None, connect=self.timeout_s, sock_read=self.timeout_s)
        # HTTP(S)_PROXY / NO_PROXY apply, as they did with httpx, read once for the client:
        # aiohttp's trust_env reads them (walking the whole environment) and ~/.netrc again for
        # every request, which was two thirds of an ingestion's CPU
        self._proxy, self._proxy_headers = env_proxy(self.base_url)
        self._http = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.close()
        for name in _HTTP_LOGGERS:
            logging.getLogger(name).removeFilter(self._filter)

    # ---- endpoints --------------------------------------------------------
    async def quote(self, symbol: str, as_of: str | None = None) -> FmpResponse:
        return await self.get(QUOTE, {"symbol": symbol, **self._as_of(as_of)})

    async def batch_quote(self, symbols: list[str], as_of: str | None = None) -> FmpResponse:
        return await self.get(BATCH_QUOTE, {"symbols": ",".join(symbols), **self._as_of(as_of)})

    async def profile(self, symbol: str, as_of: str | None = None) -> FmpResponse:
        return await self.get(PROFILE, {"symbol": symbol, **self._as_of(as_of)})

    async def historical_eod(self, symbol: str, start: str, end: str) -> FmpResponse:
        return await self.get(HISTORICAL_EOD, {"symbol": symbol, "from": start, "to": end})

    async def bulk_eod(self, date: str) -> FmpResponse:
        return await self.get(BULK_EOD, {"date": date})

    def _as_of(self, as_of: str | None) -> dict[str, str]:
        # Real FMP has no date for quotes/profiles; the simulator accepts one so
        # that a backfill of past dates gives that day's synthetic data.
        return {"date": as_of} if (as_of and self.sim_extensions) else {}

    # ---- the call loop ------------------------------------------------------
    async def get(self, endpoint: str, params: dict[str, str]) -> FmpResponse:
        import aiohttp

        attempt = 0
        while True:
            response: _Answer | None = None
            async with self.limiter.slot():
                query = dict(params)
                if self._key:
                    query["apikey"] = self._key
                try:
                    async with self._http.get(self.base_url + endpoint, params=query, proxy=self._proxy,
                                              proxy_headers=self._proxy_headers) as answer:
                        response = _Answer(answer.status, await answer.read(),
                                           answer.headers.get("content-type", ""))
                except TimeoutError:  # aiohttp's timeouts are TimeoutErrors
                    error: FmpError = self._error(
                        FmpTransientError, endpoint, params, f"timed out after {self.timeout_s:g}s"
                    )
                except aiohttp.ClientError as exc:
                    error = self._error(
                        FmpTransientError, endpoint, params,
                        f"connection failed ({type(exc).__name__}: {exc})",
                    )
                finally:
                    self.stats.calls += 1
            if response is not None:
                key = str(response.status)
                self.stats.by_status[key] = self.stats.by_status.get(key, 0) + 1
                outcome = self._interpret(endpoint, params, response)
                if isinstance(outcome, FmpResponse):
                    self.limiter.succeeded()
                    outcome.attempts = attempt + 1
                    return outcome
                error = outcome
            if isinstance(error, FmpRateLimited):
                self.limiter.slow_down(pause_s=self._backoff(attempt))
            if not error.retryable or attempt >= self.max_retries:
                if error.retryable:
                    error.message += f" (gave up after {attempt + 1} attempts)"
                raise error
            self.stats.retries += 1
            await asyncio.sleep(self._backoff(attempt))
            attempt += 1

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random."""
        ceiling = min(self.backoff_max_s, self.backoff_base_s * (2**attempt))
        return ceiling / 2 + self._random.uniform(0, ceiling / 2)

    def _error(self, cls: type[FmpError], endpoint: str, params: dict[str, str], what: str,
               status: int | None = None, hint: str | None = None) -> FmpError:
        where = " ".join(f"{k}={v}" for k, v in params.items() if k != "apikey")
        message = redact(f"{endpoint} ({where}): {what}", self._key)
        return cls(message, endpoint=endpoint, status=status,
                   hint=redact(hint, self._key) if hint else None)

    def _interpret(self, endpoint: str, params: dict[str, str], response: _Answer) -> FmpResponse | FmpError:
        status, body = response.status, response.body
        converted = None
        try:
            data: Any = json.loads(body) if body.strip() else []
        except ValueError:
            if status < 400 and "csv" in response.content_type:
                data, converted = _csv_records(body), "csv"
                body = json.dumps(data, separators=(",", ":")).encode()
            elif status >= 500:
                return self._error(FmpTransientError, endpoint, params, f"HTTP {status}", status)
            else:
                return self._error(FmpTransientError, endpoint, params,
                                   f"malformed JSON in a HTTP {status} answer ({len(body)} bytes)", status)
        if isinstance(data, dict) and "Error Message" in data:
            return self._classify(endpoint, params, status, str(data["Error Message"]))
        if status >= 400:
            return self._classify(endpoint, params, status, f"HTTP {status}")
        if isinstance(data, dict):
            data = [data] if data else []
        if not isinstance(data, list):
            return self._error(FmpApiError, endpoint, params, f"unexpected JSON {type(data).__name__}", status)
        return FmpResponse(endpoint, dict(params), status, body, data, converted_from=converted)

    def _classify(self, endpoint: str, params: dict[str, str], status: int, message: str) -> FmpError:
        low = message.lower()
        what = f"HTTP {status}: {message}"
        if status == 401 or "invalid api key" in low:
            return self._error(FmpAuthError, endpoint, params, f"FMP rejected the API key ({what})", status,
                               hint="check FMP_API_KEY (or unset it to use the local simulator)")
        if any(word in low for word in _QUOTA_WORDS) and ("limit" in low or status == 429):
            return self._error(FmpQuotaExhausted, endpoint, params, f"FMP quota used up ({what})", status,
                               hint="the run stopped; rerun after the quota resets (it resumes) "
                                    "or raise FMP_PLAN")
        if status == 429 or "limit reach" in low:
            return self._error(FmpRateLimited, endpoint, params, f"rate limited ({what})", status)
        if status in (402, 403) or any(word in low for word in _PLAN_WORDS):
            return self._error(FmpPlanError, endpoint, params,
                               f"endpoint {endpoint} is not available on this FMP plan ({what})", status,
                               hint="use an endpoint your plan covers or raise FMP_PLAN")
        if status >= 500:
            return self._error(FmpTransientError, endpoint, params, what, status)
        return self._error(FmpApiError, endpoint, params, f"FMP answered an error ({what})", status)


def _csv_records(body: bytes) -> list[dict[str, Any]]:
    """FMP's bulk endpoints may answer CSV; keep FMP's column names, numbers as numbers."""
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8", "replace"))))
    out = []
    for row in rows:
        record: dict[str, Any] = {}
        for key, value in row.items():
            try:
                record[key] = int(value) if value.isdigit() else float(value)
            except (ValueError, AttributeError):
                record[key] = value
        out.append(record)
    return out
