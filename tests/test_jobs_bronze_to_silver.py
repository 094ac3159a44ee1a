"""Bronze→silver on DuckDB against the generator's ground truth."""

from __future__ import annotations

import os

import pyarrow.parquet as pq
import pytest

from core import lake
from core.errors import UsageError
from jobs.bronze_to_silver import load_result, run
from tests.fixtures.lake import BronzeLake


def _silver(bronze: BronzeLake, dataset: str, date: str) -> list[dict]:
    path = f"{lake.zone_uri(bronze.settings, 'silver')}/{dataset}/date={date}/part-0.parquet"
    return pq.read_table(path).to_pylist()


def test_counts_match_ground_truth_for_every_dataset(bronze: BronzeLake) -> None:
    day = bronze.dates[1]
    result = run(bronze.settings, day)
    assert result.ok and result.engine == "duckdb"
    for ds in result.datasets:
        exp = bronze.generated.expected[ds.dataset, day]
        assert (ds.rows_read, ds.rows_written, ds.deduplicated) == (exp.read, exp.rows, exp.deduplicated), ds
        assert ds.reasons == dict(exp.quarantined), ds.dataset
        assert ds.quarantined == sum(exp.quarantined.values())
        assert len(_silver(bronze, ds.dataset, day)) == exp.rows


def test_latest_ingestion_wins_and_unfinished_ingestions_are_ignored(bronze: BronzeLake) -> None:
    day = bronze.dates[0]
    run(bronze.settings, day, ["eod_prices", "profiles"])
    exp = bronze.generated.expected["eod_prices", day]
    rows = {(r["symbol"], r["date"].isoformat()): r for r in _silver(bronze, "eod_prices", day)}
    assert set(rows) == set(exp.final)
    for key, want in exp.final.items():
        got = rows[key]
        assert (got["close"], got["volume"], got["vwap"]) == (want["close"], want["volume"], want["vwap"])
    restated = bronze.generated.restated["eod_prices", day]
    assert {rows[(s, day)]["ingested_at"] for s in restated} == {max(r["ingested_at"] for r in rows.values())}
    # the newer ingestion without a manifest carried market caps of 999999: never read
    assert all(r["market_cap"] != 999_999.0 for r in _silver(bronze, "profiles", day))


def test_typed_columns_follow_the_silver_contract(bronze: BronzeLake) -> None:
    day = bronze.dates[0]
    run(bronze.settings, day)
    schema = pq.read_schema(f"{lake.zone_uri(bronze.settings, 'silver')}/eod_prices/date={day}/part-0.parquet")
    assert schema.names == ["symbol", "date", "open", "high", "low", "close", "volume", "vwap",
                            "change", "change_pct", "ingested_at", "source_file"]
    assert [str(schema.field(c).type) for c in ("date", "close", "volume", "ingested_at")] == [
        "date32[day]", "double", "int64", "timestamp[us]"]
    quote = _silver(bronze, "quotes", day)[0]
    assert quote["quote_timestamp"].date().isoformat() == day
    assert quote["source_file"].startswith(f"fmp/quotes/date={day}/ingested_at=")


def test_rejects_are_quarantined_with_reason_and_source(bronze: BronzeLake) -> None:
    day = bronze.dates[0]
    run(bronze.settings, day, ["eod_prices"])
    path = f"{lake.zone_uri(bronze.settings, 'silver')}/_quarantine/eod_prices/date={day}/part-0.parquet"
    rows = pq.read_table(path).to_pylist()
    assert {r["reason"] for r in rows} >= {"non_positive_price", "high_below_low", "malformed_number",
                                          "unparseable_file", "missing_close", "not_an_object"}
    assert all(r["source_file"].startswith("fmp/eod/") for r in rows)
    negative = next(r for r in rows if r["reason"] == "non_positive_price")
    assert '"close": -' in negative["record"]


def test_rerun_replaces_only_that_dates_partition(bronze: BronzeLake) -> None:
    first, second = bronze.dates[0], bronze.dates[1]
    run(bronze.settings, first, ["eod_prices"])
    run(bronze.settings, second, ["eod_prices"])
    other = f"{lake.zone_uri(bronze.settings, 'silver')}/eod_prices/date={second}/part-0.parquet"
    before = os.stat(other).st_mtime_ns
    again = run(bronze.settings, first, ["eod_prices"])
    assert len(_silver(bronze, "eod_prices", first)) == again.get("eod_prices").rows_written
    assert os.stat(other).st_mtime_ns == before
    assert os.listdir(os.path.dirname(other)) == ["part-0.parquet"]


def test_missing_day_leaves_the_symbol_out(bronze: BronzeLake) -> None:
    symbol, day = bronze.generated.missing[0]
    run(bronze.settings, day, ["eod_prices"])
    assert symbol not in {r["symbol"] for r in _silver(bronze, "eod_prices", day)}


def test_date_without_bronze_keeps_existing_silver(bronze: BronzeLake) -> None:
    result = run(bronze.settings, "2024-01-02")
    assert [d.status for d in result.datasets] == ["no_bronze"] * 3
    assert load_result(bronze.settings, "2024-01-02")["rows_written"] == 0


def test_bad_date_and_dataset_are_usage_errors(bronze: BronzeLake) -> None:
    with pytest.raises(UsageError, match="YYYY-MM-DD"):
        run(bronze.settings, "15/03/2024")
    with pytest.raises(UsageError, match="unknown dataset 'trades'"):
        run(bronze.settings, bronze.dates[0], ["trades"])
