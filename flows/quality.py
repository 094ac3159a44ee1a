"""Data quality tasks and the quality gate (S17).

Silver is checked after bronze→silver (rows landed, quarantine share within
bounds); gold is gated by the dbt tests inside `dbt build` and verified here
by reading back `_published.json` and the build's quality record
(`<gold>/_quality/<run_id>.json`, written by the dbt runner): gold counts as
published only when both name this build and the record shows every test
passing. The record's score (tests passed, in percent) is the
DataQualityScore metric; the flow's result names the record it was read from.

Coverage (`expect_sessions`) follows the NYSE calendar (flows.quality_coverage):
a trading day missing from silver or gold is a finding, named by its date; a
closure (holiday, unscheduled closure) is expected to hold nothing.
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
from flows.quality_coverage import coverage, gold_dates, silver_dates
from jobs.quality import quality_uri, read_quality

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
    """Gold counts as published only if `_published.json` and the build's quality
    record say so after this build; returns the publication with the record it read."""
    published = read_published(settings)
    if not dbt_result.get("published") or published is None:
        raise QualityGateFailed("dbt build passed but gold was not published (no _published.json)",
                                hint="check the dbt runner's publish step")
    run_id = dbt_result.get("run_id")
    if run_id and published.run_id != run_id:
        raise QualityGateFailed(f"gold/_published.json names run {published.run_id}, not this build's {run_id}")
    # An ECS build reports no run id of its own: the publication names the build.
    record = read_quality(settings, published.run_id)
    return published.to_json() | {"quality": quality_gate(settings, published.run_id, record)}


def quality_gate(settings: Settings, run_id: str, record: dict[str, Any] | None) -> dict[str, Any]:
    """The published build's quality record, which must exist and show no failure."""
    where = quality_uri(settings, run_id)
    if record is None:
        raise QualityGateFailed(f"gold was published by run {run_id} but it left no quality record at {where}",
                                hint="the dbt runner writes one per run; rerun the date")
    failed = int(record.get("tests_failed") or 0)
    if record.get("run_id") != run_id or not record.get("ok") or not record.get("published") or failed:
        raise QualityGateFailed(
            f"quality record {where} does not clear the publication: ok={record.get('ok')}, "
            f"published={record.get('published')}, {failed} failing test(s) {record.get('failed_tests', [])[:5]}")
    return {"record": where, "run_id": run_id, **{k: record.get(k) for k in RECORD_FIGURES}}


@task(name="expect-sessions", cache_policy=NO_CACHE)
def expect_sessions(settings: Settings, start: str, end: str, dataset: str = "eod_prices",
                    model: str = "fct_daily_prices") -> dict[str, Any]:
    """Every XNYS session of [start, end] has its silver partition and its rows in the gold mart;
    closures expect neither. Raises QualityGateFailed naming each missing date."""
    silver = coverage(start, end, silver_dates(settings, dataset))
    in_gold = gold_dates(settings, model)
    gold = coverage(start, end, in_gold or ())
    findings = [silver.describe(f"silver {dataset}")] if silver.missing else []
    if in_gold is None:
        findings.append(f"gold {model} was never built")
    elif gold.missing:
        findings.append(gold.describe(f"gold {model}"))
    result = {"silver": silver.to_dict(), "gold": gold.to_dict() if in_gold is not None else None}
    if findings:
        raise QualityGateFailed("; ".join(findings), hint=(
            f"rebuild the missing dates: finks backfill --start {start} --end {end} --force "
            "(or finks pipeline run --date <date> for one)"))
    return result


RECORD_FIGURES = ("quality_score", "tests_run", "tests_passed", "tests_warned", "tests_failed")


def quality_score(silver: dict[str, Any] | None, dbt_result: dict[str, Any] | None) -> tuple[int, int]:
    """(passed, total) of the run's data tests, warnings counting as passed.

    From the quality record when the dbt result names the one it was read from
    (`check_published`), else from the silver checks and the result's test nodes.
    Without a dbt result there is no score: silver checks alone must not make a
    failed gate read as 100%.
    """
    if not dbt_result:
        return 0, 0
    quality = (dbt_result.get("publication") or {}).get("quality")
    if quality:
        return int(quality["tests_passed"]) + int(quality["tests_warned"]), int(quality["tests_run"])
    passed = total = 0
    if silver:
        passed, total = int(silver.get("passed", 0)), int(silver.get("total", 0))
    tests = [n for n in dbt_result.get("nodes", []) if n.get("resource_type") in ("test", "unit_test")]
    ok = sum(1 for n in tests if n.get("status") in ("pass", "warn"))
    failed = max(len(tests) - ok, len(dbt_result.get("failed_tests", []) or []))
    return passed + ok, total + ok + failed


@flow(name="data-quality", log_prints=True)
def data_quality_flow(date: str | None = None, env: str | None = None, settings: Settings | None = None,
                      coverage_from: str | None = None) -> dict[str, Any]:
    """Re-run the dbt tests against the current models without publishing anything; with
    `coverage_from`, also expect every trading day from then to `date` in silver and gold."""
    from jobs.dbt import run_dbt

    day = parse_date(date).isoformat()
    run = run_settings(env, settings)
    covered = expect_sessions(run, coverage_from, day) if coverage_from else None
    result = run_dbt(run, command="test", vars={"run_date": day})
    summary = as_dict(result)
    record = read_quality(run, result.run_id)
    if record is None:
        raise QualityGateFailed(f"dbt test run {result.run_id} left no quality record at {quality_uri(run, result.run_id)}")
    passed, total = int(record["tests_passed"]) + int(record["tests_warned"]), int(record["tests_run"])
    get_run_logger().info("data quality for %s: %d/%d tests passed (%s)", day, passed, total,
                          quality_uri(run, result.run_id))
    if not result.ok:
        raise QualityGateFailed(f"{record['tests_failed']} dbt test(s) fail on {day}: {record.get('failed_tests')}")
    return summary | {"score": round(100.0 * float(record["quality_score"]), 2),
                      "quality_record": quality_uri(run, result.run_id), "coverage": covered}
