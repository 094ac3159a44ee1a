"""Coverage follows the NYSE calendar: a missing trading day is a finding (named by its date), a
closure is not — the holidays, and the closures no rule predicts (the national day of mourning on
2025-01-09, Hurricane Sandy on 2012-10-29/30). Pure coverage first, then the data-quality task
and the local S18 check on a lake the connector (against the FMP simulator) and bronze→silver
(DuckDB) wrote."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from finks.checks import CheckContext, CheckFailed
from flows.backfill_report import ResourceMeter, list_reports, measured, write_report
from flows.calendar import trading_days
from flows.quality_coverage import coverage, gold_dates, last_sessions, partition_date, silver_dates

D = dt.date


# ---- the expectation ---------------------------------------------------------------------------
@pytest.mark.parametrize("start, end, closed", [
    (D(2025, 1, 6), D(2025, 1, 13), [D(2025, 1, 9)]),                    # national day of mourning (Carter)
    (D(2012, 10, 25), D(2012, 11, 1), [D(2012, 10, 29), D(2012, 10, 30)]),  # Hurricane Sandy
    (D(2024, 11, 25), D(2024, 12, 2), [D(2024, 11, 28)]),                 # Thanksgiving
    (D(2024, 7, 1), D(2024, 7, 8), [D(2024, 7, 4)]),                      # Independence Day
], ids=["carter-2025-01-09", "sandy-2012-10-29-30", "thanksgiving-2024", "july-4th-2024"])
def test_a_closure_is_not_expected_and_not_reported_missing(start: dt.date, end: dt.date, closed: list[dt.date]) -> None:
    cov = coverage(start, end, trading_days(start, end))
    assert cov.ok and cov.missing == []
    assert cov.closures == closed
    assert not set(closed) & set(cov.sessions)


@pytest.mark.parametrize("start, end, lost", [
    (D(2025, 1, 6), D(2025, 1, 13), D(2025, 1, 10)),    # the session after the Carter closure
    (D(2012, 10, 25), D(2012, 11, 1), D(2012, 10, 31)),  # the market reopening after Sandy
])
def test_a_missing_trading_day_is_a_finding_named_by_its_date(start: dt.date, end: dt.date, lost: dt.date) -> None:
    cov = coverage(start, end, [d for d in trading_days(start, end) if d != lost])
    assert cov.missing == [lost]
    assert cov.describe("silver eod_prices") == f"silver eod_prices misses 1 of {len(cov.sessions)} trading days ({lost})"
    assert cov.to_dict()["missing"] == [lost.isoformat()]


def test_data_on_a_closure_is_reported_as_off_calendar_not_as_coverage() -> None:
    sessions = trading_days(D(2025, 1, 6), D(2025, 1, 13))
    cov = coverage("2025-01-06", "2025-01-13", [*sessions, D(2025, 1, 9), D(2025, 1, 11)])
    assert cov.ok and cov.off_calendar == [D(2025, 1, 9), D(2025, 1, 11)]


def test_last_sessions_count_trading_days_not_weekdays() -> None:
    window = last_sessions(D(2025, 1, 31), 30)
    assert len(window) == 30 and window[-1] == D(2025, 1, 31) and window[0] == D(2024, 12, 17)
    assert not {D(2024, 12, 25), D(2025, 1, 1), D(2025, 1, 9), D(2025, 1, 20)} & set(window)
    assert last_sessions(D(2012, 10, 30), 2) == [D(2012, 10, 25), D(2012, 10, 26)]  # ends at the last session


def test_partition_names_parse_to_dates() -> None:
    assert partition_date("date=2025-01-08") == D(2025, 1, 8)
    assert partition_date("date=2025-01-08/") == D(2025, 1, 8)
    assert partition_date("date=2025-02-30") is None and partition_date("_quarantine") is None


def test_the_backfill_report_keeps_measured_resources_in_the_lake(tmp_path: Path) -> None:
    from core.settings import load_settings

    settings = load_settings(env="local", state_dir=tmp_path / "state", lake_uri=str(tmp_path / "lake"))
    meter = ResourceMeter.start()
    busy_until = time.process_time() + 0.02  # 20 ms of CPU, however fast the machine
    while time.process_time() < busy_until:
        pass
    resources = meter.stop()
    assert measured(resources) and not measured({"wall_s": 1.0, "cpu_s": 0.0, "peak_rss_mb": 80})
    uri = write_report(settings, {"start": "2025-01-02", "end": "2025-01-31", "dates": 20, "resources": resources})
    write_report(settings, {"start": "2025-02-03", "end": "2025-02-04", "dates": 2, "resources": resources})
    reports = list_reports(settings)
    assert [r["start"] for _, r in reports] == ["2025-02-03", "2025-01-02"] and reports[1][0] == uri
    assert Path(uri).is_relative_to(tmp_path / "lake" / "silver" / "_pipeline" / "backfills")


@pytest.mark.services
@pytest.mark.slow
def test_the_backfill_flow_skips_the_carter_closure_and_keeps_its_report_in_the_lake(local_stack: Any, fmp_sim: Any,
                                                                                    tmp_path: Path) -> None:
    from flows.backfill import backfill_flow
    from validation import support

    lake = support.with_fmp(support.scratch_lake(local_stack, tmp_path / "lake"), fmp_sim.base_url)
    report = backfill_flow(start="2025-01-08", end="2025-01-10", concurrency=2, bulk=True, build_gold=False,
                           settings=lake, retry=support.NO_RETRY)

    assert report["dates"] == 2 and report["failed"] == []
    assert silver_dates(lake) == {D(2025, 1, 8), D(2025, 1, 10)}  # nothing asked for 2025-01-09
    [(uri, kept)] = list_reports(lake)
    assert uri == report["report_uri"] and kept["end"] == "2025-01-10" and measured(kept["resources"])


# ---- a lake the platform wrote -------------------------------------------------------------------
@pytest.fixture(scope="module")
def one_day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The silver eod_prices partition of 2025-01-08, landed and transformed by the platform."""
    from connectors.fmp.ingest import run_ingest
    from connectors.fmp.simulator import SimulatorServer
    from core.settings import load_settings
    from jobs import bronze_to_silver

    root = tmp_path_factory.mktemp("one-day")
    with SimulatorServer(port=0, universe_size=3) as sim:
        settings = load_settings(env="local", state_dir=root / "state", lake_uri=str(root / "lake"),
                                 fmp_base_url=sim.base_url, fmp_calls_per_minute=60_000)
        assert run_ingest(settings, "2025-01-08", "eod", bulk=True).ok
        assert bronze_to_silver.run(settings, "2025-01-08", ["eod_prices"], engine="duckdb").ok
    return root / "lake" / "silver" / "eod_prices" / "date=2025-01-08"


def _lake(root: Path, one_day: Path, sessions: list[dt.date], *, gold: bool = True) -> Any:
    """A local lake whose silver holds ``sessions`` (the platform's partition, re-dated) and whose
    gold mart fct_daily_prices (what dbt builds from all of silver) holds their rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from core.gold import Published, mart_uri, write_published
    from core.settings import load_settings
    from flows.common import write_record

    settings = load_settings(env="local", state_dir=root / "state", lake_uri=str(root / "lake"))
    model = pq.read_table(one_day / "part-0.parquet")
    tables = []
    for day in sessions:
        table = model.set_column(model.schema.get_field_index("date"), "date",
                                 pa.array([day] * model.num_rows, model.schema.field("date").type))
        target = root / "lake" / "silver" / "eod_prices" / f"date={day}"
        target.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, target / "part-0.parquet")
        write_record(settings, day, {"date": day.isoformat(), "silver": "ok", "by": "backfill"})
        tables.append(table)
    if gold:
        mart = Path(mart_uri(settings, "fct_daily_prices"))
        mart.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.concat_tables(tables), mart)
        write_published(settings, Published.now("fixture-run", tests_passed=1))
    return settings


def test_expect_sessions_passes_over_the_carter_closure_and_names_a_missing_day(tmp_path: Path, one_day: Path) -> None:
    from flows.errors import QualityGateFailed
    from flows.quality import expect_sessions

    sessions = trading_days(D(2025, 1, 6), D(2025, 1, 13))
    settings = _lake(tmp_path, one_day, sessions)
    assert silver_dates(settings) == set(sessions) == gold_dates(settings)

    result = expect_sessions.fn(settings, "2025-01-06", "2025-01-13")
    assert result["silver"]["missing"] == [] and result["silver"]["closures"] == ["2025-01-09"]

    shutil.rmtree(tmp_path / "lake" / "silver" / "eod_prices" / "date=2025-01-10")
    with pytest.raises(QualityGateFailed, match=r"^silver eod_prices misses 1 of 5 trading days \(2025-01-10\); rebuild the missing dates"):
        expect_sessions.fn(settings, "2025-01-06", "2025-01-13")


def test_expect_sessions_finds_a_trading_day_gold_lacks(tmp_path: Path, one_day: Path) -> None:
    from flows.errors import QualityGateFailed
    from flows.quality import expect_sessions

    sessions = trading_days(D(2012, 10, 24), D(2012, 11, 2))
    settings = _lake(tmp_path, one_day, [d for d in sessions if d != D(2012, 10, 31)])
    _lake(tmp_path / "silver-only", one_day, [D(2012, 10, 31)], gold=False)
    shutil.copytree(tmp_path / "silver-only" / "lake" / "silver" / "eod_prices" / "date=2012-10-31",
                    tmp_path / "lake" / "silver" / "eod_prices" / "date=2012-10-31")
    with pytest.raises(QualityGateFailed, match=r"^gold fct_daily_prices misses 1 of 6 trading days \(2012-10-31\); rebuild"):
        expect_sessions.fn(settings, "2012-10-24", "2012-11-02")


# ---- the local S18 check -----------------------------------------------------------------------
WINDOW = last_sessions(D(2025, 1, 31), 30)  # 2024-12-17..2025-01-31: Christmas, New Year, Carter, MLK


@pytest.fixture
def backfilled(tmp_path: Path, one_day: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CheckContext]:
    """A local lake after a 30-session backfill, and the record the S18 action leaves."""
    from core.paths import REPO_ROOT
    from validation.backfill import backfill_record

    monkeypatch.setenv("FINKS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("FINKS_LAKE_URI", str(tmp_path / "lake"))
    settings = _lake(tmp_path, one_day, WINDOW)
    record = backfill_record(settings)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"start": WINDOW[0].isoformat(), "end": WINDOW[-1].isoformat(),
                                  "resources": {"wall_s": 41.2, "cpu_s": 63.0, "peak_rss_mb": 512},
                                  "report": {"dates": 30, "ran": 30, "skipped": 0, "failed": [], "gold": "published"}}))
    yield CheckContext("local", REPO_ROOT, tmp_path / "state", tmp_path / "work")


def test_backfill_check_expects_no_data_on_the_closures_of_its_range(backfilled: CheckContext) -> None:
    from validation.backfill import backfill_30_days

    evidence = backfill_30_days(backfilled)
    assert evidence.figures["closures"] == ["2024-12-25", "2025-01-01", "2025-01-09", "2025-01-20"]
    assert "closures 2024-12-25, 2025-01-01, 2025-01-09, 2025-01-20 expected empty" in evidence.message
    assert evidence.figures["silver"]["missing"] == [] and evidence.figures["gold"]["missing"] == []


@pytest.mark.check_fails("validation.backfill:backfill_30_days")
def test_backfill_check_names_the_trading_day_whose_silver_partition_is_gone(backfilled: CheckContext,
                                                                            tmp_path: Path) -> None:
    from validation.backfill import backfill_30_days

    shutil.rmtree(tmp_path / "lake" / "silver" / "eod_prices" / "date=2025-01-10")
    with pytest.raises(CheckFailed, match=r"1 completed dates have no silver eod_prices rows \(2025-01-10\)") as exc:
        backfill_30_days(backfilled)
    assert exc.value.evidence.figures["silver"]["missing"] == ["2025-01-10"]


@pytest.mark.check_fails("validation.backfill:backfill_30_days")
def test_backfill_check_names_the_trading_day_gold_lacks(backfilled: CheckContext, tmp_path: Path) -> None:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from validation.backfill import backfill_30_days

    mart = tmp_path / "lake" / "gold" / "marts" / "fct_daily_prices.parquet"
    table = pq.read_table(mart)
    pq.write_table(table.filter(pc.not_equal(table["date"], D(2025, 1, 8))), mart)
    with pytest.raises(CheckFailed, match=r": gold fct_daily_prices misses 1 of 30 trading days \(2025-01-08\)$"):
        backfill_30_days(backfilled)
