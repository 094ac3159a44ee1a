"""A small, deterministic gold publication that honours the column contract.

Used by the tests and by the cache check, which must not touch the real gold
of the environment. Values follow simple arithmetic so tests can predict them.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

SYMBOLS = {  # symbol: (base close, company, sector, exchange)
    "AAPL": (180.0, "Apple Inc.", "Technology", "NASDAQ"),
    "MSFT": (370.0, "Microsoft Corporation", "Technology", "NASDAQ"),
    "KO": (60.0, "The Coca-Cola Company", "Consumer Defensive", "NYSE"),
}
PORTFOLIOS = {"growth": {"AAPL": 10.0, "MSFT": 5.0}, "income": {"KO": 100.0, "MSFT": 1.5}}


@dataclass
class SampleGold:
    dates: list[date]
    run_id: str
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def symbols(self) -> list[str]:
        return sorted(SYMBOLS)

    @property
    def portfolios(self) -> list[str]:
        return sorted(PORTFOLIOS)


def trading_days(start: date, count: int) -> list[date]:
    days: list[date] = []
    day = start
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def close_of(symbol: str, index: int) -> float:
    return round(SYMBOLS[symbol][0] + index * 1.5, 2)


def _parquet(rows: list[dict[str, Any]], schema: Any) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buffer)
    return buffer.getvalue()


def build(
    days: int = 5,
    start: date = date(2024, 1, 2),
    run_id: str = "sample-1",
    published_at: datetime | None = None,
    price_offset: float = 0.0,
) -> SampleGold:
    import pyarrow as pa

    f64, d = pa.float64(), pa.date32()
    dates = trading_days(start, days)
    prices: list[dict[str, Any]] = []
    positions: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    for i, day in enumerate(dates):
        for sym in SYMBOLS:
            close = close_of(sym, i) + price_offset
            prev = close_of(sym, i - 1) + price_offset if i else None
            prices.append(
                {
                    "symbol": sym,
                    "date": day,
                    "open": close - 1,
                    "high": close + 2,
                    "low": close - 2,
                    "close": close,
                    "volume": 1_000_000 + i * 1000,
                    "vwap": close - 0.5,
                    "change": None if prev is None else round(close - prev, 4),
                    "change_pct": None if prev is None else round((close - prev) / prev * 100, 6),
                }
            )
        for pid, holdings in PORTFOLIOS.items():
            values = {s: n * (close_of(s, i) + price_offset) for s, n in holdings.items()}
            total = sum(values.values())
            cost = sum(n * SYMBOLS[s][0] for s, n in holdings.items())
            for sym, shares in holdings.items():
                positions.append(
                    {
                        "portfolio_id": pid,
                        "date": day,
                        "symbol": sym,
                        "shares": shares,
                        "close": close_of(sym, i) + price_offset,
                        "market_value": values[sym],
                        "cost_basis": shares * SYMBOLS[sym][0],
                        "unrealized_pnl": values[sym] - shares * SYMBOLS[sym][0],
                        "weight": values[sym] / total,
                    }
                )
            prev_total = summary[-len(PORTFOLIOS)]["market_value"] if i else None
            summary.append(
                {
                    "portfolio_id": pid,
                    "date": day,
                    "market_value": total,
                    "cost_basis": cost,
                    "unrealized_pnl": total - cost,
                    "unrealized_pnl_pct": (total - cost) / cost * 100,
                    "day_change": None if prev_total is None else total - prev_total,
                    "day_change_pct": None
                    if prev_total is None
                    else (total - prev_total) / prev_total * 100,
                    "position_count": len(holdings),
                }
            )
    companies = [
        {
            "symbol": s,
            "company_name": name,
            "exchange": exch,
            "sector": sector,
            "industry": None,
            "country": "US",
            "currency": "USD",
            "market_cap": base * 1e9,
        }
        for s, (base, name, sector, exch) in SYMBOLS.items()
    ]
    schemas = {
        "fct_daily_prices": pa.schema(
            [
                ("symbol", pa.string()),
                ("date", d),
                ("open", f64),
                ("high", f64),
                ("low", f64),
                ("close", f64),
                ("volume", pa.int64()),
                ("vwap", f64),
                ("change", f64),
                ("change_pct", f64),
            ]
        ),
        "fct_portfolio_positions": pa.schema(
            [
                ("portfolio_id", pa.string()),
                ("date", d),
                ("symbol", pa.string()),
                *[
                    (c, f64)
                    for c in (
                        "shares",
                        "close",
                        "market_value",
                        "cost_basis",
                        "unrealized_pnl",
                        "weight",
                    )
                ],
            ]
        ),
        "daily_portfolio_summary": pa.schema(
            [
                ("portfolio_id", pa.string()),
                ("date", d),
                *[
                    (c, f64)
                    for c in (
                        "market_value",
                        "cost_basis",
                        "unrealized_pnl",
                        "unrealized_pnl_pct",
                        "day_change",
                        "day_change_pct",
                    )
                ],
                ("position_count", pa.int64()),
            ]
        ),
        "dim_company": pa.schema(
            [
                *[
                    (c, pa.string())
                    for c in (
                        "symbol",
                        "company_name",
                        "exchange",
                        "sector",
                        "industry",
                        "country",
                        "currency",
                    )
                ],
                ("market_cap", f64),
            ]
        ),
    }
    data: dict[str, list[dict[str, Any]]] = {
        "fct_daily_prices": prices,
        "fct_portfolio_positions": positions,
        "daily_portfolio_summary": summary,
        "dim_company": companies,
    }
    sample = SampleGold(dates, run_id)
    for model, rows in data.items():
        sample.files[f"marts/{model}.parquet"] = _parquet(rows, schemas[model])
    sample.files["_published.json"] = published_json(run_id, published_at)
    return sample


def published_json(run_id: str, published_at: datetime | None = None) -> bytes:
    when = (published_at or datetime.now(UTC)).isoformat()
    models = [
        "daily_portfolio_summary",
        "fct_daily_prices",
        "dim_company",
        "fct_portfolio_positions",
    ]
    return json.dumps(
        {"run_id": run_id, "published_at": when, "models": models, "tests_passed": 12}
    ).encode()


def write(sample: SampleGold, gold_uri: str, s3_client: Any = None) -> None:
    """Write the marts first and ``_published.json`` last, like a real publish."""
    names = sorted(sample.files, key=lambda n: n == "_published.json")
    for name in names:
        if gold_uri.startswith("s3://"):
            bucket, _, prefix = gold_uri.removeprefix("s3://").partition("/")
            key = f"{prefix.rstrip('/')}/{name}".lstrip("/")
            s3_client.put_object(Bucket=bucket, Key=key, Body=sample.files[name])
        else:
            path = Path(gold_uri) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(sample.files[name])
