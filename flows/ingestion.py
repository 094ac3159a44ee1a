"""Ingestion flow: land the date's FMP datasets in bronze (connector in-process or on ECS)."""

from __future__ import annotations

from typing import Any

from prefect import flow

from core.settings import Settings
from flows import tracing
from flows.calendar import parse_date
from flows.common import DEFAULT_DATASETS, RetryPolicy, retrying, run_retry, run_settings
from flows.tasks import ingest_dataset


@flow(name="ingestion", log_prints=True)
def ingestion_flow(date: str | None = None, datasets: list[str] | None = None, env: str | None = None,
                   force: bool = False, runner: str = "auto", bulk: bool = False,
                   settings: Settings | None = None, retry: RetryPolicy | None = None) -> dict[str, Any]:
    """Each dataset is its own task, so a retry repeats only the dataset that failed."""
    run, day = run_settings(env, settings), parse_date(date).isoformat()
    chosen = datasets or list(DEFAULT_DATASETS)
    tracing.step(run, "ingestion", date=day, datasets=chosen)
    task = retrying(ingest_dataset, run_retry(retry))
    # At once, on one FMP key: `sharing` keeps them under the plan's limit together.
    futures = {ds: task.submit(run, day, ds, force=force, runner=runner, bulk=bulk and ds == "eod",
                               sharing=len(chosen))
               for ds in chosen}
    # result() raises the first failure; the flow fails and the master stops downstream.
    return {ds: f.result() for ds, f in futures.items()}
