"""Data quality tasks and the quality gate (S17).

Silver is checked after bronze→silver (rows landed, quarantine share within
bounds); gold is gated by the dbt tests inside `dbt build` and verified here
by reading `_published.json` back. The quality score (share of passed
checks, in percent) feeds the DataQualityScore metric.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from core.gold import read_published
from core.settings import Settings
from flows.calendar import parse_date
from flows.common import as_dict, run_settings
from flows.errors import QualityGateFailed

MAX_QUARANTINE_SHARE = 0.25


@task(name="validate-silver")
def validate_silver(date: str, transform: dict[str, Any], max_quarantine_share: float = MAX_QUARANTINE_SHARE) -> dict[str, Any]:
    """Every dataset with bronze must land rows, and rejects must stay a minority."""
    checks: dict[str, bool] = {}
    problems = []
    for ds in transform.get("datasets", []):
        if ds.get("status") == "no_bronze":
            continue
        name, written, rejected = ds["dataset"], ds.get("rows_written", 0), ds.get("quarantined", 0)
        checks[f"{name}:rows_landed"] = written > 0
        share = rejected / max(1, written + rejected)
        checks[f"{name}:quarantine_share"] = share <= max_quarantine_share
        if written == 0:
            problems.append(f"{name}: no rows written")
        if share > max_quarantine_share:
            problems.append(f"{name}: {share:.0%} of rows quarantined (limit {max_quarantine_share:.0%})")
    result = {"checks": checks, "passed": sum(checks.values()), "total": len(checks)}
    if problems and transform.get("runner") != "glue":
        raise QualityGateFailed(f"silver for {date} failed validation: {'; '.join(problems)}",
                                hint="inspect <silver>/_quarantine/ for the rejected rows and their reasons")
    return result


@task(name="check-published", cache_policy=NO_CACHE)
def check_published(settings: Settings, dbt_result: dict[str, Any]) -> dict[str, Any]:
    """Gold counts as published only if `_published.json` says so after this build."""
    published = read_published(settings)
    if not dbt_result.get("published") or published is None:
        raise QualityGateFailed("dbt build passed but gold was not published (no _published.json)",
                                hint="check the dbt runner's publish step")
    run_id = dbt_result.get("run_id")
    if run_id and published.run_id != run_id:
        raise QualityGateFailed(f"gold/_published.json names run {published.run_id}, not this build's {run_id}")
    return published.to_json()


def quality_score(silver: dict[str, Any] | None, dbt_result: dict[str, Any] | None) -> tuple[int, int]:
    """(passed, total) over silver checks and dbt tests."""
    passed = total = 0
    if silver:
        passed, total = int(silver.get("passed", 0)), int(silver.get("total", 0))
    if dbt_result:
        tests = [n for n in dbt_result.get("nodes", []) if n.get("resource_type") in ("test", "unit_test")]
        ok = sum(1 for n in tests if n.get("status") == "pass")
        failed = max(len(tests) - ok, len(dbt_result.get("failed_tests", []) or []))
        passed, total = passed + ok, total + ok + failed
    return passed, total


@flow(name="data-quality", log_prints=True)
def data_quality_flow(date: str | None = None, env: str | None = None,
                      settings: Settings | None = None) -> dict[str, Any]:
    """Re-run the dbt tests against the current models without publishing anything."""
    from jobs.dbt import run_dbt

    day = parse_date(date).isoformat()
    result = run_dbt(run_settings(env, settings), command="test", vars={"run_date": day})
    summary = as_dict(result)
    passed, total = quality_score(None, summary)
    get_run_logger().info("data quality for %s: %d/%d tests passed", day, passed, total)
    if not result.ok:
        raise QualityGateFailed(f"{total - passed} dbt test(s) fail on {day}: {summary.get('failed_tests')}")
    return summary | {"score": 100.0 * passed / max(1, total)}
