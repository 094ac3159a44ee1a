"""Pydantic models of FMP /stable records, built from the recorded samples.

FMP is loose with types: numbers arrive as numbers, numeric strings, ``""``,
``"NA"`` or ``null`` depending on the symbol and the day. The models accept all
of those (missing becomes ``None``) and reject what cannot be a number, a
record without a symbol, or an impossible bar: such records go to quarantine.
Field aliases are FMP's names exactly; bronze keeps the raw body regardless.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

SCHEMA_VERSION = 1
_MISSING = {"", "na", "n/a", "none", "null", "-", "nan"}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in _MISSING)


def _number(value: Any) -> Any:
    if _missing(value):
        return None
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")  # noqa: TRY004 - pydantic reports ValueError only
    if isinstance(value, str):
        try:
            return float(value.strip().replace(",", ""))
        except ValueError:
            raise ValueError(f"not a number: {value!r}") from None
    return value


def _integer(value: Any) -> Any:
    value = _number(value)
    if isinstance(value, float):
        if value != int(value):
            raise ValueError(f"not a whole number: {value!r}")
        return int(value)
    return value


def _text(value: Any) -> Any:
    return None if _missing(value) else value


def _flag(value: Any) -> Any:
    if _missing(value):
        return None
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return value


Num = Annotated[float | None, BeforeValidator(_number)]
Int = Annotated[int | None, BeforeValidator(_integer)]
Text = Annotated[str | None, BeforeValidator(_text)]
Flag = Annotated[bool | None, BeforeValidator(_flag)]
Day = Annotated[dt.date | None, BeforeValidator(_text)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    symbol: str = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _need_object(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")  # noqa: TRY004 - as above
        return data


class Quote(_Record):
    """``/stable/quote`` and ``/stable/batch-quote``."""

    name: Text = None
    price: Num = Field(None, ge=0)
    change_percentage: Num = Field(None, alias="changePercentage")
    change: Num = None
    volume: Int = Field(None, ge=0)
    day_low: Num = Field(None, alias="dayLow")
    day_high: Num = Field(None, alias="dayHigh")
    year_high: Num = Field(None, alias="yearHigh")
    year_low: Num = Field(None, alias="yearLow")
    market_cap: Num = Field(None, alias="marketCap")
    price_avg_50: Num = Field(None, alias="priceAvg50")
    price_avg_200: Num = Field(None, alias="priceAvg200")
    exchange: Text = None
    open: Num = None
    previous_close: Num = Field(None, alias="previousClose")
    timestamp: Int = None  # epoch seconds, UTC


class Profile(_Record):
    """``/stable/profile``. ``fullTimeEmployees`` is a string in FMP's answer."""

    price: Num = None
    market_cap: Num = Field(None, alias="marketCap")
    beta: Num = None
    last_dividend: Num = Field(None, alias="lastDividend")
    range: Text = None
    change: Num = None
    change_percentage: Num = Field(None, alias="changePercentage")
    volume: Int = None
    average_volume: Num = Field(None, alias="averageVolume")
    company_name: Text = Field(None, alias="companyName")
    currency: Text = None
    cik: Text = None
    isin: Text = None
    cusip: Text = None
    exchange_full_name: Text = Field(None, alias="exchangeFullName")
    exchange: Text = None
    industry: Text = None
    website: Text = None
    description: Text = None
    ceo: Text = None
    sector: Text = None
    country: Text = None
    full_time_employees: Int = Field(None, alias="fullTimeEmployees")
    ipo_date: Day = Field(None, alias="ipoDate")
    is_etf: Flag = Field(None, alias="isEtf")
    is_actively_trading: Flag = Field(None, alias="isActivelyTrading")


class EodBar(_Record):
    """``/stable/historical-price-eod/full`` rows (newest first) and bulk EOD rows."""

    date: dt.date
    open: Num = None
    high: Num = None
    low: Num = None
    close: Num = None
    volume: Int = Field(None, ge=0)
    change: Num = None
    change_percent: Num = Field(None, alias="changePercent")
    vwap: Num = None

    @model_validator(mode="after")
    def _coherent(self) -> EodBar:
        if self.high is not None and self.low is not None and self.high < self.low:
            raise ValueError(f"high {self.high} is below low {self.low}")
        if self.close is not None and self.close < 0:
            raise ValueError(f"negative close {self.close}")
        return self


MODELS: dict[str, type[_Record]] = {"quotes": Quote, "profiles": Profile, "eod": EodBar}


def validate_records(dataset: str, records: list[Any]) -> tuple[int, list[tuple[int, str]]]:
    """Validate a response's records; returns (valid count, [(index, reason)])."""
    model = MODELS[dataset]
    bad: list[tuple[int, str]] = []
    for index, record in enumerate(records):
        try:
            model.model_validate(record)
        except ValidationError as exc:
            reasons = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'record'}: {err['msg']}" for err in exc.errors()
            )
            bad.append((index, reasons))
    return len(records) - len(bad), bad
