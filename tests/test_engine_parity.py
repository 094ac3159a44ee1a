"""DuckDB and Spark execute the same SQL and must write the same silver."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from core import lake
from jobs.bronze_to_silver import run
from jobs.engines import SparkEngine
from tests.fixtures.lake import BronzeLake, lake_settings

pytestmark = pytest.mark.spark


def _rows(path: Path) -> list[tuple]:
    table = pq.read_table(path)
    return sorted(tuple(r.values()) for r in table.to_pylist())


def _schema(path: Path) -> list[tuple[str, str]]:
    return [(f.name, str(f.type)) for f in pq.read_schema(path)]


def test_duckdb_and_spark_write_identical_silver_and_quarantine_counts(
        bronze: BronzeLake, spark: object, tmp_path: Path) -> None:
    day = bronze.dates[1]   # has duplicates, nulls, restatements, a missing symbol, malformed records
    other = lake_settings(tmp_path / "spark")
    shutil.copytree(lake.zone_uri(bronze.settings, "bronze"), lake.zone_uri(other, "bronze"))
    duck = run(bronze.settings, day, engine="duckdb")
    sprk = run(other, day, engine_instance=SparkEngine(spark))
    assert sprk.engine == "spark"
    for d, s in zip(duck.datasets, sprk.datasets):
        assert (d.rows_read, d.rows_written, d.deduplicated, d.reasons) == \
               (s.rows_read, s.rows_written, s.deduplicated, s.reasons), d.dataset
        a = Path(lake.zone_uri(bronze.settings, "silver")) / d.dataset / f"date={day}" / "part-0.parquet"
        b = Path(lake.zone_uri(other, "silver")) / d.dataset / f"date={day}" / "part-0.parquet"
        assert _schema(a) == _schema(b), d.dataset
        assert _rows(a) == _rows(b), d.dataset
        assert d.rows_written > 0 and d.quarantined > 0


def test_glue_script_runs_with_glue_style_arguments(bronze: BronzeLake, spark: object,
                                                    tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # in-process: the script's getOrCreate picks up the test session instead of a second JVM
    from jobs.glue_bronze_to_silver import main

    day = bronze.dates[0]
    target = tmp_path / "glue-silver"
    code = main(["glue_bronze_to_silver.py", "--SOURCE", lake.zone_uri(bronze.settings, "bronze"),
                 "--TARGET", str(target), "--DATE", day, "--DATASETS", "eod_prices"])
    assert code == 0
    written = pq.read_table(target / "eod_prices" / f"date={day}" / "part-0.parquet")
    assert written.num_rows == bronze.generated.expected["eod_prices", day].rows
    assert '"engine": "spark"' in capsys.readouterr().out


def test_engines_agree_on_broken_files_and_odd_elements(spark: object, tmp_path: Path) -> None:
    import gzip
    import json

    from jobs.datasets import EOD
    from jobs.engines import DuckDBEngine

    day = "2024-03-15"
    folder = tmp_path / "fmp" / "eod" / f"date={day}" / "ingested_at=20240315T213000Z"
    folder.mkdir(parents=True)
    rec = {"symbol": "AAPL", "date": day, "open": 9.9, "high": 10.5, "low": 9.5, "close": 10.0,
           "volume": 1000, "vwap": 10.1, "change": 0.1, "changePercent": 1.0}
    many = json.dumps([dict(rec, symbol=f"S{i:04d}") for i in range(3000)])
    bodies = [json.dumps([rec, dict(rec, symbol="MSFT", close="n/a"), dict(rec, volume=12.0)]),
              many[:-40], '[{"symbol": "AAPL", "date": "20', json.dumps(rec), "[]",
              '[\n  {"symbol": "META", "date": "2024-03-15", "close": 5},\n  "Limit Reach", null, [1, 2], {}\n]']
    files = []
    for n, body in enumerate(bodies):
        files.append(str(folder / f"part-{n}.json.gz"))
        Path(files[-1]).write_bytes(gzip.compress(body.encode()))
    duck = DuckDBEngine().transform(EOD, day, files, tmp_path / "duck")
    sprk = SparkEngine(spark).transform(EOD, day, files, tmp_path / "spark")
    assert duck.reasons == {"unparseable_file": 3, "not_an_object": 3, "missing_symbol": 1,
                            "malformed_number": 1}
    assert (duck.rows_read, duck.rows_written, duck.deduplicated, duck.reasons) == \
           (sprk.rows_read, sprk.rows_written, sprk.deduplicated, sprk.reasons)
    assert duck.silver_file and sprk.silver_file
    assert _rows(duck.silver_file) == _rows(sprk.silver_file)
