"""The S19 check functions, run the way finks runs them (in-process here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from api import samplegold
from core import lake
from finks.checks import CheckContext, CheckFailed
from validation import api as checks

ROOT = Path(__file__).resolve().parent.parent


def context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CheckContext:
    monkeypatch.setenv("FINKS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("FINKS_LAKE_URI", raising=False)
    monkeypatch.delenv("FINKS_STORAGE", raising=False)
    return CheckContext(
        env="local", root=ROOT, state_dir=tmp_path / "state", work_dir=tmp_path / "work"
    )


@pytest.mark.check_fails("validation.api:endpoints_work")
def test_endpoints_check_fails_naming_what_to_run_when_gold_is_unpublished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(
        CheckFailed, match=r"no gold published at .*_published.json: run 'finks run s16' first"
    ):
        checks.endpoints_work(context(tmp_path, monkeypatch))


def test_endpoints_check_passes_on_published_gold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = context(tmp_path, monkeypatch)
    samplegold.write(
        samplegold.build(days=4, run_id="published-run"), str(lake.zone_uri(ctx.settings, "gold"))
    )

    evidence = checks.endpoints_work(ctx)

    assert "published-run" in evidence.message
    assert evidence.figures["portfolios"] == 2 and evidence.figures["summary_rows"] == 4


@pytest.mark.check_fails("validation.api:endpoints_work")
def test_endpoints_check_fails_when_a_mart_is_unreadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = context(tmp_path, monkeypatch)
    gold = Path(lake.zone_uri(ctx.settings, "gold"))
    samplegold.write(samplegold.build(days=2), str(gold))
    (gold / "marts" / "fct_portfolio_positions.parquet").write_bytes(b"not parquet")

    with pytest.raises(CheckFailed, match="positions"):
        checks.endpoints_work(ctx)


def test_cache_and_openapi_checks_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = context(tmp_path, monkeypatch)
    assert checks.cache_works(ctx).figures["invalidations"] == 1
    assert "docs/api/openapi.json is current" in checks.openapi_documented(ctx).message
