"""Which trading days the lake holds: a missing session is a finding, a closure is not.

The expectation is the NYSE calendar (:mod:`flows.calendar`, XNYS from
exchange-calendars): every session of a range must have its silver partition
(``<silver>/<dataset>/date=D/part-0.parquet``) and its rows in gold. A weekday
the exchange was closed — a holiday, or an unscheduled closure such as the
national day of mourning on 2025-01-09 or Hurricane Sandy on 2012-10-29/30 —
has no FMP prices, so no partition is expected for it and none is ever
reported missing. Data on such a day is reported separately
(:attr:`Coverage.off_calendar`): something ingested a day without a session.

No Prefect here: the flows' quality task (:mod:`flows.quality`), the local
S18 check and the AWS probes share it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core import lake

if TYPE_CHECKING:
    from core.settings import Settings

PARTITION = "part-0.parquet"  # the one file of a silver partition (core.lake.replace_partition)
_DATE_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
SCHEDULE_LAG = dt.timedelta(hours=4)  # the 02:00 UTC daily run, and two hours for it to finish
SHOWN = 10  # dates named in a one-line description; the figures hold them all


@dataclass(frozen=True)
class Coverage:
    """The sessions of [start, end] against the dates some data holds."""

    start: dt.date
    end: dt.date
    sessions: tuple[dt.date, ...]
    present: frozenset[dt.date]

    @property
    def missing(self) -> list[dt.date]:
        """Sessions with no data: each one is a finding."""
        return [d for d in self.sessions if d not in self.present]

    @property
    def closures(self) -> list[dt.date]:
        """Weekdays of the range without a session (holidays, unscheduled closures): nothing expected."""
        from flows.calendar import is_closure

        days = (self.start + dt.timedelta(days=i) for i in range((self.end - self.start).days + 1))
        return [d for d in days if is_closure(d)]

    @property
    def off_calendar(self) -> list[dt.date]:
        """Dates of the range holding data although the exchange held no session."""
        sessions = set(self.sessions)
        return sorted(d for d in self.present if self.start <= d <= self.end and d not in sessions)

    @property
    def ok(self) -> bool:
        return not self.missing

    def describe(self, what: str) -> str:
        """One line: ``<what> misses 2 of 30 trading days (2025-01-08, 2025-01-10)``."""
        missing = self.missing
        if not missing:
            return f"{what} holds all {len(self.sessions)} trading days {self.start}..{self.end}"
        shown = ", ".join(d.isoformat() for d in missing[:SHOWN]) + (", …" if len(missing) > SHOWN else "")
        return f"{what} misses {len(missing)} of {len(self.sessions)} trading days ({shown})"

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "sessions": len(self.sessions),
                "missing": [d.isoformat() for d in self.missing],
                "closures": [d.isoformat() for d in self.closures],
                "off_calendar": [d.isoformat() for d in self.off_calendar]}


def coverage(start: dt.date | str, end: dt.date | str, present: Iterable[dt.date]) -> Coverage:
    """The XNYS sessions of [start, end] (inclusive) against the dates in ``present``."""
    from flows.calendar import parse_date, trading_days

    first, last = parse_date(start, what="start"), parse_date(end, what="end")
    return Coverage(first, last, tuple(trading_days(first, last)), frozenset(present))


def last_sessions(end: dt.date, count: int) -> list[dt.date]:
    """The ``count`` XNYS sessions ending with ``end`` (``end`` itself when it is one), oldest first."""
    from flows.calendar import trading_days

    if count <= 0:
        return []
    # ~252 sessions a year: a window of count * 7/5 calendar days plus the longest closures is enough.
    start = end - dt.timedelta(days=count * 7 // 5 + 14)
    days = trading_days(start, end)
    while len(days) < count:
        start -= dt.timedelta(days=count)
        days = trading_days(start, end)
    return days[-count:]


def latest_expected_session(now: dt.datetime | None = None) -> dt.date:
    """The last XNYS session whose scheduled daily run has had time to finish by ``now`` (UTC).

    The daily pipeline runs at 02:00 UTC for the previous session (prefect.yaml);
    until :data:`SCHEDULE_LAG` past midnight UTC its run may still be going, so
    the session before counts.
    """
    from core.clock import utcnow
    from flows.calendar import previous_trading_day

    return previous_trading_day(((now or utcnow()) - SCHEDULE_LAG).date())


def partition_date(name: str) -> dt.date | None:
    """``date=2025-01-08`` -> that date; anything else -> None."""
    match = _DATE_DIR.match(name.rstrip("/"))
    if not match:
        return None
    try:
        return dt.date.fromisoformat(match.group(1))
    except ValueError:
        return None


def silver_dates(settings: Settings, dataset: str = "eod_prices") -> set[dt.date]:
    """Dates whose silver partition of ``dataset`` holds its Parquet file (locally or on S3)."""
    base = lake.join(lake.zone_uri(settings, "silver"), dataset)
    found = set()
    for name in lake.list_names(settings, base):
        day = partition_date(name)
        if day is not None and PARTITION in lake.list_names(settings, lake.join(base, name)):
            found.add(day)
    return found


def gold_dates(settings: Settings, model: str = "fct_daily_prices") -> set[dt.date] | None:
    """The distinct dates of a gold mart (its ``date`` column), or None before gold was built."""
    import pyarrow.compute as pc
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    from core.gold import mart_uri

    fs, path = lake.filesystem(mart_uri(settings, model), settings)
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return None
    table = pq.read_table(path, columns=["date"], filesystem=fs)
    out = set()
    for value in pc.unique(table["date"]).to_pylist():
        if isinstance(value, dt.datetime):
            out.add(value.date())
        elif isinstance(value, dt.date):
            out.add(value)
        elif isinstance(value, str):
            out.add(dt.date.fromisoformat(value[:10]))
    return out
