"""Realistic bronze for N symbols × D days, with the defects real feeds have.

Every record is tagged with its expected fate as it is written (kept, dropped
as a duplicate, or quarantined with a reason), so tests compare the job's
result with ground truth instead of with a second implementation.

    gen = generate_bronze(settings, ["AAPL", "MSFT"], trading_days("2024-03-15", 5))
    gen.expected["eod_prices", "2024-03-15"].rows       # silver rows the job must write
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import random
from collections import Counter
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from core import clock, lake

if TYPE_CHECKING:
    from core.settings import Settings

COMPANIES: dict[str, tuple[str, str, str, float]] = {
    # symbol: (name, sector, industry, starting price)
    "AAPL": ("Apple Inc.", "Technology", "Consumer Electronics", 190.0),
    "MSFT": ("Microsoft Corporation", "Technology", "Software - Infrastructure", 410.0),
    "GOOGL": ("Alphabet Inc.", "Communication Services", "Internet Content & Information", 150.0),
    "AMZN": ("Amazon.com, Inc.", "Consumer Cyclical", "Specialty Retail", 175.0),
    "NVDA": ("NVIDIA Corporation", "Technology", "Semiconductors", 880.0),
    "META": ("Meta Platforms, Inc.", "Communication Services", "Internet Content & Information", 500.0),
    "JPM": ("JPMorgan Chase & Co.", "Financial Services", "Banks - Diversified", 195.0),
    "V": ("Visa Inc.", "Financial Services", "Credit Services", 280.0),
    "JNJ": ("Johnson & Johnson", "Healthcare", "Drug Manufacturers - General", 158.0),
    "XOM": ("Exxon Mobil Corporation", "Energy", "Oil & Gas Integrated", 115.0),
    "TSLA": ("Tesla, Inc.", "Consumer Cyclical", "Auto - Manufacturers", 170.0),
    "WMT": ("Walmart Inc.", "Consumer Defensive", "Discount Stores", 60.0),
}
DEFAULT_SYMBOLS = tuple(COMPANIES)


@dataclass
class Defects:
    """How many of each defect to inject per dataset and date (0 = none)."""

    duplicates: int = 2          # exact copies of good records, in another file
    nulls: int = 1               # a record without its price; one kept record without vwap
    negative_prices: int = 1     # negative close, and one with high < low
    restatements: int = 2        # symbols re-ingested later with changed values
    missing_days: int = 1        # (symbol, date) pairs with no EOD record at all
    malformed: int = 1           # bad numbers, non-objects, bad dates, missing symbols, a broken file
    partial_ingestion: bool = True  # a newer ingestion without manifest (must be ignored)

    @classmethod
    def none(cls) -> Defects:
        return cls(**{f.name: 0 for f in fields(cls) if f.name != "partial_ingestion"},
                   partial_ingestion=False)

    @classmethod
    def coerce(cls, value: Defects | dict[str, Any] | str | None) -> Defects:
        if isinstance(value, Defects):
            return value
        if value in (None, "all"):
            return cls()
        if value == "none":
            return cls.none()
        if isinstance(value, dict):
            return cls(**value)
        raise ValueError(f"defects must be Defects, a dict, 'all' or 'none', not {value!r}")


@dataclass
class Expectation:
    read: int = 0
    rows: int = 0
    deduplicated: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    final: dict[tuple[str, ...], dict[str, Any]] = field(default_factory=dict)


@dataclass
class GeneratedBronze:
    symbols: list[str]
    dates: list[str]
    expected: dict[tuple[str, str], Expectation]
    restated: dict[tuple[str, str], list[str]]      # (dataset, date) -> restated symbols
    missing: list[tuple[str, str]]                  # (symbol, date) without EOD
    files: int = 0

    def summary(self) -> dict[str, Any]:
        return {"symbols": len(self.symbols), "dates": len(self.dates), "files": self.files,
                "missing_days": len(self.missing),
                "injected": {f"{d}/{day}": {"duplicates": e.deduplicated,
                                            "quarantined": dict(e.quarantined)}
                             for (d, day), e in sorted(self.expected.items())}}


def trading_days(end: str | dt.date, count: int) -> list[str]:
    """The ``count`` weekdays up to and including ``end`` (holidays ignored)."""
    day = dt.date.fromisoformat(str(end))
    out: list[str] = []
    while len(out) < count:
        if day.weekday() < 5:
            out.append(day.isoformat())
        day -= dt.timedelta(days=1)
    return sorted(out)


def synthetic_symbols(count: int) -> list[str]:
    """Known large caps first, then made-up tickers for bigger universes."""
    known = list(DEFAULT_SYMBOLS[:count])
    return known + [f"Z{i:05d}" for i in range(count - len(known))]


class _Writer:
    def __init__(self, settings: Settings, bronze: str) -> None:
        self.fs, self.root = lake.filesystem(bronze, settings)
        self.files = 0

    def ingestion(self, dataset: str, date: str, stamp: str, parts: list[bytes],
                  symbols: dict[str, dict[str, Any]], manifest: bool = True) -> None:
        base = f"{self.root.rstrip('/')}/fmp/{dataset}/date={date}/ingested_at={stamp}"
        self.fs.create_dir(base, recursive=True)
        entries = []
        for n, body in enumerate(parts):
            data = gzip.compress(body, compresslevel=1)
            with self.fs.open_output_stream(f"{base}/part-{n}.json.gz", compression=None) as fh:
                fh.write(data)
            self.files += 1
            try:
                records = len(json.loads(body))
            except ValueError:
                records = 0
            entries.append({"path": f"part-{n}.json.gz", "sha256": hashlib.sha256(data).hexdigest(),
                            "records": records})
        if not manifest:
            return
        doc = {"dataset": dataset, "date": date, "ingested_at": stamp, "schema_version": 1,
               "symbols": symbols, "files": entries, "plan": "starter", "calls": len(symbols),
               "calls_per_minute": 300, "generator": "jobs.testdata"}
        with self.fs.open_output_stream(f"{base}/_manifest.json") as fh:
            fh.write(json.dumps(doc, indent=2).encode())


def _eod(rng: random.Random, symbol: str, date: str, prev: float) -> dict[str, Any]:
    close = round(max(1.0, prev * (1 + rng.gauss(0, 0.015))), 2)
    open_ = round(prev * (1 + rng.gauss(0, 0.004)), 2)
    high = round(max(open_, close) * (1 + abs(rng.gauss(0, 0.006))), 2)
    low = round(min(open_, close) * (1 - abs(rng.gauss(0, 0.006))), 2)
    change = round(close - open_, 4)
    return {"symbol": symbol, "date": date, "open": open_, "high": high, "low": low, "close": close,
            "volume": rng.randint(2_000_000, 90_000_000), "change": change,
            "changePercent": round(change / open_ * 100, 5),
            "vwap": round((high + low + close) / 3, 4)}


def _quote(eod: dict[str, Any], prev_close: float, name: str) -> dict[str, Any]:
    ts = int(dt.datetime.fromisoformat(eod["date"] + "T20:00:00+00:00").timestamp())
    return {"symbol": eod["symbol"], "name": name, "price": eod["close"],
            "changePercentage": round((eod["close"] - prev_close) / prev_close * 100, 5),
            "change": round(eod["close"] - prev_close, 4), "volume": eod["volume"],
            "dayLow": eod["low"], "dayHigh": eod["high"], "yearHigh": round(eod["high"] * 1.2, 2),
            "yearLow": round(eod["low"] * 0.7, 2), "marketCap": round(eod["close"] * 5e9),
            "priceAvg50": round(prev_close * 0.98, 4), "priceAvg200": round(prev_close * 0.93, 4),
            "exchange": "NASDAQ", "open": eod["open"], "previousClose": prev_close, "timestamp": ts}


def _profile(symbol: str, close: float) -> dict[str, Any]:
    name, sector, industry, _ = COMPANIES.get(symbol, (f"{symbol} Holdings", "Industrials",
                                                       "Conglomerates", 50.0))
    return {"symbol": symbol, "price": close, "marketCap": round(close * 5e9), "beta": 1.1,
            "lastDividend": 0.96, "range": f"{round(close * 0.7, 2)}-{round(close * 1.2, 2)}",
            "change": 0.0, "changePercentage": 0.0, "volume": 50_000_000, "averageVolume": 55_000_000,
            "companyName": name, "currency": "USD", "cik": "0000000000", "isin": f"US{symbol:0>9}0",
            "cusip": f"{symbol:0>9}", "exchangeFullName": "NASDAQ Global Select", "exchange": "NASDAQ",
            "industry": industry, "website": f"https://www.{symbol.lower()}.example",
            "description": f"{name} profile.", "ceo": "Jane Doe", "sector": sector, "country": "US",
            "fullTimeEmployees": "150000", "phone": "000", "address": "1 Main St", "city": "Town",
            "state": "CA", "zip": "00000", "image": "", "ipoDate": "1990-01-02", "defaultImage": False,
            "isEtf": False, "isActivelyTrading": True, "isAdr": False, "isFund": False}


_BROKEN_BODY = b'[{"symbol": "AAPL", "date": "20'   # a response cut off mid-body


def _day(kind: str, date: str, good: list[dict[str, Any]], d: Defects, exp: Expectation,
         other_day: str) -> tuple[list[list[Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Files of the first ingestion, the restated records, and a never-completed ingestion."""
    key_cols = ("symbol",) if kind == "profiles" else ("symbol", "date")
    price = {"eod_prices": "close", "quotes": "price", "profiles": "marketCap"}[kind]

    def key(rec: dict[str, Any]) -> tuple[str, ...]:
        return tuple(rec.get(c, date) for c in key_cols)

    half = max(1, len(good) // 2)
    part0, part1 = [dict(r) for r in good[:half]], [dict(r) for r in good[half:]]
    if d.nulls and kind == "eod_prices" and part0:
        part0[0]["vwap"] = None                                  # kept: vwap is optional
    kept = part0 + part1
    dupes = [dict(r) for r in kept[: d.duplicates]]
    part1 += dupes
    exp.deduplicated += len(dupes)

    def bad(reason: str, rec: Any) -> None:
        part0.append(rec)
        exp.quarantined[reason] += 1

    base = dict(kept[0])
    for _ in range(d.nulls):
        null_field = {"eod_prices": "close", "quotes": "price", "profiles": "companyName"}[kind]
        reason = {"eod_prices": "missing_close", "quotes": "missing_price",
                  "profiles": "missing_company_name"}[kind]
        bad(reason, dict(base, **{null_field: None}))
    for _ in range(d.negative_prices):
        negative = {"eod_prices": "non_positive_price", "quotes": "non_positive_price",
                    "profiles": "negative_value"}[kind]
        bad(negative, dict(base, **{price: -abs(base[price])}))
        if kind == "eod_prices":
            bad("high_below_low", dict(base, high=base["low"], low=base["high"]))
    for _ in range(d.malformed):
        bad("malformed_number", dict(base, **{price: "n/a"}))
        bad("not_an_object", "Limit Reach . Please upgrade your plan" if kind != "profiles" else 42)
        bad("missing_symbol", {k: v for k, v in base.items() if k != "symbol"})
        if kind == "eod_prices":
            bad("bad_date", dict(base, date="2024-02-30"))
            bad("outside_partition_date", dict(base, date=other_day))
    restated = []
    for rec in kept[: d.restatements]:
        new = dict(rec)
        if kind == "eod_prices":     # FMP restates volume and vwap (seen in the recordings)
            new.update(volume=int(rec["volume"]) + 12_345, vwap=round(rec["high"] * 0.999, 4))
        elif kind == "quotes":
            new.update(volume=int(rec["volume"]) + 1_000)
        else:
            new.update(marketCap=rec["marketCap"] + 1_000_000)
        restated.append(new)
    exp.deduplicated += len(restated)
    for rec in kept:
        exp.final[key(rec)] = rec
    for rec in restated:
        exp.final[key(rec)] = rec
    exp.rows = len(exp.final)
    parts: list[list[Any]] = [part0, part1]
    exp.read = len(part0) + len(part1) + len(restated)
    partial = [dict(kept[0], **{price: 999_999.0})] if d.partial_ingestion else []
    return parts, restated, partial


def generate_bronze(settings: Settings, symbols: list[str] | None = None,
                    dates: list[str] | None = None,
                    defects: Defects | dict[str, Any] | str | None = None, *, seed: int = 7,
                    ingested_at: dt.datetime | None = None,
                    datasets: tuple[str, ...] = ("quotes", "profiles", "eod")) -> GeneratedBronze:
    """Write bronze for ``symbols`` × ``dates`` in the connector's layout and
    return what a correct job must make of it."""
    syms = list(symbols or DEFAULT_SYMBOLS[:5])
    days = sorted(dates or trading_days(dt.date.today(), 3))
    d = Defects.coerce(defects)
    rng = random.Random(seed)
    now = (ingested_at or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    writer = _Writer(settings, lake.zone_uri(settings, "bronze"))
    prices = {s: COMPANIES[s][3] if s in COMPANIES else round(20 + rng.random() * 300, 2) for s in syms}
    missing = [(syms[-1 - i % len(syms)], days[(1 + i) % len(days)]) for i in range(d.missing_days)]
    expected: dict[tuple[str, str], Expectation] = {}
    restated_syms: dict[tuple[str, str], list[str]] = {}
    folder = {"eod_prices": "eod", "quotes": "quotes", "profiles": "profiles"}
    for i, date in enumerate(days):
        first = clock.stamp(now - dt.timedelta(hours=2, minutes=len(days) - i))
        second = clock.stamp(now - dt.timedelta(minutes=len(days) - i))
        third = clock.stamp(now + dt.timedelta(minutes=i + 1))
        eods, quotes, profiles = [], [], []
        for s in syms:
            prev = prices[s]
            rec = _eod(rng, s, date, prev)
            prices[s] = rec["close"]
            if (s, date) not in missing:
                eods.append(rec)
            quotes.append(_quote(rec, prev, COMPANIES.get(s, (f"{s} Holdings",))[0]))
            profiles.append(_profile(s, rec["close"]))
        other_day = days[i - 1] if i else (dt.date.fromisoformat(date) - dt.timedelta(days=1)).isoformat()
        for kind, good in (("eod_prices", eods), ("quotes", quotes), ("profiles", profiles)):
            if folder[kind] not in datasets or not good:
                continue
            exp = expected.setdefault((kind, date), Expectation())
            parts, restated, partial = _day(kind, date, good, d, exp, other_day)
            bodies = [json.dumps(p).encode() for p in parts]
            if d.malformed:
                bodies.append(_BROKEN_BODY)
                exp.quarantined["unparseable_file"] += 1
                exp.read += 1
            status = {s: {"status": "ok", "records": 1, "error": None} for s in syms}
            if kind == "eod_prices":
                for s, day in missing:
                    if day == date:
                        status[s] = {"status": "no_data", "records": 0, "error": None}
            writer.ingestion(folder[kind], date, first, bodies, status)
            if restated:
                restated_syms[(kind, date)] = [r["symbol"] for r in restated]
                writer.ingestion(folder[kind], date, second, [json.dumps(restated).encode()],
                                 {r["symbol"]: {"status": "ok", "records": 1, "error": None}
                                  for r in restated})
            if partial:
                writer.ingestion(folder[kind], date, third, [json.dumps(partial).encode()], {},
                                 manifest=False)
    return GeneratedBronze(syms, days, expected, restated_syms, missing, writer.files)
