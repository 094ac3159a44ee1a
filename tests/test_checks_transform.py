"""Every S12/S13/S14/S17 transformation check can fail: against a copy of the repository
with one model, job or project file broken, run the way finks runs checks (a child
process whose imports and dbt project come from the copy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from finks.checks import CheckFailed
from finks.outcomes import Outcome
from tests.fixtures.checks import context, edit, repo_copy, run_target
from validation import transform as checks


def _assert_failed(result, match: str) -> None:
    assert result.outcome is Outcome.failed, (result.outcome, result.evidence.message, result.evidence.excerpt[-1500:])
    assert match in result.evidence.message, result.evidence.message


def _run_broken(tmp_path: Path, target: str, file: str, old: str, new: str, timeout: float = 600):
    root = repo_copy(tmp_path)
    edit(root / file, old, new)
    return run_target(f"validation.transform:{target}", context(tmp_path, root), timeout=timeout)


# ---- S12 -----------------------------------------------------------------------
@pytest.mark.check_fails("validation.transform:dbt_dockerfile")
def test_dockerfile_check_fails_without_the_athena_adapter(tmp_path: Path) -> None:
    root = repo_copy(tmp_path, "dbt_project")
    edit(root / "dbt_project" / "Dockerfile", '"dbt-athena~=1.10" ', "")
    with pytest.raises(CheckFailed, match="dbt-athena is not installed"):
        checks.dbt_dockerfile(context(tmp_path, root))


@pytest.mark.check_fails("validation.transform:dbt_dockerfile")
def test_dockerfile_check_fails_for_an_image_that_runs_as_root(tmp_path: Path) -> None:
    root = repo_copy(tmp_path, "dbt_project")
    dockerfile = root / "dbt_project" / "Dockerfile"
    dockerfile.write_text("\n".join(ln for ln in dockerfile.read_text().splitlines() if not ln.startswith("USER")) + "\n")
    with pytest.raises(CheckFailed, match="does not drop root"):
        checks.dbt_dockerfile(context(tmp_path, root))


@pytest.mark.check_fails("validation.transform:athena_profile_valid")
def test_athena_profile_check_fails_without_a_work_group(tmp_path: Path) -> None:
    root = repo_copy(tmp_path, "dbt_project")
    edit(root / "dbt_project" / "profiles.yml",
         "      work_group: \"{{ env_var('FINKS_ATHENA_WORKGROUP', 'finks-dev') }}\"\n", "")
    with pytest.raises(CheckFailed, match="athena output lacks work_group"):
        checks.athena_profile_valid(context(tmp_path, root))


@pytest.mark.check_fails("validation.transform:athena_profile_valid")
def test_athena_profile_check_fails_without_profiles(tmp_path: Path) -> None:
    root = repo_copy(tmp_path, "dbt_project")
    (root / "dbt_project" / "profiles.yml").write_text("other:\n  outputs: {}\n")
    with pytest.raises(CheckFailed, match="no output 'athena' of type athena"):
        checks.athena_profile_valid(context(tmp_path, root))


@pytest.mark.slow
@pytest.mark.check_fails("validation.transform:dbt_runs_locally")
def test_dbt_run_check_fails_on_a_broken_staging_model(tmp_path: Path) -> None:
    result = _run_broken(tmp_path, "dbt_runs_locally", "dbt_project/models/staging/stg_fmp_quotes.sql",
                         "select * from renamed", "select * from renamed_which_does_not_exist")
    _assert_failed(result, "dbt build of stg_fmp_quotes failed")


# ---- S13 -----------------------------------------------------------------------
@pytest.mark.check_fails("validation.transform:spark_job_runs")
def test_spark_check_fails_for_a_script_that_does_not_take_glue_arguments(tmp_path: Path) -> None:
    # The script runs from ctx.root (`python -m jobs.glue_bronze_to_silver`): the broken copy is what runs.
    root = repo_copy(tmp_path)
    edit(root / "jobs" / "glue_bronze_to_silver.py", 'parser.add_argument(f"--{name}", required=True)',
         'parser.add_argument(f"--{name}_PATH", required=True)')
    with pytest.raises(CheckFailed, match="the Glue script failed"):
        checks.spark_job_runs(context(tmp_path, root))


@pytest.mark.slow
@pytest.mark.spark
@pytest.mark.check_fails("validation.transform:engines_agree")
def test_parity_check_fails_when_spark_loses_the_quarantine_reasons(tmp_path: Path) -> None:
    result = _run_broken(tmp_path, "engines_agree", "jobs/engines.py",
                         'reasons = {r["reason"]: r["n"] for r in self.spark.sql(sql["reasons"]).collect()}',
                         "reasons = {}", timeout=900)
    _assert_failed(result, "counts differ")


# ---- S14 -----------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.check_fails("validation.transform:staging_models_build")
def test_staging_check_fails_when_a_staging_view_is_empty(tmp_path: Path) -> None:
    result = _run_broken(tmp_path, "staging_models_build", "dbt_project/models/staging/stg_fmp_company_profile.sql",
                         "select * from renamed", "select * from renamed where false")
    _assert_failed(result, "a staging view is empty")
    assert result.evidence.figures["stg_fmp_company_profile"] == 0


@pytest.mark.slow
@pytest.mark.check_fails("validation.transform:portfolio_summary_correct")
def test_summary_check_fails_when_positions_are_valued_off_the_close(tmp_path: Path) -> None:
    result = _run_broken(tmp_path, "portfolio_summary_correct", "dbt_project/models/marts/fct_portfolio_positions.sql",
                         "shares * close as exact_market_value", "shares * close * 1.01 as exact_market_value")
    _assert_failed(result, "gold not published")


@pytest.mark.slow
@pytest.mark.check_fails("validation.transform:dbt_tests_pass")
def test_dbt_tests_check_fails_on_a_failing_test(tmp_path: Path) -> None:
    root = repo_copy(tmp_path)
    (root / "dbt_project" / "tests" / "singular" / "assert_nothing_is_wrong.sql").write_text("select 1 as wrong\n")
    result = run_target("validation.transform:dbt_tests_pass", context(tmp_path, root))
    _assert_failed(result, "dbt tests failed: assert_nothing_is_wrong")


@pytest.mark.slow
@pytest.mark.check_fails("validation.transform:docs_generated")
def test_docs_check_fails_when_the_catalog_documents_no_model(tmp_path: Path) -> None:
    result = _run_broken(tmp_path, "docs_generated", "jobs/dbt/run.py",
                         'invoke(["docs", "generate"', 'invoke(["docs", "generate", "--empty-catalog"')
    _assert_failed(result, "dbt docs catalog lacks models")


# ---- S17 -----------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.check_fails("validation.transform:quality_tests_defined_and_pass")
def test_quality_check_fails_without_source_freshness(tmp_path: Path) -> None:
    result = _run_broken(tmp_path, "quality_tests_defined_and_pass", "dbt_project/models/staging/_sources.yml",
                         "      freshness:\n        warn_after: {count: 36, period: hour}\n        error_after: {count: 7, period: day}\n",
                         "")
    _assert_failed(result, "quality tests missing: freshness")


@pytest.mark.check_fails("validation.transform:test_data_generator_injects_defects")
def test_generator_check_fails_when_its_ground_truth_forgets_the_duplicates(tmp_path: Path) -> None:
    result = _run_broken(tmp_path, "test_data_generator_injects_defects", "jobs/testdata.py",
                         "    exp.deduplicated += len(dupes)\n", "    exp.deduplicated += 0\n")
    _assert_failed(result, "job result differs from injected defects")


@pytest.mark.slow
@pytest.mark.check_fails("validation.transform:quality_results_recorded")
def test_quality_record_check_fails_when_no_record_is_written(tmp_path: Path) -> None:
    result = _run_broken(tmp_path, "quality_results_recorded", "jobs/quality.py",
                         "    for name in names:\n", "    for name in names[:0]:\n")
    _assert_failed(result, "no quality record for the last dbt run")
