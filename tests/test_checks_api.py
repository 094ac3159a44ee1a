"""Every S19 check fails on a broken fixture: gold with a wrong summary, an API whose
cache never hits (a repository copy, run the way finks runs the check there), an
exported OpenAPI document that is out of date. See also tests/test_api_checks.py."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from api import openapi, samplegold
from core import lake
from finks.checks import CheckContext, CheckFailed
from finks.outcomes import Outcome
from tests.fixtures.checks import ROOT, edit, repo_copy, run_target
from validation import api as checks


def context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, root: Path = ROOT) -> CheckContext:
    monkeypatch.setenv("FINKS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("FINKS_LAKE_URI", raising=False)
    monkeypatch.delenv("FINKS_STORAGE", raising=False)
    return CheckContext(env="local", root=root, state_dir=tmp_path / "state", work_dir=tmp_path / "work")


@pytest.mark.check_fails("validation.api:endpoints_work")
def test_endpoints_check_fails_when_the_summary_disagrees_with_the_positions(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    ctx = context(tmp_path, monkeypatch)
    gold = Path(lake.zone_uri(ctx.settings, "gold"))
    sample = samplegold.build(days=4, run_id="wrong-summary")
    summary = pq.read_table(io.BytesIO(sample.files["marts/daily_portfolio_summary.parquet"]))
    index = summary.schema.get_field_index("market_value")
    buffer = io.BytesIO()
    pq.write_table(summary.set_column(index, "market_value", pc.add(summary["market_value"], 1000.0)), buffer)
    sample.files["marts/daily_portfolio_summary.parquet"] = buffer.getvalue()
    samplegold.write(sample, str(gold))

    with pytest.raises(CheckFailed, match="served positions sum to"):
        checks.endpoints_work(ctx)


@pytest.mark.check_fails("validation.api:cache_works")
def test_cache_check_fails_when_responses_are_never_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = repo_copy(tmp_path)
    edit(root / "api" / "service.py", "cache_ttl: float = 300.0", "cache_ttl: float = 0.0")

    result = run_target("validation.api:cache_works", context(tmp_path, monkeypatch, root), timeout=120)

    assert result.outcome is Outcome.failed, result.evidence
    assert "expected miss then hit" in result.evidence.message


@pytest.mark.check_fails("validation.api:openapi_documented")
def test_openapi_check_fails_when_the_exported_document_is_stale(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "project"
    spec = root / openapi.SPEC_PATH
    spec.parent.mkdir(parents=True)
    spec.write_text((ROOT / openapi.SPEC_PATH).read_text().replace('"summary"', '"summary (old)"', 1))

    with pytest.raises(CheckFailed, match="out of date; run 'finks api openapi'"):
        checks.openapi_documented(context(tmp_path, monkeypatch, root))
