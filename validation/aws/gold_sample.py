"""What the mart probe asks Athena for, shared with the seeding that queues moto's answer to it.

One portfolio's daily summary over every day gold holds for it — the first
portfolio by id, its rows by date, the columns the API's summary query selects
(api.queries.portfolio_summary), in that query's order. This module imports
nothing of the probes: the seeding (validation.aws.seed_transform) may not,
since validation.aws.seed is reachable from validation.aws.live.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SUMMARY_COLUMNS = ("portfolio_id", "date", "market_value", "cost_basis", "unrealized_pnl", "unrealized_pnl_pct",
                   "day_change", "day_change_pct", "position_count")


@dataclass(frozen=True)
class Sample:
    portfolio_id: str
    start: Any
    end: Any
    table: Any              # pyarrow Table: those rows, SUMMARY_COLUMNS, by date


def athena_sample(summary: Any) -> Sample:
    """The sample of ``summary`` (a pyarrow Table of daily_portfolio_summary)."""
    import pyarrow.compute as pc

    first = min(summary["portfolio_id"].to_pylist())
    rows = summary.filter(pc.equal(summary["portfolio_id"], first)).sort_by("date").select(list(SUMMARY_COLUMNS))
    dates = rows["date"].to_pylist()
    return Sample(first, dates[0], dates[-1], rows)
