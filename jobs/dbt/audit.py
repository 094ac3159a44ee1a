"""The audit of a run beyond its tests, and the quality record it leaves.

Stale silver fails the audit like a failing test: ``dbt source freshness``
runs after a clean build, before anything is published.
"""

from __future__ import annotations

import datetime as dt

from core import clock
from jobs.dbt.args import DbtArgs
from jobs.dbt.invoke import invoke
from jobs.dbt.results import DbtResult
from jobs.quality import QualityRecord

_SOURCE_PREFIX = "source.finks."


def audit_freshness(args: DbtArgs, result: DbtResult) -> None:
    """`dbt source freshness` into ``result.freshness``; stale silver fails the run."""
    result.ok = True
    outcome = invoke(["source", "freshness"], args, results_file="sources.json", seconds=result.seconds)
    result.freshness = {n.unique_id.removeprefix(_SOURCE_PREFIX): n.status for n in outcome.nodes}
    if outcome.error or any(s in ("error", "runtime error") for s in result.freshness.values()):
        result.ok = False
        result.error = outcome.error or "stale silver sources: " + ", ".join(
            k for k, s in result.freshness.items() if s != "pass")


def quality_record(result: DbtResult, started: dt.datetime,
                   selection: list[str] | None = None) -> QualityRecord:
    """What the run tested and how it went (warnings count as passed)."""
    tests = result.tests
    passed = sum(1 for t in tests if t.status == "pass")
    warned = sum(1 for t in tests if t.status == "warn")
    failed = [t.name for t in tests if t.status in ("fail", "error")]
    models = [n for n in result.nodes if n.resource_type in ("model", "seed")]
    return QualityRecord(
        run_id=result.run_id, command=result.command, target=result.target,
        started_at=started.isoformat(), finished_at=clock.utcnow().isoformat(),
        ok=result.ok, published=result.published, tests_run=len(tests), tests_passed=passed,
        tests_warned=warned, tests_failed=len(failed),
        quality_score=round((passed + warned) / len(tests), 4) if tests else 1.0,
        failed_tests=failed, freshness=dict(result.freshness),
        models_built=sum(1 for m in models if m.status == "success"),
        models_failed=[m.name for m in models if m.status not in ("success", "skipped")],
        error=result.error, selection=list(selection or []))
