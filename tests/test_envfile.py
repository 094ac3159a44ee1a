"""`.env` is read, the environment wins over it, and `.env.example` matches what the code reads."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core import envfile
from core.errors import ConfigError
from core.settings import environment_variables, load_settings

ROOT = Path(__file__).resolve().parent.parent
# Read by the tools finks starts or configures, not by finks' own code.
TOOL_VARIABLES = {"DO_NOT_TRACK", "PREFECT_SERVER_ANALYTICS_ENABLED"}
# Passed from the orchestrator to its own check processes; not for people to set.
INTERNAL = {"FINKS_CHECK_CONTEXT", "FINKS_DBT_DUCKDB_PATH"}
# A variable is read where its whole name stands as a string in our code
# (os.environ.get("X"), envvar="X", NAME = "X" read later).
_READS = re.compile(r"""["']((?:FINKS|FMP)_[A-Z0-9_]+)["']""")


def _code_reads() -> set[str]:
    names: set[str] = set()
    for pkg in ("core", "finks", "connectors", "jobs", "flows", "api", "infra", "validation"):
        for path in (ROOT / pkg).rglob("*.py"):
            # The Pulumi components only set variables on the deployed tasks.
            if "components" not in path.parts:
                names.update(_READS.findall(path.read_text()))
    return (names | environment_variables()) - INTERNAL


@pytest.fixture
def env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / ".env"
    monkeypatch.setenv("FINKS_ENV_FILE", str(path))
    for key in ("FMP_PLAN", "FINKS_PROJECT"):
        monkeypatch.delenv(key, raising=False)
    return path


def _fresh(path: Path) -> None:
    envfile._LOADED.discard(path.resolve())


def test_env_file_sets_what_the_environment_does_not(env_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file.write_text("FMP_PLAN=premium\nFINKS_PROJECT=acme\n")
    monkeypatch.setenv("FINKS_PROJECT", "from-shell")
    _fresh(env_file)
    try:
        settings = load_settings()
        assert settings.fmp_plan == "premium"  # from .env
        assert settings.project == "from-shell"  # the environment wins
    finally:
        os.environ.pop("FMP_PLAN", None)
        _fresh(env_file)


def test_a_misspelt_variable_is_an_error_naming_file_and_line(env_file: Path) -> None:
    env_file.write_text("# comment\nFMP_PLAN=premium\nFINKS_PROJCT=acme\n")
    _fresh(env_file)
    with pytest.raises(ConfigError, match=r"\.env:3 FINKS_PROJCT"):
        envfile.load_env_file()
    assert "FMP_PLAN" not in os.environ  # nothing half-applied


def test_the_cli_reads_env_file(env_file: Path) -> None:
    env_file.write_text("FMP_PLAN=premium\n")
    out = subprocess.run([sys.executable, "-m", "finks", "config", "show", "--json"], cwd=ROOT,
                         capture_output=True, text=True, check=True, env={**os.environ}).stdout
    assert '"fmp_plan": "premium"' in out


def test_env_example_lists_exactly_the_variables_the_code_reads() -> None:
    documented = envfile.documented_variables(ROOT / ".env.example")
    read = _code_reads()
    assert sorted(read - documented) == [], "read by the code but not in .env.example"
    assert sorted(documented - read - TOOL_VARIABLES) == [], "in .env.example but read by nothing"


def test_the_reader_scan_finds_reads_in_every_form(tmp_path: Path) -> None:
    sample = 'os.environ.get("FINKS_A")\nos.environ["FINKS_B"]\nos.getenv("FMP_C")\ntyper.Option(envvar="FINKS_D")\n'
    assert set(_READS.findall(sample)) == {"FINKS_A", "FINKS_B", "FMP_C", "FINKS_D"}
