"""The commands: finks ingest / fmp-sim via typer, and python -m connectors.fmp."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from connectors.fmp.cli import app
from connectors.fmp.simulator import Faults
from core.errors import UsageError
from tests.fixtures.fmp import TEST_KEY, free_port

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent


def _env(sim, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {"FMP_BASE_URL": sim.base_url, "FMP_API_KEY": TEST_KEY, "FMP_CALLS_PER_MINUTE": "60000",
           "FINKS_STATE_DIR": str(tmp_path / "state"), "FINKS_LAKE_URI": str(tmp_path / "lake")}
    env.update(extra)
    return env


def test_ingest_prints_a_summary_and_exits_zero(fmp_sim, tmp_path) -> None:
    result = runner.invoke(app, ["ingest", "--date", "2024-03-05", "--symbols", "aapl,MSFT"],
                           env=_env(fmp_sim, tmp_path))
    assert result.exit_code == 0, result.output
    assert "quotes 2024-03-05: 2 ok, 0 no data, 0 failed" in result.stdout
    assert TEST_KEY not in result.output


def test_ingest_exits_non_zero_when_a_symbol_failed(make_fmp_sim, tmp_path) -> None:
    sim = make_fmp_sim(faults=Faults(symbol_faults={"MSFT": "402"}))
    result = runner.invoke(app, ["ingest", "--date", "2024-03-05", "--symbols", "AAPL,MSFT", "--json"],
                           env=_env(sim, tmp_path))
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["failed_symbols"] == ["MSFT"] and "/stable/quote" in data["symbols"]["MSFT"]["error"]
    assert TEST_KEY not in result.output


def test_symbols_and_universe_together_is_a_usage_error(fmp_sim, tmp_path) -> None:
    result = runner.invoke(app, ["ingest", "--date", "2024-03-05", "--symbols", "A", "--universe", "default"],
                           env=_env(fmp_sim, tmp_path))
    assert isinstance(result.exception, UsageError)


def test_ingest_starts_the_simulator_when_no_key_is_set(tmp_path) -> None:
    env = {"FINKS_STATE_DIR": str(tmp_path / "state"), "FINKS_LAKE_URI": str(tmp_path / "lake"),
           "FMP_SIM_PORT": str(free_port()), "FMP_CALLS_PER_MINUTE": "60000", "FMP_API_KEY": None,
           "FMP_BASE_URL": None}
    result = runner.invoke(app, ["ingest", "--date", "2024-03-05", "--dataset", "profiles", "--universe",
                                 "default"], env=env)
    assert result.exit_code == 0, result.output
    assert "25 ok" in result.stdout


def test_module_entry_point_reports_errors_in_one_line(make_fmp_sim, tmp_path) -> None:
    sim = make_fmp_sim(faults=Faults(invalid_key=True))
    env = {**os.environ, **_env(sim, tmp_path)}
    proc = subprocess.run(check=False, args=[sys.executable, "-m", "connectors.fmp", "ingest", "--date", "2024-03-05",
                           "--symbols", "AAPL"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: /stable/quote (symbol=AAPL") and "Traceback" not in proc.stderr
    assert TEST_KEY not in proc.stdout + proc.stderr
    bad = subprocess.run(check=False, args=[sys.executable, "-m", "connectors.fmp", "ingest", "--date", "2024-13-01"],
                         env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "invalid date '2024-13-01'" in bad.stderr


def test_module_entry_point_answers_an_unknown_command_with_usage_not_a_traceback() -> None:
    proc = subprocess.run([sys.executable, "-m", "connectors.fmp", "simulate"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Error: No such command 'simulate'." in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_importing_the_cli_stays_light() -> None:
    code = ("import sys, connectors.fmp.cli; heavy = {'httpx', 'boto3', 'prefect', 'duckdb'} & set(sys.modules);"
            " print(sorted(heavy))")
    out = subprocess.run(check=False, args=[sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]"
