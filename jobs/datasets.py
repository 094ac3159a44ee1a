"""The three bronze→silver datasets: what is read, how it is keyed, what is written.

Everything an engine needs to know about a dataset lives here and in
``jobs/sql/<silver name>.sql`` (after the shared ``_located.sql``), which types
and validates; the shared ``_latest.sql`` keeps one row per key. The engines
only load bronze and execute.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

from core.errors import UsageError


@dataclass(frozen=True)
class Dataset:
    bronze: str                 # folder under <bronze>/fmp/
    silver: str                 # folder under <silver>/
    fields: tuple[str, ...]     # FMP's own field names read from each record
    key: tuple[str, ...]        # natural key of a silver row
    columns: tuple[str, ...]    # silver columns, in order
    # silver columns ranking the rows of one key, best first: the latest ingestion
    # (FMP restates past days), then columns that only make ties deterministic
    ranking: tuple[str, ...]

    @property
    def sql(self) -> str:
        return _sql_text(self.silver)


_META = ("ingested_at", "source_file")

EOD = Dataset(
    bronze="eod",
    silver="eod_prices",
    fields=("symbol", "date", "open", "high", "low", "close", "volume", "vwap", "change",
            "changePercent"),
    key=("symbol", "date"),
    columns=("symbol", "date", "open", "high", "low", "close", "volume", "vwap", "change",
             "change_pct", *_META),
    ranking=("ingested_at", "source_file", "close", "volume", "vwap", "open", "high", "low"),
)

QUOTES = Dataset(
    bronze="quotes",
    silver="quotes",
    fields=("symbol", "name", "price", "changePercentage", "change", "volume", "dayLow",
            "dayHigh", "yearHigh", "yearLow", "marketCap", "priceAvg50", "priceAvg200",
            "exchange", "open", "previousClose", "timestamp"),
    key=("symbol", "date"),
    columns=("symbol", "date", "name", "price", "change", "change_pct", "volume", "day_low",
             "day_high", "year_low", "year_high", "market_cap", "price_avg_50", "price_avg_200",
             "exchange", "open", "previous_close", "quote_timestamp", *_META),
    ranking=("ingested_at", "quote_timestamp", "source_file", "price", "volume", "day_high", "day_low"),
)

PROFILES = Dataset(
    bronze="profiles",
    silver="profiles",
    fields=("symbol", "companyName", "price", "marketCap", "beta", "lastDividend", "range",
            "volume", "averageVolume", "currency", "cik", "isin", "cusip", "exchange",
            "exchangeFullName", "industry", "sector", "country", "website", "ceo",
            "fullTimeEmployees", "ipoDate", "isEtf", "isActivelyTrading", "isAdr", "isFund"),
    key=("symbol",),
    columns=("symbol", "date", "company_name", "exchange", "exchange_full_name", "sector",
             "industry", "country", "currency", "market_cap", "price", "beta", "last_dividend",
             "price_range", "volume", "average_volume", "cik", "isin", "cusip", "website", "ceo",
             "full_time_employees", "ipo_date", "is_etf", "is_actively_trading", "is_adr",
             "is_fund", *_META),
    ranking=("ingested_at", "source_file", "market_cap", "price", "company_name"),
)

DATASETS: dict[str, Dataset] = {d.silver: d for d in (QUOTES, PROFILES, EOD)}
ALIASES = {"eod": "eod_prices", "quote": "quotes", "profile": "profiles"}

QUARANTINE_COLUMNS = ("symbol", "date", "reason", "record", "ingested_at", "source_file")


def resolve(names: list[str] | tuple[str, ...] | None) -> list[Dataset]:
    """Datasets by silver or bronze name; all of them when ``names`` is empty."""
    if not names:
        return list(DATASETS.values())
    out = []
    for name in names:
        key = ALIASES.get(name, name)
        if key not in DATASETS:
            raise UsageError(f"unknown dataset {name!r}",
                             hint=f"use one of {', '.join(DATASETS)} (or eod)")
        out.append(DATASETS[key])
    return out


@cache
def _sql_text(name: str) -> str:
    """The dataset's SQL after the shared ``located`` CTE (source file, ingestion time)."""
    return _read("_located.sql") + _read(f"{name}.sql")


@cache
def _read(name: str) -> str:
    return resources.files("jobs").joinpath("sql", name).read_text()


def _latest(dataset: Dataset) -> str:
    """``_latest.sql`` for the dataset's key and ranking."""
    key = dataset.key
    fills = {
        "{columns}": ", ".join(dataset.columns),
        "{key}": ", ".join(key),
        "{key_as_repeated}": ", ".join(f"{k} AS r_{k}" for k in key),
        "{key_join}": " AND ".join(f"bronze_checked.{k} = repeated.r_{k}" for k in key),
        "{repeated_key}": f"r_{key[0]}",
        "{ranking}": ", ".join(f"{c} DESC NULLS LAST" for c in dataset.ranking),
    }
    sql = _read("_latest.sql")
    for placeholder, text in fills.items():
        sql = sql.replace(placeholder, text)
    return sql


def raw_column(field: str) -> str:
    """Column holding FMP's field as text: prefixed so `date`/`range`/`open` are never keywords."""
    return f"j_{field}"


def render(dataset: Dataset, date: str) -> dict[str, str]:
    """The shared SQL, ready to run on either engine.

    ``checked`` reads ``bronze_raw``, a view with columns ``filename, file_ok,
    is_object, record`` and one text column per field (see :func:`raw_column`),
    and gives every row its silver columns, ``reason`` (NULL = valid) and
    ``record`` (rejects only). The engine keeps that as ``bronze_checked``, which
    ``silver`` (one row per key), ``quarantine``, ``counts`` and ``reasons`` read.
    """
    cols = ", ".join(dataset.columns)
    return {
        "checked": dataset.sql.replace("{date}", date).replace("{columns}", cols),
        "silver": _latest(dataset),
        "quarantine": f"SELECT {', '.join(QUARANTINE_COLUMNS)} FROM bronze_checked WHERE reason IS NOT NULL",
        "counts": "SELECT count(*) AS rows_read, "
                  "sum(CASE WHEN reason IS NULL THEN 1 ELSE 0 END) AS valid, "
                  "sum(CASE WHEN reason IS NOT NULL THEN 1 ELSE 0 END) AS quarantined "
                  "FROM bronze_checked",
        "reasons": "SELECT reason, count(*) AS n FROM bronze_checked WHERE reason IS NOT NULL "
                   "GROUP BY reason",
    }
