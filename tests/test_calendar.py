"""flows.calendar: NYSE sessions from exchange-calendars, unscheduled closures included."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import UsageError
from flows.calendar import (
    bounds,
    early_close,
    is_closure,
    is_trading_day,
    parse_date,
    previous_trading_day,
    trading_days,
)

D = dt.date

# Closures no rule predicts: (first closed day, last closed day, last session before, first after).
UNSCHEDULED_CLOSURES = {
    "carter-day-of-mourning": (D(2025, 1, 9), D(2025, 1, 9), D(2025, 1, 8), D(2025, 1, 10)),
    "bush-day-of-mourning": (D(2018, 12, 5), D(2018, 12, 5), D(2018, 12, 4), D(2018, 12, 6)),
    "hurricane-sandy": (D(2012, 10, 29), D(2012, 10, 30), D(2012, 10, 26), D(2012, 10, 31)),
    "ford-day-of-mourning": (D(2007, 1, 2), D(2007, 1, 2), D(2006, 12, 29), D(2007, 1, 3)),
    "reagan-day-of-mourning": (D(2004, 6, 11), D(2004, 6, 11), D(2004, 6, 10), D(2004, 6, 14)),
    "september-11": (D(2001, 9, 11), D(2001, 9, 14), D(2001, 9, 10), D(2001, 9, 17)),
}


def _days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


@pytest.mark.parametrize("first, last, before, after", UNSCHEDULED_CLOSURES.values(), ids=UNSCHEDULED_CLOSURES)
def test_unscheduled_closure_is_not_a_trading_day(first, last, before, after) -> None:
    for day in _days(first, last):
        assert not is_trading_day(day), day
        assert is_closure(day), day
    assert trading_days(first, last) == []


@pytest.mark.parametrize("first, last, before, after", UNSCHEDULED_CLOSURES.values(), ids=UNSCHEDULED_CLOSURES)
def test_sessions_either_side_of_an_unscheduled_closure_trade(first, last, before, after) -> None:
    assert is_trading_day(before) and is_trading_day(after)
    assert trading_days(before, after) == [before, after]
    assert previous_trading_day(after) == before


def test_january_2025_skips_new_year_carter_mourning_and_mlk_day() -> None:
    days = trading_days(D(2025, 1, 1), D(2025, 1, 31))

    assert len(days) == 20
    assert {D(2025, 1, 1), D(2025, 1, 9), D(2025, 1, 20)}.isdisjoint(days)
    assert days[0] == D(2025, 1, 2) and days[-1] == D(2025, 1, 31)
    assert days == sorted(days)
    assert all(type(day) is dt.date for day in days)  # not pandas Timestamps


def test_previous_trading_day_skips_the_carter_closure() -> None:
    day = previous_trading_day(D(2025, 1, 10))

    assert day == D(2025, 1, 8)
    assert type(day) is dt.date


def test_previous_trading_day_skips_weekends_and_holidays() -> None:
    assert previous_trading_day(D(2024, 3, 18)) == D(2024, 3, 15)  # Monday -> Friday
    assert previous_trading_day(D(2024, 4, 1)) == D(2024, 3, 28)  # Good Friday
    assert previous_trading_day(D(2024, 7, 5)) == D(2024, 7, 3)  # Independence Day


def test_previous_trading_day_defaults_to_the_session_before_today_in_utc() -> None:
    day = previous_trading_day()

    assert day == previous_trading_day(dt.datetime.now(dt.UTC).date())
    assert is_trading_day(day)


def test_holiday_is_a_closure_and_a_weekend_is_not() -> None:
    assert not is_trading_day(D(2024, 7, 4)) and is_closure(D(2024, 7, 4))
    assert not is_trading_day(D(2024, 3, 29)) and is_closure(D(2024, 3, 29))  # Good Friday
    assert not is_trading_day(D(2024, 3, 16)) and not is_closure(D(2024, 3, 16))  # Saturday
    assert is_trading_day(D(2024, 3, 15)) and not is_closure(D(2024, 3, 15))


def test_a_saturday_new_year_is_not_observed_on_the_friday_before() -> None:
    assert is_trading_day(D(2021, 12, 31))


@pytest.mark.parametrize("day", [D(2024, 11, 29), D(2024, 12, 24), D(2024, 7, 3)],
                         ids=["day-after-thanksgiving", "christmas-eve", "eve-of-independence-day"])
def test_early_close_is_one_pm_in_new_york(day) -> None:
    assert is_trading_day(day)
    assert early_close(day) == dt.time(13, 0)


def test_a_full_session_or_a_closed_day_has_no_early_close() -> None:
    assert early_close(D(2024, 11, 27)) is None
    assert early_close(D(2024, 11, 28)) is None  # Thanksgiving: closed
    assert early_close(D(2025, 1, 9)) is None


def test_trading_days_is_inclusive_and_empty_when_reversed() -> None:
    assert trading_days(D(2024, 3, 15), D(2024, 3, 18)) == [D(2024, 3, 15), D(2024, 3, 18)]
    assert trading_days(D(2024, 3, 18), D(2024, 3, 15)) == []


def test_calendar_covers_2000_onwards() -> None:
    first, last = bounds()

    assert first <= D(2000, 1, 3)
    assert last >= dt.datetime.now(dt.UTC).date()


def test_date_before_the_calendar_is_a_usage_error_naming_the_range() -> None:
    first, last = bounds()
    too_early = first - dt.timedelta(days=3)

    with pytest.raises(UsageError) as err:
        is_trading_day(too_early)
    assert str(too_early) in err.value.message and str(first) in err.value.message
    assert err.value.hint and err.value.exit_code == 2

    with pytest.raises(UsageError, match="no known session before"):
        previous_trading_day(first)


def test_date_after_the_calendar_is_a_usage_error() -> None:
    _, last = bounds()

    with pytest.raises(UsageError, match=f"end {last + dt.timedelta(days=1)} is outside"):
        trading_days(D(2025, 1, 1), last + dt.timedelta(days=1))
    with pytest.raises(UsageError):
        early_close(last + dt.timedelta(days=30))


def test_parse_date_reads_iso_dates_and_defaults_to_the_previous_trading_day() -> None:
    assert parse_date("2025-01-09") == D(2025, 1, 9)
    assert parse_date(dt.datetime(2025, 1, 9, 12)) == D(2025, 1, 9)
    assert parse_date(None) == previous_trading_day()
    with pytest.raises(UsageError, match="start '2025-13-01' is not a date"):
        parse_date("2025-13-01", what="start")


def test_importing_the_calendar_does_not_import_pandas() -> None:
    code = "import sys, flows.calendar; sys.exit('pandas' in sys.modules or 'exchange_calendars' in sys.modules)"
    root = Path(__file__).resolve().parents[1]

    assert subprocess.run([sys.executable, "-c", code], cwd=root, check=False).returncode == 0
