"""The test data generator: realistic layout, deterministic, defects on demand."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from core.lake import zone_uri
from core.settings import Settings
from jobs.testdata import Defects, generate_bronze, synthetic_symbols, trading_days


def test_layout_matches_the_connector_contract(lake: Settings) -> None:
    gen = generate_bronze(lake, ["AAPL", "MSFT"], ["2024-03-15"], "none")
    day = Path(zone_uri(lake, "bronze"), "fmp", "eod", "date=2024-03-15")
    (ingestion,) = list(day.iterdir())
    assert ingestion.name.startswith("ingested_at=") and ingestion.name.endswith("Z")
    manifest = json.loads((ingestion / "_manifest.json").read_text())
    assert {"dataset", "date", "ingested_at", "schema_version", "symbols", "files", "plan", "calls",
            "calls_per_minute"} <= set(manifest)
    records = [r for f in manifest["files"] for r in json.loads(gzip.decompress((ingestion / f["path"]).read_bytes()))]
    assert {r["symbol"] for r in records} == {"AAPL", "MSFT"}
    assert set(records[0]) == {"symbol", "date", "open", "high", "low", "close", "volume", "change",
                               "changePercent", "vwap"}
    assert gen.expected["eod_prices", "2024-03-15"].quarantined == {}


def test_same_seed_same_bronze(tmp_path: Path, lake: Settings) -> None:
    from tests.fixtures.lake import lake_settings

    a = generate_bronze(lake, ["AAPL", "JPM"], ["2024-03-14", "2024-03-15"], seed=3)
    b = generate_bronze(lake_settings(tmp_path / "b"), ["AAPL", "JPM"], ["2024-03-14", "2024-03-15"],
                        seed=3)
    assert a.expected["eod_prices", "2024-03-15"].final == b.expected["eod_prices", "2024-03-15"].final


def test_defects_are_injected_and_accounted_for(lake: Settings) -> None:
    gen = generate_bronze(lake, synthetic_symbols(6), trading_days("2024-03-15", 2),
                          Defects(duplicates=3, restatements=2, missing_days=1))
    exp = gen.expected["eod_prices", "2024-03-15"]
    assert exp.deduplicated == 3 + 2
    assert {"non_positive_price", "high_below_low", "malformed_number", "unparseable_file",
            "missing_close", "not_an_object"} <= set(exp.quarantined)
    assert len(gen.missing) == 1 and gen.restated["eod_prices", "2024-03-15"]
    assert trading_days("2024-03-18", 2) == ["2024-03-15", "2024-03-18"]   # weekends skipped
