"""Deterministic synthetic market data for the simulator.

Each symbol gets its own seeded random walk over trading days (weekdays less
a few fixed holidays) from 2019-01-02, generated lazily and cached, so any
date's answer is the same in every run and process. Records carry exactly
the field names and JSON types of the recorded /stable responses.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import math
import random
import threading
from typing import Any

from connectors.fmp.universe import WELL_KNOWN

BASE_DATE = dt.date(2019, 1, 2)
LAST_DATE = dt.date(2040, 12, 31)
_HOLIDAYS = {(1, 1), (7, 4), (12, 25)}
_NAMES = {"AAPL": "Apple Inc.", "MSFT": "Microsoft Corporation", "GOOGL": "Alphabet Inc.",
          "AMZN": "Amazon.com, Inc.", "NVDA": "NVIDIA Corporation", "META": "Meta Platforms, Inc.",
          "TSLA": "Tesla, Inc.", "JPM": "JPMorgan Chase & Co."}
_SECTORS = {"Technology": ["Consumer Electronics", "Software - Infrastructure", "Semiconductors"],
            "Healthcare": ["Drug Manufacturers - General", "Medical Devices"],
            "Financial Services": ["Banks - Diversified", "Credit Services"],
            "Consumer Defensive": ["Beverages - Non-Alcoholic", "Discount Stores"],
            "Energy": ["Oil & Gas Integrated"], "Industrials": ["Aerospace & Defense"]}
_EXCHANGES = {"NASDAQ": "NASDAQ Global Select", "NYSE": "New York Stock Exchange"}


def _trading_days() -> list[dt.date]:
    days, day = [], BASE_DATE
    while day <= LAST_DATE:
        if day.weekday() < 5 and (day.month, day.day) not in _HOLIDAYS:
            days.append(day)
        day += dt.timedelta(days=1)
    return days


TRADING_DAYS = _trading_days()


def day_index(date: dt.date) -> int:
    """Index of the last trading day on or before ``date`` (-1 before the start)."""
    return bisect.bisect_right(TRADING_DAYS, date) - 1


def _rng(seed: int, *parts: str) -> random.Random:
    digest = hashlib.sha256(":".join([str(seed), *parts]).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


Bar = tuple[float, float, float, float, int, float]  # open, high, low, close, volume, vwap
BLOCK = 32  # trading days per block of the walk


class MarketData:
    """Prices and profiles for a universe; thread-safe, lazily generated.

    The walk is generated in blocks of 32 days: each block's total log-return
    is drawn from its own seed, and the days inside a block form a bridge that
    sums to it. Any date therefore costs one draw per earlier block plus one
    block, not a replay of every day since 2019 (bulk EOD touches 1000 symbols).
    """

    def __init__(self, symbols: tuple[str, ...], seed: int = 7) -> None:
        self.symbols = symbols
        self.known = frozenset(symbols)
        self.seed = seed
        self._prefix: dict[str, list[float]] = {}
        self._blocks: dict[tuple[str, int], list[Bar]] = {}
        self._lock = threading.Lock()

    def _params(self, symbol: str) -> tuple[float, float, float]:
        rng = _rng(self.seed, symbol, "walk")
        return rng.uniform(15, 450), rng.uniform(0.008, 0.03), rng.uniform(2e5, 8e7)

    def _start_log(self, symbol: str, block: int, vol: float) -> float:
        """Cumulative log-return at the start of ``block`` (caller holds the lock)."""
        prefix = self._prefix.setdefault(symbol, [0.0])
        while len(prefix) <= block:
            b = len(prefix) - 1
            prefix.append(prefix[-1] + _rng(self.seed, symbol, f"b{b}").gauss(0.0003 * BLOCK, vol * BLOCK**0.5))
        return prefix[block]

    def _block(self, symbol: str, block: int) -> list[Bar]:
        with self._lock:
            cached = self._blocks.get((symbol, block))
            if cached is not None:
                return cached
            p0, vol, base_volume = self._params(symbol)
            start, end = self._start_log(symbol, block, vol), self._start_log(symbol, block + 1, vol)
            if len(self._blocks) > 20_000:  # bound memory: the simulator may run for days
                self._blocks.clear()
        rng = _rng(self.seed, symbol, f"d{block}")
        steps = [rng.gauss(0, vol) for _ in range(BLOCK)]
        shift = (end - start - sum(steps)) / BLOCK
        level, prev, bars = start, p0 * math.exp(start), []
        for step in steps:
            level += step + shift
            close = p0 * math.exp(level)
            open_ = prev * math.exp(rng.gauss(0, vol / 3))
            high = max(open_, close) * (1 + abs(rng.gauss(0, vol / 2)))
            low = min(open_, close) * (1 - abs(rng.gauss(0, vol / 2)))
            volume = int(base_volume * math.exp(rng.gauss(0, 0.35)))
            bars.append((round(open_, 2), round(high, 2), round(low, 2), round(close, 2), volume,
                         round((high + low + close) / 3, 4)))
            prev = close
        with self._lock:
            self._blocks[(symbol, block)] = bars
        return bars

    def bar(self, symbol: str, i: int) -> Bar:
        return self._block(symbol, i // BLOCK)[i % BLOCK]

    def bars(self, symbol: str, first: int, last: int) -> list[Bar]:
        """Bars ``first..last`` inclusive (indexes into TRADING_DAYS)."""
        out: list[Bar] = []
        for block in range(first // BLOCK, last // BLOCK + 1):
            out.extend(self._block(symbol, block))
        offset = (first // BLOCK) * BLOCK
        return out[first - offset: last - offset + 1]

    def eod(self, symbol: str, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
        if symbol not in self.known:
            return []
        first, last = max(day_index(start - dt.timedelta(days=1)) + 1, 0), day_index(end)
        if last < 0 or last < first:
            return []
        lo_i = max(first - 1, 0)
        bars = self.bars(symbol, lo_i, last)
        rows = []
        for i in range(last, first - 1, -1):  # newest first, like FMP
            o, h, lo, c, v, w = bars[i - lo_i]
            prev = bars[i - lo_i - 1][3] if i > lo_i else o
            rows.append({"symbol": symbol, "date": TRADING_DAYS[i].isoformat(), "open": o, "high": h,
                         "low": lo, "close": c, "volume": v, "change": round(c - prev, 4),
                         "changePercent": round((c / prev - 1) * 100, 5), "vwap": w})
        return rows

    def bulk_eod(self, date: dt.date) -> list[dict[str, Any]]:
        i = day_index(date)
        if i < 0 or TRADING_DAYS[i] != date:
            return []
        out = []
        for symbol in self.symbols:
            o, h, lo, c, v, _ = self.bar(symbol, i)
            out.append({"symbol": symbol, "date": date.isoformat(), "open": o, "low": lo, "high": h,
                        "close": c, "adjClose": c, "volume": v})
        return out

    def quote(self, symbol: str, date: dt.date) -> list[dict[str, Any]]:
        i = day_index(date)
        if symbol not in self.known or i < 0:
            return []
        year = self.bars(symbol, max(0, i - 251), i)  # the last 252 sessions, oldest first
        o, h, lo, c, v, _ = year[-1]
        prev = year[-2][3] if len(year) > 1 else o

        def avg(n: int) -> float:
            window = year[-n:]
            return round(sum(b[3] for b in window) / len(window), 5)

        day = TRADING_DAYS[i]
        stamp = int(dt.datetime(day.year, day.month, day.day, 20, 0, 1, tzinfo=dt.UTC).timestamp())
        return [{"symbol": symbol, "name": self._name(symbol), "price": c,
                 "changePercentage": round((c / prev - 1) * 100, 5), "change": round(c - prev, 4),
                 "volume": v, "dayLow": lo, "dayHigh": h, "yearHigh": max(b[1] for b in year),
                 "yearLow": min(b[2] for b in year), "marketCap": int(c * self._shares(symbol)),
                 "priceAvg50": avg(50), "priceAvg200": avg(200), "exchange": self._exchange(symbol),
                 "open": o, "previousClose": prev, "timestamp": stamp}]

    def profile(self, symbol: str, date: dt.date) -> list[dict[str, Any]]:
        quote = self.quote(symbol, date)
        if not quote:
            return []
        q = quote[0]
        rng = _rng(self.seed, symbol, "profile")
        sector = rng.choice(sorted(_SECTORS))
        exchange = self._exchange(symbol)
        cik = f"{rng.randrange(10**9):010d}"
        cusip = f"{rng.randrange(10**8):08d}{rng.randrange(10)}"
        return [{"symbol": symbol, "price": q["price"], "marketCap": q["marketCap"],
                 "beta": round(rng.uniform(0.4, 2.2), 3), "lastDividend": round(rng.uniform(0, 4), 2),
                 "range": f"{q['yearLow']}-{q['yearHigh']}", "change": q["change"],
                 "changePercentage": q["changePercentage"], "volume": q["volume"],
                 "averageVolume": int(q["volume"] * rng.uniform(0.7, 1.3)),
                 "companyName": self._name(symbol), "currency": "USD", "cik": cik,
                 "isin": f"US{cusip}{rng.randrange(10)}", "cusip": cusip,
                 "exchangeFullName": _EXCHANGES[exchange], "exchange": exchange,
                 "industry": rng.choice(_SECTORS[sector]), "website": f"https://www.{symbol.lower()}.example",
                 "description": f"{self._name(symbol)} is a synthetic company of the Finks FMP simulator.",
                 "ceo": "Jane Q. Public", "sector": sector, "country": "US",
                 "fullTimeEmployees": str(rng.randrange(50, 400_000)), "phone": "(555) 010-0000",
                 "address": "1 Market Street", "city": "New York", "state": "NY", "zip": "10001",
                 "image": f"https://images.financialmodelingprep.com/symbol/{symbol}.png",
                 "ipoDate": f"{rng.randrange(1980, 2018)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
                 "defaultImage": False, "isEtf": False, "isActivelyTrading": True, "isAdr": False,
                 "isFund": False}]

    def _name(self, symbol: str) -> str:
        return _NAMES.get(symbol) or f"{symbol.title()} {'Holdings' if len(symbol) == 3 else 'Group'} Inc."

    def _exchange(self, symbol: str) -> str:
        return "NASDAQ" if _rng(self.seed, symbol, "x").random() < 0.55 or symbol in WELL_KNOWN[:7] else "NYSE"

    def _shares(self, symbol: str) -> float:
        return _rng(self.seed, symbol, "shares").uniform(5e7, 1.6e10)
