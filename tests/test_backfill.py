"""Backfill (S18): parallel over dates, one failed date reported without losing the
others, and a rerun resumes: completed dates are skipped."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from core.lake import zone_uri


@pytest.fixture
def backfill_lake(local_stack: Any, fmp_sim: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from core.settings import load_settings

    monkeypatch.setenv("FINKS_LAKE_URI", str(tmp_path / "lake"))
    monkeypatch.setenv("FMP_BASE_URL", fmp_sim.base_url)
    monkeypatch.setenv("FINKS_TASK_RETRIES", "0")
    return load_settings(env="local")


@pytest.mark.services
@pytest.mark.slow
def test_failed_date_is_reported_and_rerun_resumes(backfill_lake: Any) -> None:
    from flows.backfill import BackfillIncomplete, backfill_flow
    from flows.common import completed_dates
    from flows.lock import date_lock

    lake = backfill_lake

    held = dt.date(2024, 3, 13)
    # Another run holding one date makes that date fail (lock_wait_s=0) while the others go on.
    with date_lock(lake, held, run_id="someone-else"), pytest.raises(BackfillIncomplete) as info:
        backfill_flow(start="2024-03-11", end="2024-03-15", concurrency=2, bulk=True, lock_wait_s=0)
    first = info.value.report

    assert first["dates"] == 5 and first["ran"] == 4 and first["failed"] == ["2024-03-13"]
    assert "locked by run someone-else" in next(r for r in first["results"] if r["date"] == "2024-03-13")["error"]
    assert completed_dates(lake) == {dt.date(2024, 3, d) for d in (11, 12, 14, 15)}

    second = backfill_flow(start="2024-03-11", end="2024-03-15", concurrency=2, bulk=True, lock_wait_s=0)

    assert second["skipped"] == 4 and second["ran"] == 1 and second["failed"] == []
    assert second["gold"] == "published"
    assert {r["date"]: r["status"] for r in second["results"]}["2024-03-13"] == "ok"
    silver = Path(zone_uri(lake, "silver"), "eod_prices")
    assert sorted(p.name for p in silver.glob("date=*")) == [f"date=2024-03-{d}" for d in (11, 12, 13, 14, 15)]


@pytest.mark.services
@pytest.mark.slow
def test_backfill_progress_is_visible_on_the_server(backfill_lake: Any) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.backfill import backfill_flow

    backfill_flow(start="2024-03-18", end="2024-03-19", concurrency=2, bulk=True, build_gold=False)

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["backfill-2024-03-18-2024-03-19"])))
    assert artifacts and artifacts[0].type == "progress" and float(artifacts[0].data) == 100.0


def test_empty_range_is_a_usage_error() -> None:
    from core.errors import UsageError
    from flows.backfill import backfill_flow

    with pytest.raises(UsageError, match="end 2024-03-01 is before start 2024-03-05"):
        backfill_flow.fn(start="2024-03-05", end="2024-03-01")
