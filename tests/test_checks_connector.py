"""Every S15 connector check can fail: against a copy of the connector broken in one place
(run the way finks runs checks, in a child process rooted at the copy), recorded samples
that drifted, a Dockerfile that runs as root, an FMP that fails a symbol."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.fmp.simulator import Faults, SimulatorServer
from finks.checks import CheckFailed
from finks.outcomes import Outcome
from tests.fixtures.checks import context, edit, repo_copy, run_target
from validation import connector as checks


def _broken_connector(tmp_path: Path, file: str, old: str, new: str) -> Path:
    root = repo_copy(tmp_path)
    edit(root / "connectors" / "fmp" / file, old, new)
    return root


def _assert_failed(result, match: str) -> None:
    assert result.outcome is Outcome.failed, (result.outcome, result.evidence.message, result.evidence.excerpt[-1500:])
    assert match in result.evidence.message, result.evidence.message


# A writer that truncates every part it stores: manifests then list checksums of data that is not there.
TRUNCATING_WRITER = ("        self.store.put(key, data)\n        return key, hashlib.sha256(data).hexdigest()",
                     "        self.store.put(key, data[:-8])\n        return key, hashlib.sha256(data).hexdigest()")


# Connectors that break the key's limit, each in one place. Whether their retries outlast the
# 429s depends on timing; either way the check names the 429s.
LIMIT_BREAKERS = [
    pytest.param("limiter.py", "        self.limit = calls_per_minute\n", "        self.limit = None\n",
                 id="ignores-its-limit"),
    # a limiter counting 40 calls over half the window the simulator counts them over: twice the rate
    pytest.param("ingest.py", "window_s=opts.window_s, budget=budget)", "window_s=opts.window_s / 2, budget=budget)",
                 id="halves-the-configured-window"),
    # two datasets at once, each limiter counting only its own calls: together twice the key's rate
    pytest.param("ingest.py", "window_s=opts.window_s, budget=budget)", "window_s=opts.window_s)",
                 id="keeps-a-budget-per-ingestion"),
]


@pytest.mark.slow
@pytest.mark.check_fails("validation.connector:rate_limit_holds")
@pytest.mark.parametrize(("file", "old", "new"), LIMIT_BREAKERS)
def test_rate_limit_check_fails_for_a_connector_that_breaks_the_keys_limit(tmp_path: Path, file: str, old: str,
                                                                          new: str) -> None:
    root = _broken_connector(tmp_path, file, old, new)
    result = run_target("validation.connector:rate_limit_holds", context(tmp_path, root), timeout=300)
    _assert_failed(result, "answered 429")
    assert result.evidence.figures["rejected_429"] > 0


@pytest.mark.slow
@pytest.mark.check_fails("validation.connector:rate_limit_holds")
def test_rate_limit_check_fails_for_a_limiter_that_paces_below_the_limit(tmp_path: Path) -> None:
    """Never a 429, every symbol lands, but a quarter of the plan's calls are left unused."""
    root = _broken_connector(tmp_path, "ingest.py", "window_s=opts.window_s, budget=budget)",
                             "window_s=opts.window_s * 1.25, budget=budget)")
    result = run_target("validation.connector:rate_limit_holds", context(tmp_path, root), timeout=300)
    _assert_failed(result, "below 95%")
    assert result.evidence.figures["rejected_429"] == 0


@pytest.mark.slow
@pytest.mark.check_fails("validation.connector:errors_handled")
def test_error_check_fails_for_a_connector_that_takes_an_error_message_for_data(tmp_path: Path) -> None:
    root = _broken_connector(tmp_path, "client.py", 'if isinstance(data, dict) and "Error Message" in data:',
                             'if False and isinstance(data, dict) and "Error Message" in data:')
    result = run_target("validation.connector:errors_handled", context(tmp_path, root), timeout=300)
    _assert_failed(result, "Error Message with HTTP 200 is an error")


@pytest.mark.check_fails("validation.connector:schemas_validate")
def test_schema_check_fails_when_a_recorded_sample_drifts_from_the_simulator(tmp_path: Path) -> None:
    root = repo_copy(tmp_path, "connectors")
    path = root / "connectors" / "fmp" / "samples" / "quote_stable.json"
    records = json.loads(path.read_text())
    records[0]["price"] = str(records[0]["price"])  # FMP started quoting prices as strings
    path.write_text(json.dumps(records))
    with pytest.raises(CheckFailed, match="simulator /stable/quote differs from the recording in fields or types"):
        checks.schemas_validate(context(tmp_path, root))


@pytest.mark.check_fails("validation.connector:schemas_validate")
def test_schema_check_fails_on_a_recorded_sample_that_is_not_valid(tmp_path: Path) -> None:
    root = repo_copy(tmp_path, "connectors")
    path = root / "connectors" / "fmp" / "samples" / "profile_stable.json"
    records = json.loads(path.read_text())
    records[0]["symbol"] = ""
    path.write_text(json.dumps(records))
    with pytest.raises(CheckFailed, match="recorded profile_stable.json fails"):
        checks.schemas_validate(context(tmp_path, root))


@pytest.mark.check_fails("validation.connector:lands_in_bronze")
def test_landing_check_fails_for_a_writer_that_corrupts_its_parts(tmp_path: Path) -> None:
    root = _broken_connector(tmp_path, "writer.py", *TRUNCATING_WRITER)
    result = run_target("validation.connector:lands_in_bronze", context(tmp_path, root), timeout=300)
    _assert_failed(result, "missing or has the wrong checksum")


@pytest.mark.check_fails("validation.connector:image_defined")
def test_image_check_fails_for_a_dockerfile_that_runs_as_root_with_a_baked_in_key(tmp_path: Path) -> None:
    root = repo_copy(tmp_path, "connectors")
    dockerfile = root / "connectors" / "Dockerfile"
    lines = [ln for ln in dockerfile.read_text().splitlines() if not ln.strip().startswith("USER")]
    dockerfile.write_text("\n".join(lines + ["ENV FMP_API_KEY=abcdef0123456789"]) + "\n")
    with pytest.raises(CheckFailed, match="non-root user, no key baked in") as failed:
        checks.image_defined(context(tmp_path, root))
    assert failed.value.evidence.figures["entrypoint command works"] is True


@pytest.mark.slow
@pytest.mark.check_fails("validation.connector:full_extraction")
def test_extraction_check_fails_for_a_writer_that_corrupts_its_parts(tmp_path: Path) -> None:
    # The command runs from ctx.root (`python -m connectors.fmp`): the broken copy is what runs.
    root = _broken_connector(tmp_path, "writer.py", *TRUNCATING_WRITER)
    with pytest.raises(CheckFailed, match="quotes"):
        checks.full_extraction(context(tmp_path, root))


@pytest.mark.check_fails("validation.connector:ingest_sample_day")
def test_sample_day_action_fails_when_fmp_fails_a_symbol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with SimulatorServer(port=0, faults=Faults(symbol_faults={"AAPL": "402"})) as sim:
        for key, value in {"FMP_BASE_URL": sim.base_url, "FMP_API_KEY": checks.PROBE_KEY, "FMP_CALLS_PER_MINUTE": "60000",
                           "FINKS_STATE_DIR": str(tmp_path / "state"), "FINKS_LAKE_URI": str(tmp_path / "lake"),
                           "FINKS_SAMPLE_DATE": "2024-03-05"}.items():
            monkeypatch.setenv(key, value)
        with pytest.raises(CheckFailed, match="sample day 2024-03-05: quotes failed for AAPL"):
            checks.ingest_sample_day(context(tmp_path))
