"""The pipeline's tasks: each does one step for one date, with retries.

Locally the steps run in-process (connector, DuckDB, dbt-duckdb); in AWS the
connector and dbt run as ECS tasks and bronze→silver as a Glue job run.
Deterministic failures (a dbt test failing, a date locked) are not retried.

Each task takes the run's Settings object first. They write to the lake and
must never be answered from a cache, hence NO_CACHE (which also spares
Prefect hashing the settings).
"""

from __future__ import annotations

import json
import time
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from core.settings import Settings
from flows import tracing
from flows.calendar import parse_date
from flows.common import as_dict, runner_for
from flows.errors import (
    DateLocked,
    GlueJobTimeout,
    IngestionFailed,
    QualityGateFailed,
    TransformFailed,
)


def not_deterministic(task: Any, task_run: Any, state: Any) -> bool:
    """Retry unless the failure would repeat identically (failed data tests, a held lock)."""
    try:
        state.result()
    except (QualityGateFailed, DateLocked, GlueJobTimeout):
        # A timed-out Glue run may still hold the job's run slot; retrying at once would
        # only hit ConcurrentRunsExceeded.
        return False
    except Exception:  # noqa: BLE001 - anything else may be transient
        return True
    return True


# No tags: Prefect acquires tag concurrency slots through its API queue before every tagged task
# run starts, limit or not (1-2 s per dataset on the local server, three datasets queued behind
# one another). FMP's limit is the connector's (connectors.fmp.limiter: one budget per key).
@task(name="ingest-dataset", retry_condition_fn=not_deterministic, cache_policy=NO_CACHE)
def ingest_dataset(settings: Settings, date: str, dataset: str, force: bool = False,
                   runner: str = "auto", bulk: bool = False, ecs_timeout_s: float = 3600,
                   sharing: int = 1) -> dict[str, Any]:
    """Land one dataset for one date in bronze; skipped when a complete ingestion exists.

    ``sharing``: how many ingestions run at once on the FMP key. In this process they share the
    key's budget (connectors.fmp.limiter); an ECS task is a process of its own, so it is given
    its share of the plan's calls per minute instead."""
    day, logger = parse_date(date), get_run_logger()
    tracing.annotate(date=day.isoformat(), env=settings.env, dataset=dataset)
    if runner_for(settings, runner) == "aws":
        # The connector image's ENTRYPOINT is `python -m connectors.fmp`: override only its arguments.
        command = ["ingest", "--date", day.isoformat(), "--dataset", dataset]
        if force:
            command.append("--force")
        if bulk:
            command.append("--bulk")
        share = {"FMP_CALLS_PER_MINUTE": str(max(1, settings.fmp_rate_limit // max(sharing, 1)))}
        return _ecs_step(settings, "connector", command, ecs_timeout_s, share)
    from connectors.fmp import run_ingest

    kwargs: dict[str, Any] = {"force": force}
    if bulk:
        kwargs["bulk"] = True
    result = run_ingest(settings, day, dataset, **kwargs)
    summary = as_dict(result)
    tracing.annotate(records=summary.get("records"), quarantined=summary.get("quarantined"), skipped=summary.get("skipped"))
    if not result.ok:
        failed = list(getattr(result, "failed_symbols", []) or [])
        raise IngestionFailed(
            f"ingestion of {dataset} for {day} failed for {len(failed)} symbol(s)"
            + (f" (e.g. {', '.join(failed[:5])})" if failed else "")
            + f"; manifest: {getattr(result, 'manifest_uri', None) or 'not written'}",
            hint=f"check FMP availability and rerun: finks pipeline run --date {day}",
        )
    logger.info("ingested %s for %s: %s", dataset, day, "skipped (already complete)" if getattr(result, "skipped", False) else "ok")
    return summary


@task(name="bronze-to-silver", retry_condition_fn=not_deterministic, cache_policy=NO_CACHE)
def bronze_to_silver(settings: Settings, date: str, datasets: list[str] | None = None,
                     runner: str = "auto", glue_timeout_s: float = 3600, glue_poll_s: float = 15) -> dict[str, Any]:
    """Rebuild the date's silver partitions from bronze (replaces, never appends)."""
    day, logger = parse_date(date), get_run_logger()
    tracing.annotate(date=day.isoformat(), env=settings.env, datasets=datasets)
    if runner_for(settings, runner) == "aws":
        from flows.glue import glue_client, job_arguments, job_name, run_glue_job

        glue_run = run_glue_job(
            glue_client(settings), job_name(settings), job_arguments(settings, day, datasets),
            timeout_s=glue_timeout_s, poll_s=glue_poll_s,
            on_state=lambda s: logger.info("Glue job run for %s is %s", day, s),
        )
        return {"runner": "glue", **glue_run.to_dict()}
    from jobs import bronze_to_silver

    result = bronze_to_silver.run(settings, day, datasets=datasets)
    summary = as_dict(result)
    tracing.annotate(rows_written=summary.get("rows_written"), quarantined=summary.get("quarantined"))
    if getattr(result, "ok", True) is False:
        raise TransformFailed(f"bronze→silver for {day} failed: {json.dumps(summary, default=str)[:500]}",
                              hint="see the flow run's log for the failing dataset")
    return {"runner": "local", **summary}


@task(name="dbt-build", retry_condition_fn=not_deterministic, cache_policy=NO_CACHE)
def dbt_build(settings: Settings, date: str, runner: str = "auto", select: str | None = None,
              ecs_timeout_s: float = 3600, gold_wait_s: float = 3600) -> dict[str, Any]:
    """dbt build (models + tests); gold is published only when every test passed."""
    day = parse_date(date)
    dbt_vars = {"run_date": day.isoformat()}
    tracing.annotate(date=day.isoformat(), env=settings.env, select=select)
    if runner_for(settings, runner) == "aws":
        # The dbt image has no ENTRYPOINT: the override is the whole command.
        # --docs: the docs site in gold/_dbt/docs/ follows each published build (nothing else writes it on AWS).
        from jobs.dbt.cli import ECS_COMMAND

        command = [*ECS_COMMAND, "--vars", json.dumps(dbt_vars)]
        if select:
            command += ["--select", select]
        return _ecs_step(settings, "dbt", command, ecs_timeout_s) | {"published": True, "failed_tests": []}
    from flows.lock import named_lock
    from jobs.dbt import run_dbt

    # Gold spans every date: builds of different dates must take turns (dbt is not thread-safe either).
    with named_lock(settings, "gold-build", wait=gold_wait_s):
        result = run_dbt(settings, command="build", select=select, vars=dbt_vars)
    summary = as_dict(result)
    failed = list(getattr(result, "failed_tests", []) or [])
    tracing.annotate(dbt_run_id=summary.get("run_id"), nodes=len(summary.get("nodes") or []), failed_tests=len(failed))
    if failed or not result.ok:
        raise QualityGateFailed(
            f"dbt build for {day} failed ({len(failed)} failing test(s)"
            + (f": {', '.join(map(str, failed[:5]))}" if failed else "")
            + "); gold was not published, the previous gold is still served",
            hint="fix the data or the model, then rerun the date",
        )
    return summary


def _ecs_step(settings: Settings, role: str, command: list[str], timeout_s: float,
              environment: dict[str, str] | None = None) -> dict[str, Any]:
    from flows.blocks import load_aws_credentials, load_ecs_settings
    from flows.ecs import run_ecs_task

    logger = get_run_logger()
    task_settings = load_ecs_settings(settings)
    request = task_settings.run_task_request(role, command, {"FINKS_ENV": settings.env, **(environment or {})})
    started = time.monotonic()
    run = run_ecs_task(load_aws_credentials(settings).get_client("ecs"), request, timeout_s=timeout_s,
                       on_status=lambda s: logger.info("ECS %s task is %s", role, s))
    return {"runner": "ecs", "seconds": round(time.monotonic() - started, 2), **run.to_dict()}

