"""Request parameters: path patterns, date ranges, pages and their cursor.

The OpenAPI schema states every rule (patterns, formats, bounds), and every
request it allows is served: a range of any length is paged rather than
refused, and a range whose start is after its end is simply empty. What the
schema cannot say (unknown query parameters) is the only other 422.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from datetime import date as Date
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

DEFAULT_RANGE_DAYS = 30
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
SYMBOL_PATTERN = r"^[A-Za-z0-9^][A-Za-z0-9.^-]{0,19}$"
PORTFOLIO_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
# Base 36, at most 12 digits: every such string is a valid position below 2**63,
# so any cursor the schema allows can be served (an unknown one is a late page).
CURSOR_PATTERN = r"^[0-9a-z]{1,12}$"
# RFC 3339 full-date allows year 0000, Python's dates start at 0001: the
# pattern says so, so that the schema admits no date the API would refuse.
DATE_PATTERN = r"^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-[0-9]{2}-[0-9]{2}$"
_ISO_DATE = re.compile(DATE_PATTERN)
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"

# Query parameters are never null on the wire: the schema says "string".
QueryDate = Annotated[
    Date | None, WithJsonSchema({"type": "string", "format": "date", "pattern": DATE_PATTERN})
]
Limit = Annotated[
    int,
    Field(
        ge=1,
        le=MAX_LIMIT,
        description=f"Rows per page, 1-{MAX_LIMIT} (default {DEFAULT_LIMIT})",
    ),
]
Cursor = Annotated[
    str | None,
    Field(
        pattern=CURSOR_PATTERN,
        description="Opaque position: the `meta.next_cursor` of the previous page "
        "(the `links.next` URL carries it)",
    ),
    WithJsonSchema({"type": "string", "pattern": CURSOR_PATTERN}),
]


def encode_cursor(position: int) -> str:
    if position < 0:
        raise ValueError(f"a cursor position is never negative, got {position}")
    digits = ""
    while True:
        position, digit = divmod(position, 36)
        digits = _DIGITS[digit] + digits
        if not position:
            return digits


def decode_cursor(cursor: str | None) -> int:
    """The position of ``cursor`` (0 without one); the schema's pattern was checked."""
    return int(cursor, 36) if cursor else 0


def _iso_date(value: Any) -> Any:
    # pydantic alone would also take 1700000000 or 2024-01-02T00:00 as dates;
    # the API promises exactly YYYY-MM-DD.
    if value is None or isinstance(value, Date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError(f"expected a date as YYYY-MM-DD, got {value!r}")
    try:
        return Date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a calendar date (YYYY-MM-DD)") from None


class RangeQuery(BaseModel):
    """``start``/``end`` (inclusive) and a page of the rows between them, by date."""

    model_config = ConfigDict(extra="forbid")

    start: QueryDate = Field(
        None, description=f"First date, YYYY-MM-DD (default: {DEFAULT_RANGE_DAYS} days before end)"
    )
    end: QueryDate = Field(
        None, description="Last date, YYYY-MM-DD, inclusive (default: today, UTC)"
    )
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor = None

    _check_format = field_validator("start", "end", mode="before")(_iso_date)

    @model_validator(mode="after")
    def _defaults(self) -> RangeQuery:
        if self.end is None:
            self.end = datetime.now(UTC).date()
        if self.start is None:
            # Date.min is 0001-01-01: a default start must not fall before it.
            days = min(DEFAULT_RANGE_DAYS, self.end.toordinal() - 1)
            self.start = self.end - timedelta(days=days)
        return self

    @property
    def bounds(self) -> tuple[Date, Date]:
        assert self.start is not None and self.end is not None
        return self.start, self.end

    def resume(self) -> Date | None:
        """The first date this page may hold, or None when nothing is left.

        A date-range cursor is the ordinal of the last date served, so a page
        resumes the day after it, never before ``start``.
        """
        start, end = self.bounds
        after = decode_cursor(self.cursor)
        if after < 1:
            first = start
        elif after >= end.toordinal():
            return None
        else:
            first = max(start, Date.fromordinal(after) + timedelta(days=1))
        return first if first <= end else None


class DayQuery(BaseModel):
    """One valuation date and a page of its rows (the cursor is an offset)."""

    model_config = ConfigDict(extra="forbid")

    date: QueryDate = Field(
        None, description="Valuation date, YYYY-MM-DD (default: the portfolio's latest date)"
    )
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor = None

    _check_format = field_validator("date", mode="before")(_iso_date)

    @property
    def offset(self) -> int:
        return decode_cursor(self.cursor)


class PageQuery(BaseModel):
    """A page of a list with no date range (the cursor is an offset)."""

    model_config = ConfigDict(extra="forbid")

    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor = None

    @property
    def offset(self) -> int:
        return decode_cursor(self.cursor)
