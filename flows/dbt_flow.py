"""dbt flow: build the gold models with their tests; publish only when all pass."""

from __future__ import annotations

from typing import Any

from prefect import flow

from core.settings import Settings
from flows import tracing
from flows.calendar import parse_date
from flows.common import RetryPolicy, retrying, run_retry, run_settings
from flows.quality import check_published
from flows.tasks import dbt_build


@flow(name="dbt", log_prints=True)
def dbt_flow(date: str | None = None, env: str | None = None, runner: str = "auto",
             select: str | None = None, settings: Settings | None = None,
             retry: RetryPolicy | None = None) -> dict[str, Any]:
    run, day = run_settings(env, settings), parse_date(date).isoformat()
    tracing.step(run, "dbt", date=day, select=select)
    result = retrying(dbt_build, run_retry(retry))(run, day, runner=runner, select=select)
    # Gold is published inside the build (write-audit-publish); this span is its verification.
    with tracing.span("publish", date=day, env=run.env):
        result["publication"] = check_published(run, result)
        tracing.annotate(gold_run_id=result["publication"].get("run_id"),
                         tests_passed=result["publication"].get("tests_passed"))
    return result
