"""An FMP-compatible HTTP server: same /stable paths, JSON shapes and error bodies.

It is the local environment's market data source (``finks fmp-sim``), the
pytest fixture ``fmp_sim`` and the benchmark's target. Deterministic data
come from :mod:`connectors.fmp.simdata`; limits and faults are options::

    with SimulatorServer(port=0, calls_per_minute=300, faults=Faults(error_rate=0.1)) as sim:
        httpx.get(f"{sim.base_url}/stable/quote", params={"symbol": "AAPL"})

Extension (not in FMP): quote and profile accept ``date=YYYY-MM-DD`` to answer
as of that trading day; without it they answer as of today.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from connectors.fmp.simdata import MarketData
from connectors.fmp.universe import SIM_UNIVERSE_SIZE, synthetic_symbols

# Bodies as FMP words them (fmp-samples/README); the daily/bandwidth wording is ours.
LIMIT_BODY = {"Error Message": "Limit Reach . Please upgrade your plan or visit our documentation for "
                               "more details at https://site.financialmodelingprep.com/"}
DAILY_BODY = {"Error Message": "Limit Reach . You have reached your daily limit of API calls. Please "
                               "upgrade your plan at https://site.financialmodelingprep.com/"}
INVALID_KEY_BODY = {"Error Message": "Invalid API KEY. Feel free to create a Free API Key or visit "
                                     "https://site.financialmodelingprep.com/faqs for more information."}
RESTRICTED_BODY = {"Error Message": "Restricted Endpoint: This endpoint is not available under your "
                                    "current subscription please visit our subscription page to upgrade."}
LEGACY_BODY = {"Error Message": "Legacy Endpoint : Due to Legacy endpoints being no longer supported - "
                                "This endpoint is only available for legacy users."}
SYMBOL_FAULTS = ("500", "503", "malformed", "error200", "401", "402", "invalid", "empty", "slow")


@dataclass
class Faults:
    """Fault injection. Rates are per request (seeded); symbol faults are deterministic."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 500
    malformed_rate: float = 0.0
    error_200_rate: float = 0.0
    invalid_key: bool = False
    daily_limit: int | None = None
    restricted: frozenset[str] = frozenset()
    symbol_faults: dict[str, str] = field(default_factory=dict)
    fail_first: dict[str, int] = field(default_factory=dict)  # symbol -> leading 503s
    slow_s: float = 5.0

    def __post_init__(self) -> None:
        for symbol, kind in self.symbol_faults.items():
            if kind not in SYMBOL_FAULTS:
                raise ValueError(f"unknown fault {kind!r} for {symbol}; use one of {', '.join(SYMBOL_FAULTS)}")


@dataclass
class SimStats:
    requests: int = 0
    accepted: int = 0
    rejected_429: int = 0
    by_path: dict[str, int] = field(default_factory=dict)
    accepted_at: deque[float] = field(default_factory=lambda: deque(maxlen=200_000))
    keys_seen: set[str] = field(default_factory=set)

    def max_in_window(self, window_s: float = 60.0) -> int:
        """Most accepted calls in any window of ``window_s`` (half-open)."""
        times, best, lo = list(self.accepted_at), 0, 0
        for hi, t in enumerate(times):
            while times[lo] + window_s <= t:
                lo += 1
            best = max(best, hi - lo + 1)
        return best


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    sim: SimulatorServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)  # a client that gave up is not our error


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        status, body, ctype = self.server.sim.answer(self.path, self.headers.get("apikey"))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class SimulatorServer:
    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        calls_per_minute: int | None = None,
        window_s: float = 60.0,
        seed: int = 7,
        faults: Faults | None = None,
        universe_size: int = SIM_UNIVERSE_SIZE,
        api_keys: set[str] | None = None,
        today: dt.date | None = None,
    ) -> None:
        self.host, self.requested_port = host, port
        self.calls_per_minute, self.window_s = calls_per_minute, window_s
        self.faults = faults or Faults()
        self.api_keys = api_keys
        self.today = today
        self.data = MarketData(synthetic_symbols(universe_size, 7), seed)
        self.stats = SimStats()
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._window: deque[float] = deque()
        self._seen: dict[str, int] = {}
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ---------------------------------------------------------
    def start(self) -> Self:
        self._httpd = _Server((self.host, self.requested_port), _Handler)
        self._httpd.sim = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fmp-sim", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "simulator not started"
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def reset_stats(self) -> None:
        with self._lock:
            self.stats = SimStats()
            self._window.clear()
            self._seen.clear()

    # ---- answering -----------------------------------------------------------
    def answer(self, raw_path: str, header_key: str | None) -> tuple[int, bytes, str]:
        parts = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        key = query.pop("apikey", None) or header_key
        path = parts.path.rstrip("/")
        if self.faults.latency_ms:
            time.sleep(self.faults.latency_ms / 1000)
        with self._lock:
            verdict = self._admit(path, key, query.get("symbol", ""))
        if verdict is not None:
            return verdict
        return self._route(path, query)

    def _admit(self, path: str, key: str | None, symbol: str) -> tuple[int, bytes, str] | None:
        """Counting, limits and injected faults, under the lock (deterministic order)."""
        stats, now, f = self.stats, time.monotonic(), self.faults
        stats.requests += 1
        stats.by_path[path] = stats.by_path.get(path, 0) + 1
        if key:
            stats.keys_seen.add(key)
        if path.startswith("/api/"):
            return _json(403, LEGACY_BODY)
        if f.invalid_key or (self.api_keys is not None and key not in self.api_keys):
            return _json(401, INVALID_KEY_BODY)
        if f.daily_limit is not None and stats.accepted >= f.daily_limit:
            stats.rejected_429 += 1
            return _json(429, DAILY_BODY)
        if self.calls_per_minute is not None:
            while self._window and self._window[0] + self.window_s <= now:
                self._window.popleft()
            if len(self._window) >= self.calls_per_minute:
                stats.rejected_429 += 1
                return _json(429, LIMIT_BODY)
            self._window.append(now)
        stats.accepted += 1
        stats.accepted_at.append(now)
        if path in f.restricted:
            return _json(402, RESTRICTED_BODY)
        seen = self._seen[symbol] = self._seen.get(symbol, 0) + 1
        if symbol and seen <= f.fail_first.get(symbol, 0):
            return 503, b"<html><body>503 Service Unavailable</body></html>", "text/html"
        kind = f.symbol_faults.get(symbol)
        if kind is None:
            roll = self._rng.random()
            for rate, name in ((f.error_rate, "5xx"), (f.malformed_rate, "malformed"),
                               (f.error_200_rate, "error200")):
                if roll < rate:
                    kind = name
                    break
                roll -= rate
        return self._fault(kind) if kind else None

    def _fault(self, kind: str) -> tuple[int, bytes, str] | None:
        if kind in ("500", "503", "5xx"):
            status = int(kind) if kind.isdigit() else self.faults.error_status
            return status, b"<html><body>Server Error</body></html>", "text/html"
        if kind == "malformed":
            return 200, b'[{"symbol": "AAPL", "price": 1', "application/json"
        if kind == "error200":
            return _json(200, {"Error Message": "Something went wrong on our side (simulated)."})
        if kind == "401":
            return _json(401, INVALID_KEY_BODY)
        if kind == "402":
            return _json(402, RESTRICTED_BODY)
        return None  # "invalid" / "empty" / "slow" shape the data in _route

    def _route(self, path: str, q: dict[str, str]) -> tuple[int, bytes, str]:
        symbol = q.get("symbol", "").upper()
        kind = self.faults.symbol_faults.get(symbol)
        if kind == "slow":
            time.sleep(self.faults.slow_s)  # outside the lock: only this request is slow
        try:
            today = _day(q.get("date")) or self.today or dt.datetime.now(dt.UTC).date()
            if path == "/stable/quote":
                data = self.data.quote(symbol, today)
            elif path == "/stable/batch-quote":
                data = [r for s in q.get("symbols", "").upper().split(",") for r in self.data.quote(s, today)]
            elif path == "/stable/profile":
                data = self.data.profile(symbol, today)
            elif path == "/stable/historical-price-eod/full":
                start = _day(q.get("from")) or today - dt.timedelta(days=365)
                data = self.data.eod(symbol, start, _day(q.get("to")) or today)
            elif path == "/stable/eod-bulk":
                if "date" not in q:
                    return _json(400, {"Error Message": "Invalid parameters: date is required."})
                data = self.data.bulk_eod(today)
            else:
                return _json(404, {"Error Message": f"Unknown endpoint {path}"})
        except ValueError as exc:
            return _json(400, {"Error Message": f"Invalid parameters: {exc}"})
        if kind == "empty":
            data = []
        elif kind == "invalid" and data:
            data = [dict(data[0], price="not-a-price", volume="many", symbol="")] + data[1:]
        return _json(200, data)


def _day(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def _json(status: int, payload: Any) -> tuple[int, bytes, str]:
    return status, json.dumps(payload, indent=2).encode(), "application/json"
