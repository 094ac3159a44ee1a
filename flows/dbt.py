"""dbt flow: build the gold models with their tests; publish only when all pass."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.calendar import parse_date
from flows.common import retrying
from flows.quality import check_published
from flows.tasks import dbt_build


@flow(name="dbt", log_prints=True)
def dbt_flow(date: str | None = None, env: str | None = None, runner: str = "auto",
             select: str | None = None) -> dict[str, Any]:
    day = parse_date(date).isoformat()
    result = retrying(dbt_build)(day, env=env, runner=runner, select=select)
    result["publication"] = check_published(env, result)
    return result
