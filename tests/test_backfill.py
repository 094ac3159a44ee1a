"""Backfill (S18): parallel over dates, one failed date reported without losing the
others, and a rerun resumes: completed dates are skipped."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from core.lake import zone_uri
from core.settings import Settings
from validation import support


@pytest.fixture
def backfill_lake(local_stack: Settings, fmp_sim: Any, tmp_path: Path) -> Settings:
    """The settings of this test's backfill: a fresh lake, the simulator as FMP."""
    return support.with_fmp(support.scratch_lake(local_stack, tmp_path / "lake"), fmp_sim.base_url)


@pytest.mark.services
@pytest.mark.slow
def test_failed_date_is_reported_and_rerun_resumes(backfill_lake: Settings) -> None:
    from flows.backfill import BackfillIncomplete, backfill_flow
    from flows.common import completed_dates
    from flows.lock import date_lock

    lake = backfill_lake

    held = dt.date(2024, 3, 13)
    # Another run holding one date makes that date fail (lock_wait_s=0) while the others go on.
    with date_lock(lake, held, run_id="someone-else"), pytest.raises(BackfillIncomplete) as info:
        backfill_flow(start="2024-03-11", end="2024-03-15", concurrency=2, bulk=True, lock_wait_s=0,
                      settings=lake, retry=support.NO_RETRY)
    first = info.value.report

    assert first["dates"] == 5 and first["ran"] == 4 and first["failed"] == ["2024-03-13"]
    assert "locked by run someone-else" in next(r for r in first["results"] if r["date"] == "2024-03-13")["error"]
    assert completed_dates(lake) == {dt.date(2024, 3, d) for d in (11, 12, 14, 15)}

    second = backfill_flow(start="2024-03-11", end="2024-03-15", concurrency=2, bulk=True, lock_wait_s=0,
                           settings=lake, retry=support.NO_RETRY)

    assert second["skipped"] == 4 and second["ran"] == 1 and second["failed"] == []
    assert second["gold"] == "published"
    assert {r["date"]: r["status"] for r in second["results"]}["2024-03-13"] == "ok"
    silver = Path(zone_uri(lake, "silver"), "eod_prices")
    assert sorted(p.name for p in silver.glob("date=*")) == [f"date=2024-03-{d}" for d in (11, 12, 13, 14, 15)]


@pytest.mark.services
@pytest.mark.slow
def test_backfill_progress_is_visible_on_the_server(backfill_lake: Settings) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.backfill import backfill_flow

    backfill_flow(start="2024-03-18", end="2024-03-19", concurrency=2, bulk=True, build_gold=False,
                  settings=backfill_lake, retry=support.NO_RETRY)

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["backfill-2024-03-18-2024-03-19"])))
    assert artifacts and artifacts[0].type == "progress" and float(str(artifacts[0].data)) == 100.0


def test_empty_range_is_a_usage_error() -> None:
    from core.errors import UsageError
    from flows.backfill import backfill_flow

    with pytest.raises(UsageError, match="end 2024-03-01 is before start 2024-03-05"):
        backfill_flow.fn(start="2024-03-05", end="2024-03-01")
