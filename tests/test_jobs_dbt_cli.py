"""``python -m jobs.dbt``: the dbt image's command on ECS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs.dbt.cli import main


def test_docs_flag_goes_with_build_only(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["test", "--docs"])
    assert exit_info.value.code == 2
    assert "--docs goes with build (it documents what the build published), not test" in capsys.readouterr().err


def test_a_build_that_cannot_start_documents_nothing_and_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """No silver yet: the build stops with finks' error on stderr, nothing on stdout, and no docs run."""
    monkeypatch.setenv("FINKS_ENV", "local")
    monkeypatch.setenv("FINKS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("FINKS_LAKE_URI", str(tmp_path / "lake"))
    code = main(["build", "--docs", "--target", "local"])
    out, err = capsys.readouterr()
    assert code != 0 and out == ""
    assert err.startswith("jobs.dbt: error: ") and "silver" in err
    assert not (tmp_path / "lake" / "gold" / "_dbt" / "docs").exists()


def test_build_with_docs_prints_both_runs_as_one_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The command the dbt task runs daily, end to end on dbt-duckdb: gold published, then its docs."""
    from core.settings import load_settings
    from jobs.bronze_to_silver import run
    from jobs.testdata import generate_bronze, trading_days
    from validation.aws.seed_transform import END, holdings_symbols

    for name, value in (("FINKS_ENV", "local"), ("FINKS_STATE_DIR", str(tmp_path / "state")),
                        ("FINKS_LAKE_URI", str(tmp_path / "lake"))):
        monkeypatch.setenv(name, value)
    settings = load_settings()
    for day in generate_bronze(settings, holdings_symbols(), trading_days(END, 2)).dates:
        assert run(settings, day, engine="duckdb").ok
    code = main(["build", "--docs", "--target", "local"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    assert out["command"] == "build" and out["published"] is True
    assert out["docs"]["command"] == "docs" and out["docs"]["ok"] is True
    assert out["docs"]["artifacts"].rstrip("/").endswith("gold/_dbt/docs")
    assert (tmp_path / "lake" / "gold" / "_dbt" / "docs" / "catalog.json").is_file()
