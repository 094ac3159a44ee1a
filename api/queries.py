"""The SQL the API runs, written once for both DuckDB and Athena (Trino).

Tables are ``{model}`` placeholders that each backend renders (a Parquet scan
for DuckDB, ``"database"."model"`` for Athena); values are always ``?``
parameters, never interpolated, except a page's ``OFFSET``/``LIMIT``: integers
the API has validated, written into the SQL because Athena's execution
parameters are documented for values, not for those clauses. ``OFFSET`` comes
before ``LIMIT``, the only order Trino accepts (DuckDB takes both). ``"date"``
is quoted because it is a type name in both dialects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

Param = str | int | float | date


@dataclass(frozen=True)
class Query:
    name: str
    sql: str
    params: tuple[Param, ...] = ()

    @property
    def cache_key(self) -> tuple[str, tuple[str, ...]]:
        return self.name, tuple(
            p.isoformat() if isinstance(p, date) else str(p) for p in self.params
        )


_SUMMARY_COLUMNS = (
    'portfolio_id, "date", market_value, cost_basis, unrealized_pnl, unrealized_pnl_pct, '
    "day_change, day_change_pct, position_count"
)
_POSITION_COLUMNS = (
    'portfolio_id, "date", symbol, shares, close, market_value, cost_basis, unrealized_pnl, weight'
)
_PRICE_COLUMNS = 'symbol, "date", open, high, low, close, volume, vwap, change, change_pct'
_COMPANY_COLUMNS = "symbol, company_name, exchange, sector, industry, country, currency, market_cap"


def _page(limit: int, offset: int = 0) -> str:
    """``OFFSET``/``LIMIT`` of a page; ``limit`` is one more than the page to see if more follow."""
    limit, offset = int(limit), int(offset)
    if limit < 1 or offset < 0:
        raise ValueError(f"a page needs limit >= 1 and offset >= 0, got {limit}, {offset}")
    return (f" OFFSET {offset}" if offset else "") + f" LIMIT {limit}"


def portfolios(limit: int, offset: int = 0) -> Query:
    return Query(
        "portfolios",
        'SELECT portfolio_id, MIN("date") AS first_date, MAX("date") AS last_date, '
        'COUNT(*) AS days, max_by(market_value, "date") AS market_value '
        "FROM {daily_portfolio_summary} GROUP BY portfolio_id ORDER BY portfolio_id"
        + _page(limit, offset),
    )


def portfolio_days(portfolio_id: str) -> Query:
    return Query(
        "portfolio_days",
        'SELECT COUNT(*) AS n, MAX("date") AS last_date FROM {daily_portfolio_summary} '
        "WHERE portfolio_id = ?",
        (portfolio_id,),
    )


def portfolio_summary(portfolio_id: str, start: date, end: date, limit: int) -> Query:
    return Query(
        "portfolio_summary",
        f"SELECT {_SUMMARY_COLUMNS} FROM {{daily_portfolio_summary}} "
        'WHERE portfolio_id = ? AND "date" BETWEEN CAST(? AS DATE) AND CAST(? AS DATE) '
        'ORDER BY "date"' + _page(limit),
        (portfolio_id, start, end),
    )


def latest_position_date(portfolio_id: str) -> Query:
    return Query(
        "latest_position_date",
        'SELECT MAX("date") AS last_date FROM {fct_portfolio_positions} WHERE portfolio_id = ?',
        (portfolio_id,),
    )


def positions(portfolio_id: str, on: date, limit: int, offset: int = 0) -> Query:
    return Query(
        "positions",
        f"SELECT {_POSITION_COLUMNS} FROM {{fct_portfolio_positions}} "
        'WHERE portfolio_id = ? AND "date" = CAST(? AS DATE) '
        "ORDER BY market_value DESC, symbol" + _page(limit, offset),
        (portfolio_id, on),
    )


def prices(symbol: str, start: date, end: date, limit: int) -> Query:
    return Query(
        "prices",
        f"SELECT {_PRICE_COLUMNS} FROM {{fct_daily_prices}} "
        'WHERE symbol = ? AND "date" BETWEEN CAST(? AS DATE) AND CAST(? AS DATE) '
        'ORDER BY "date"' + _page(limit),
        (symbol, start, end),
    )


def symbol_days(symbol: str) -> Query:
    return Query(
        "symbol_days",
        "SELECT COUNT(*) AS n FROM {fct_daily_prices} WHERE symbol = ?",
        (symbol,),
    )


def company(symbol: str) -> Query:
    return Query(
        "company",
        f"SELECT {_COMPANY_COLUMNS} FROM {{dim_company}} WHERE symbol = ?",
        (symbol,),
    )
