"""dbt on DuckDB over generated silver: marts, tests, write-audit-publish, docs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml

from core import lake
from core.errors import ConfigError, UsageError
from core.gold import MARTS, read_published
from jobs.bronze_to_silver import run
from jobs.dbt import PROJECT_DIR, DbtResult, dbt_home, run_dbt
from jobs.quality import latest_quality
from jobs.testdata import generate_bronze, trading_days
from tests.fixtures.lake import END_DATE, HOLDING_SYMBOLS, lake_settings

CONTRACT = {
    "fct_daily_prices": ["symbol", "date", "open", "high", "low", "close", "volume", "vwap", "change",
                         "change_pct"],
    "dim_company": ["symbol", "company_name", "exchange", "sector", "industry", "country", "currency",
                    "market_cap"],
    "fct_portfolio_positions": ["portfolio_id", "date", "symbol", "shares", "close", "market_value",
                                "cost_basis", "unrealized_pnl", "weight"],
    "daily_portfolio_summary": ["portfolio_id", "date", "market_value", "cost_basis", "unrealized_pnl",
                                "unrealized_pnl_pct", "day_change", "day_change_pct", "position_count"],
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, DbtResult]:
    settings = lake_settings(tmp_path_factory.mktemp("dbt"))
    gen = generate_bronze(settings, HOLDING_SYMBOLS, trading_days(END_DATE, 3))
    for day in gen.dates:
        run(settings, day)
    return settings, run_dbt(settings, quiet=True)


def _gold(settings: Any, model: str) -> list[dict[str, Any]]:
    return pq.read_table(f"{lake.zone_uri(settings, 'gold')}/marts/{model}.parquet").to_pylist()


def test_build_passes_every_test_and_publishes_the_contract_marts(built: tuple[Any, DbtResult]) -> None:
    settings, result = built
    assert result.ok and result.published, (result.error, result.failed_tests)
    kinds = {n.resource_type for n in result.nodes}
    assert {"model", "seed", "test", "unit_test"} <= kinds
    assert all(n.status in ("success", "pass") for n in result.nodes), [
        (n.name, n.status) for n in result.nodes if n.status not in ("success", "pass")]
    for model, columns in CONTRACT.items():
        schema = pq.read_schema(f"{lake.zone_uri(settings, 'gold')}/marts/{model}.parquet")
        assert schema.names == columns, model
    published = read_published(settings)
    assert published is not None
    assert published.run_id == result.run_id and sorted(published.models) == sorted(MARTS)
    assert published.tests_passed == len(result.tests)
    assert set(result.freshness.values()) == {"pass"}


def test_the_project_is_parsed_once_per_process(built: tuple[Any, DbtResult]) -> None:
    settings, first = built
    assert set(first.seconds) == {"parse", "build", "source freshness"}   # one parse, shared
    again = run_dbt(settings, "test", select="stg_fmp_quotes", quiet=True)   # selected: not the verdict
    assert again.ok and again.tests and set(again.seconds) == {"test"}


def test_the_file_log_is_at_info_unless_dbt_is_told_otherwise(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    from jobs.dbt.args import DbtArgs

    monkeypatch.delenv("DBT_LOG_LEVEL_FILE", raising=False)
    argv = DbtArgs("local", tmp_path).cli()
    assert argv[argv.index("--log-level-file") + 1] == "info"
    monkeypatch.setenv("DBT_LOG_LEVEL_FILE", "debug")    # dbt reads it itself: no flag to override it
    assert "--log-level-file" not in DbtArgs("local", tmp_path).cli()


def test_positions_value_shares_at_the_close(built: tuple[Any, DbtResult]) -> None:
    settings, _ = built
    seed = [line.split(",") for line in (PROJECT_DIR / "seeds" / "holdings.csv").read_text().split()[1:]]
    shares: dict[tuple[str, str], float] = {}
    for pid, sym, qty, _cost, _opened in seed:
        shares[pid, sym] = shares.get((pid, sym), 0) + float(qty)
    closes = {(r["symbol"], r["date"]): r["close"] for r in _gold(settings, "fct_daily_prices")}
    positions = _gold(settings, "fct_portfolio_positions")
    assert positions
    for p in positions:
        assert p["shares"] == shares[p["portfolio_id"], p["symbol"]]
        assert p["close"] == closes[p["symbol"], p["date"]]
        assert abs(p["market_value"] - p["shares"] * p["close"]) <= 0.01
    summary = {(s["portfolio_id"], s["date"]): s for s in _gold(settings, "daily_portfolio_summary")}
    for (pid, day), row in summary.items():
        mine = [p for p in positions if p["portfolio_id"] == pid and p["date"] == day]
        assert row["position_count"] == len(mine)
        assert abs(row["market_value"] - sum(p["market_value"] for p in mine)) <= 0.01


def test_quality_record_counts_the_run(built: tuple[Any, DbtResult]) -> None:
    settings, result = built
    record = json.loads(Path(lake.zone_uri(settings, "gold"), "_quality", f"{result.run_id}.json").read_text())
    assert record["tests_run"] == len(result.tests) > 50
    assert record["tests_failed"] == 0 and record["quality_score"] == 1.0 and record["published"]
    assert latest_quality(settings)["run_id"] == result.run_id


def test_failing_test_keeps_previous_gold_and_names_the_test(built: tuple[Any, DbtResult]) -> None:
    settings, good = built
    marts = Path(lake.zone_uri(settings, "gold"), "marts")
    before = {m: (marts / f"{m}.parquet").read_bytes() for m in MARTS}
    silver = Path(lake.zone_uri(settings, "silver"), "eod_prices", f"date={END_DATE}", "part-0.parquet")
    original = silver.read_bytes()
    table = pq.read_table(silver)
    broken = table.set_column(table.schema.get_field_index("high"), "high",
                              pc.subtract(table["low"], 1.0))       # high < low on every row
    pq.write_table(broken, silver)
    try:
        failed = run_dbt(settings, quiet=True)
    finally:
        silver.write_bytes(original)
    assert not failed.ok and not failed.published
    assert any(name.startswith("expression_is_true_fct_daily_prices") for name in failed.failed_tests)
    assert "previous gold left in place" in failed.publish_note
    assert read_published(settings).run_id == good.run_id
    assert {m: (marts / f"{m}.parquet").read_bytes() for m in MARTS} == before
    assert latest_quality(settings)["tests_failed"] == len(failed.failed_tests) > 0


def test_selected_staging_model_builds_without_publishing(built: tuple[Any, DbtResult]) -> None:
    settings, _ = built
    result = run_dbt(settings, select="stg_fmp_quotes", quiet=True)
    assert result.ok and not result.published
    assert [(n.name, n.status) for n in result.nodes if n.resource_type == "model"] == [
        ("stg_fmp_quotes", "success")]
    assert latest_quality(settings)["run_id"] != result.run_id    # partial runs are not the verdict


def test_docs_generate_offline(built: tuple[Any, DbtResult]) -> None:
    settings, _ = built
    result = run_dbt(settings, "docs", quiet=True)
    assert result.ok, result.error
    docs = dbt_home(settings) / "docs"
    catalog = json.loads((docs / "catalog.json").read_text())
    assert "model.finks.daily_portfolio_summary" in catalog["nodes"]
    assert (docs / "index.html").stat().st_size > 10_000


def test_build_without_silver_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="finks transform"):
        run_dbt(lake_settings(tmp_path))


def test_athena_profile_is_complete_and_needs_its_adapter(tmp_path: Path) -> None:
    profile = yaml.safe_load((PROJECT_DIR / "profiles.yml").read_text())["finks"]["outputs"]
    athena = profile["athena"]
    assert athena["type"] == "athena"
    assert {"s3_staging_dir", "region_name", "schema", "database", "work_group"} <= set(athena)
    assert profile["local"]["type"] == "duckdb"
    with pytest.raises(ConfigError, match="dbt-athena"):
        run_dbt(lake_settings(tmp_path), target="athena")


def test_athena_write_audit_publish_audits_in_its_own_schema_before_publishing() -> None:
    from jobs.dbt import AUDIT_SUFFIX, athena_phases

    (audit_schema, audit_args), (publish_schema, publish_args) = athena_phases("finks_prod_gold")
    assert audit_schema == "finks_prod_gold" + AUDIT_SUFFIX and audit_args == ["build"]
    # Publishing rebuilds into the queried schema only what was audited, without re-running tests.
    assert publish_schema == "finks_prod_gold"
    assert publish_args[0] == "build" and "resource_type:test" in publish_args and "--exclude" in publish_args


def test_athena_target_without_the_adapter_is_a_clear_error(tmp_path) -> None:
    from core.errors import ConfigError
    from core.settings import load_settings
    from jobs.dbt import run_dbt

    settings = load_settings(env="local", state_dir=tmp_path)
    with pytest.raises(ConfigError, match="needs dbt-athena"):
        run_dbt(settings, "build", target="athena")
