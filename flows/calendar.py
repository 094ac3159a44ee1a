"""Trading days of the US equity market, from the NYSE calendar (XNYS).

The sessions come from `exchange-calendars`, which keeps the exchange's
unscheduled closures as well as its rules (national days of mourning,
Hurricane Sandy, 9/11): a date it does not call a session has no FMP prices.

The pipeline's default date is the previous trading day: at 02:00 UTC the
last complete session is the one before today's UTC date (the New York close,
21:00 or 22:00 UTC, has passed; New York's own date would still be yesterday).

exchange-calendars imports pandas, so it is imported on first use, and the
calendar is built once per process. It covers CALENDAR_START to about a year
from now; a date outside raises UsageError instead of a guess.
"""

from __future__ import annotations

import datetime as dt
import warnings
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exchange_calendars import ExchangeCalendar

# The library's default start is twenty years before today; FMP's end-of-day
# history goes back further, so the calendar starts here instead.
CALENDAR_START = dt.date(1990, 1, 1)


@lru_cache(maxsize=1)
def _xnys() -> ExchangeCalendar:
    import exchange_calendars as xcals

    with warnings.catch_warnings():
        # exchange-calendars 4.13.2 reads Series.values of tz-aware columns, which
        # pandas 3.1 deprecates; the values it gets are still right (UTC nanoseconds).
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray",
                                category=DeprecationWarning)
        return xcals.get_calendar("XNYS", start=CALENDAR_START.isoformat())


@lru_cache(maxsize=1)
def _early_closes() -> frozenset[dt.date]:
    return frozenset(ts.date() for ts in _xnys().early_closes)


def bounds() -> tuple[dt.date, dt.date]:
    """The first and last session the calendar knows, inclusive."""
    cal = _xnys()
    return cal.first_session.date(), cal.last_session.date()


def _out_of_bounds(message: str) -> Exception:
    from core.errors import UsageError

    first, last = bounds()
    return UsageError(f"{message}: the NYSE calendar covers {first} to {last}",
                      hint=f"pick a date in that range (the start is CALENDAR_START in {__name__}; "
                           "the end is a year from today, as far as the exchange's rules are projected)")


def _checked(day: dt.date, what: str = "date") -> dt.date:
    if isinstance(day, dt.datetime):
        day = day.date()
    first, last = bounds()
    if not first <= day <= last:
        raise _out_of_bounds(f"{what} {day} is outside the calendar")
    return day


def is_trading_day(day: dt.date) -> bool:
    """Whether the NYSE holds a session on ``day`` (early closes included)."""
    day = _checked(day)
    return _xnys().is_session(day)


def is_closure(day: dt.date) -> bool:
    """A weekday without a session: a holiday or an unscheduled closure."""
    day = _checked(day)
    return day.weekday() < 5 and not _xnys().is_session(day)


def early_close(day: dt.date) -> dt.time | None:
    """The New York close time of ``day`` when the session closes early, else None."""
    day = _checked(day)
    if day not in _early_closes():
        return None
    cal = _xnys()
    close: dt.time = cal.session_close(day).tz_convert(cal.tz).time()
    return close


def previous_trading_day(today: dt.date | None = None) -> dt.date:
    """The last session strictly before ``today`` (default: today's UTC date)."""
    today = today or dt.datetime.now(dt.UTC).date()
    if isinstance(today, dt.datetime):
        today = today.date()
    first, last = bounds()
    if not first < today <= last + dt.timedelta(days=1):
        raise _out_of_bounds(f"no known session before {today}")
    return _xnys().date_to_session(today - dt.timedelta(days=1), direction="previous").date()


def trading_days(start: dt.date, end: dt.date) -> list[dt.date]:
    """Trading days in [start, end], oldest first."""
    start, end = _checked(start, "start"), _checked(end, "end")
    if start > end:
        return []
    return [ts.date() for ts in _xnys().sessions_in_range(start, end)]


def parse_date(value: str | dt.date | None, *, what: str = "date") -> dt.date:
    """A YYYY-MM-DD string (or date); a clear UsageError otherwise."""
    from core.errors import UsageError

    if value is None:
        return previous_trading_day()
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{what} {value!r} is not a date", hint="use YYYY-MM-DD, e.g. 2024-03-15") from None
