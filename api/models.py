"""Response bodies: the API's documented contract (parameters are in api.params)."""

from __future__ import annotations

from datetime import date as Date
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field


class Meta(BaseModel):
    run_id: str = Field(description="The gold publication the data comes from")
    published_at: datetime | None
    count: int


class PageMeta(Meta):
    count: int = Field(description="Rows in this page")
    limit: int = Field(description="The page size asked for")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page"
    )


class Links(BaseModel):
    next: str | None = Field(
        description="Path and query of the next page (resolve it against the request URL); "
        "null on the last page"
    )


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
    meta: PageMeta
    links: Links


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
