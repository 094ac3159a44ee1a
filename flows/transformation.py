"""Transformation flow: bronze→silver for a date (DuckDB locally, a Glue job run in AWS),
then the silver checks of the quality module."""

from __future__ import annotations

from typing import Any

from prefect import flow

from core.settings import Settings
from flows import tracing
from flows.calendar import parse_date
from flows.common import RetryPolicy, retrying, run_retry, run_settings
from flows.quality import validate_silver
from flows.tasks import bronze_to_silver


@flow(name="transformation", log_prints=True)
def transformation_flow(date: str | None = None, datasets: list[str] | None = None, env: str | None = None,
                        runner: str = "auto", glue_timeout_s: float = 3600, glue_poll_s: float = 15,
                        settings: Settings | None = None, retry: RetryPolicy | None = None) -> dict[str, Any]:
    run, day = run_settings(env, settings), parse_date(date).isoformat()
    tracing.step(run, "transformation", date=day, datasets=datasets)
    result = retrying(bronze_to_silver, run_retry(retry))(run, day, datasets, runner=runner,
                                                          glue_timeout_s=glue_timeout_s, glue_poll_s=glue_poll_s)
    tracing.annotate(rows_written=result.get("rows_written"), quarantined=result.get("quarantined"))
    result["validation"] = validate_silver(day, result)
    return result
