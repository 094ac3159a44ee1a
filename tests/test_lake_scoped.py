"""What belongs to a lake stays with it: its pipeline locks and its dbt warehouse.

A check runs the pipeline on a scratch lake under the same state dir as the real
lake (the stack's Prefect and moto are shared). Its runs must neither wait for
the real lake's locks nor replace the warehouse `finks dbt test` and the docs of
the real lake read.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from core.settings import Settings, load_settings
from flows.errors import DateLocked
from flows.lock import date_lock, lock_path
from jobs.dbt import dbt_home, run_dbt
from tests.fixtures.lake import END_DATE, HOLDING_SYMBOLS

DAY = dt.date(2024, 3, 14)


def _lakes(tmp_path: Path) -> tuple[Settings, Settings]:
    own = load_settings(env="local", state_dir=tmp_path / "state")
    return own, own.model_copy(update={"lake_uri": str(tmp_path / "scratch" / "lake")})


def test_a_dates_lock_is_held_per_lake(tmp_path: Path) -> None:
    own, scratch = _lakes(tmp_path)
    with date_lock(own, DAY, run_id="real"):
        with date_lock(scratch, DAY, run_id="check"):  # another lake: no wait
            assert lock_path(scratch, f"pipeline-{DAY}").is_relative_to(tmp_path / "scratch" / "lake")
        with pytest.raises(DateLocked, match=f"pipeline {DAY} is locked by run real"):
            with date_lock(own.model_copy(), DAY, run_id="second"):  # the same lake: refused
                pass
    assert lock_path(own, f"pipeline-{DAY}").is_relative_to(tmp_path / "state" / "lake" / "silver" / "_locks")


def test_each_lake_has_its_own_dbt_home_and_the_parse_is_shared(tmp_path: Path) -> None:
    own, scratch = _lakes(tmp_path)
    other = own.model_copy(update={"lake_uri": str(tmp_path / "other")})
    assert dbt_home(own) == tmp_path / "state" / "dbt"
    assert dbt_home(own.model_copy(update={"lake_uri": str(tmp_path / "state" / "lake")})) == dbt_home(own)
    homes = {dbt_home(own), dbt_home(scratch), dbt_home(other)}
    assert len(homes) == 3 and all(h.is_relative_to(tmp_path / "state" / "dbt") for h in homes)


def _with_silver(settings: Settings) -> Settings:
    from jobs.bronze_to_silver import run
    from jobs.testdata import generate_bronze, trading_days

    for day in generate_bronze(settings, HOLDING_SYMBOLS, trading_days(END_DATE, 2)).dates:
        assert run(settings, day).ok
    return settings


@pytest.mark.slow
def test_building_a_scratch_lake_leaves_the_real_lakes_warehouse_alone(tmp_path: Path) -> None:
    real, scratch = (_with_silver(s) for s in _lakes(tmp_path))
    built = run_dbt(real, quiet=True)
    assert built.ok and built.published, built.error
    warehouse = dbt_home(real) / "warehouse.duckdb"
    before = warehouse.stat().st_mtime_ns, warehouse.read_bytes()
    scratched = run_dbt(scratch, quiet=True)
    assert scratched.ok and scratched.published, scratched.error
    assert (dbt_home(scratch) / "warehouse.duckdb").is_file()
    assert (warehouse.stat().st_mtime_ns, warehouse.read_bytes()) == before, "the scratch build replaced it"
