"""Request parameters and response bodies: the API's documented contract."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from datetime import date as Date
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 30
SYMBOL_PATTERN = r"^[A-Za-z0-9^][A-Za-z0-9.^-]{0,19}$"
PORTFOLIO_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date(value: Any) -> Any:
    # pydantic alone would also take 1700000000 or 2024-01-02T00:00 as dates;
    # the API promises exactly YYYY-MM-DD.
    if value is None or isinstance(value, Date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError(f"expected a date as YYYY-MM-DD, got {value!r}")
    try:
        return Date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a calendar date (YYYY-MM-DD)") from None


class DateRange(BaseModel):
    """``start``/``end`` query parameters, inclusive, at most 366 days apart."""

    model_config = ConfigDict(extra="forbid")

    start: Date | None = Field(
        None, description=f"First date, YYYY-MM-DD (default: {DEFAULT_RANGE_DAYS} days before end)"
    )
    end: Date | None = Field(
        None, description="Last date, YYYY-MM-DD, inclusive (default: today, UTC)"
    )

    _check_format = field_validator("start", "end", mode="before")(_iso_date)

    @model_validator(mode="after")
    def _range(self) -> DateRange:
        if self.end is None:
            self.end = datetime.now(UTC).date()
        if self.start is None:
            self.start = self.end - timedelta(days=DEFAULT_RANGE_DAYS)
        if self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        days = (self.end - self.start).days + 1
        if days > MAX_RANGE_DAYS:
            raise ValueError(
                f"range {self.start}..{self.end} spans {days} days; at most {MAX_RANGE_DAYS} per request"
            )
        return self

    @property
    def bounds(self) -> tuple[Date, Date]:
        assert self.start is not None and self.end is not None
        return self.start, self.end


class OnDate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: Date | None = Field(
        None, description="Valuation date, YYYY-MM-DD (default: the portfolio's latest date)"
    )

    _check_format = field_validator("date", mode="before")(_iso_date)


# ---- responses -----------------------------------------------------------
class Meta(BaseModel):
    run_id: str = Field(description="The gold publication the data comes from")
    published_at: datetime | None
    count: int


class PortfolioInfo(BaseModel):
    portfolio_id: str
    first_date: Date
    last_date: Date
    days: int
    market_value: float | None = Field(description="Market value on last_date")


class SummaryRow(BaseModel):
    portfolio_id: str
    date: Date
    market_value: float | None
    cost_basis: float | None
    unrealized_pnl: float | None
    unrealized_pnl_pct: float | None
    day_change: float | None
    day_change_pct: float | None
    position_count: int | None


class Position(BaseModel):
    portfolio_id: str
    date: Date
    symbol: str
    shares: float | None
    close: float | None
    market_value: float | None
    cost_basis: float | None
    unrealized_pnl: float | None
    weight: float | None


class PriceBar(BaseModel):
    symbol: str
    date: Date
    open: float | None
    high: float | None
    low: float | None
    close: float | None
    volume: int | None
    vwap: float | None
    change: float | None
    change_pct: float | None


class Company(BaseModel):
    symbol: str
    company_name: str | None
    exchange: str | None
    sector: str | None
    industry: str | None
    country: str | None
    currency: str | None
    market_cap: float | None


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    data: list[T]
    meta: Meta


class PortfolioList(Page[PortfolioInfo]):
    pass


class PortfolioSummary(Page[SummaryRow]):
    portfolio_id: str
    start: Date
    end: Date


class PortfolioPositions(Page[Position]):
    portfolio_id: str
    date: Date


class PriceHistory(Page[PriceBar]):
    symbol: str
    start: Date
    end: Date


class CompanyResponse(BaseModel):
    data: Company
    meta: Meta


class GoldFreshness(BaseModel):
    run_id: str
    published_at: datetime | None
    age_seconds: float | None
    stale: bool = Field(description="True when the publication is older than the freshness limit")
    models: list[str]
    missing_models: list[str] = Field(description="Marts the API serves that the publication lacks")
    tests_passed: int | None


class Health(BaseModel):
    status: Literal["ok", "stale", "unpublished", "error"]
    version: str
    backend: str
    gold_uri: str
    gold: GoldFreshness | None
    cache: dict[str, int]
    detail: str | None = None


class ErrorBody(BaseModel):
    detail: str


class ValidationErrorBody(BaseModel):
    error: str = Field(description="All problems in one line")
    detail: list[dict[str, Any]]
