"""The typer adapters: `finks transform`, `finks dbt`, `finks testdata`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from jobs import cli
from tests.fixtures.lake import BronzeLake

app = typer.Typer()
app.command("transform")(cli.transform)
app.command("testdata")(cli.testdata)
app.add_typer(cli.dbt_app, name="dbt")


def test_transform_prints_counts_and_json(bronze: BronzeLake) -> None:
    day = bronze.dates[0]
    out = CliRunner().invoke(app, ["transform", "--date", day, "--dataset", "eod_prices"])
    assert out.exit_code == 0, out.output
    assert "eod_prices" in out.output and "quarantined" in out.output
    out = CliRunner().invoke(app, ["transform", "--date", day, "--json"])
    data = json.loads(out.stdout)
    assert data["engine"] == "duckdb" and len(data["datasets"]) == 3
    exp = bronze.generated.expected["eod_prices", day]
    assert next(d for d in data["datasets"] if d["dataset"] == "eod_prices")["rows_written"] == exp.rows


def test_unknown_engine_is_a_usage_error(bronze: BronzeLake) -> None:
    out = CliRunner().invoke(app, ["transform", "--date", bronze.dates[0], "--engine", "pandas"])
    assert out.exit_code != 0
    assert "unknown engine 'pandas'" in str(out.exception)


def test_testdata_writes_bronze_the_transform_reads(lake, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = CliRunner().invoke(app, ["testdata", "--symbols", "3", "--days", "2", "--end", "2024-03-15"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["symbols"] == 3
    out = CliRunner().invoke(app, ["transform", "--date", "2024-03-15", "--json"])
    assert json.loads(out.stdout)["rows_written"] > 0


@pytest.mark.parametrize("module", ["jobs.cli", "jobs.dbt", "jobs.quality"])
def test_module_imports_no_heavy_library(module: str) -> None:
    code = (f"import sys, {module}; heavy = [m for m in ('duckdb', 'pyspark', 'dbt', 'pyarrow', 'prefect') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
