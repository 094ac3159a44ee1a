"""The daily pipeline: ingest → bronze→silver → dbt build with tests → publish gold.

A flow of flows. The date's lock is held for the whole run, so a second run
of the same date waits (`lock_wait_s`) or stops with a clear message. A
failing step stops everything downstream, notifies, and leaves the previous
gold in place (dbt publishes only after its tests pass).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from core.clock import now_iso
from core.settings import Settings
from flows import metrics, tracing
from flows.calendar import parse_date
from flows.common import RetryPolicy, StepOutcome, run_retry, run_settings, write_record
from flows.dbt_flow import dbt_flow
from flows.errors import PipelineError
from flows.ingestion import ingestion_flow
from flows.lock import date_lock
from flows.notify import Notifier
from flows.quality import quality_score
from flows.transformation import transformation_flow

STEPS = ("ingestion", "transformation", "dbt")


class PipelineFailed(PipelineError):
    """A step failed; `steps` holds every step's outcome for the report."""

    def __init__(self, message: str, steps: list[dict[str, Any]], *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.steps = steps


@flow(name="daily-pipeline", log_prints=True)
def daily_pipeline(date: str | None = None, datasets: list[str] | None = None, env: str | None = None,
                   force: bool = False, runner: str = "auto", lock_wait_s: float = 0,
                   glue_timeout_s: float = 3600, glue_poll_s: float = 15,
                   settings: Settings | None = None, retry: RetryPolicy | None = None) -> dict[str, Any]:
    """Run one trading date end to end (default: the previous trading day).

    A deployment passes `env` (or nothing: FINKS_ENV); in-process callers may pass
    ready `settings` and `retry` objects, which the sub-flows receive as they are.
    """
    settings, policy, day = run_settings(env, settings), run_retry(retry), parse_date(date)
    iso, logger = day.isoformat(), get_run_logger()
    notifier = Notifier.for_settings(settings)
    run_id = str(flow_run.get_id() or "")
    tracing.step(settings, "daily-pipeline", date=iso, run_id=run_id, datasets=datasets)
    started = time.monotonic()
    outcomes: list[StepOutcome] = []
    results: dict[str, Any] = {}
    with date_lock(settings, day, run_id=run_id, wait=lock_wait_s):
        steps = {
            "ingestion": lambda: ingestion_flow(iso, datasets, force=force, runner=runner,
                                                settings=settings, retry=policy),
            "transformation": lambda: transformation_flow(iso, _silver_names(datasets), runner=runner,
                                                          glue_timeout_s=glue_timeout_s, glue_poll_s=glue_poll_s,
                                                          settings=settings, retry=policy),
            "dbt": lambda: dbt_flow(iso, runner=runner, settings=settings, retry=policy),
        }
        failure: Exception | None = None
        for name, step in steps.items():
            if failure is not None:
                outcomes.append(StepOutcome(name, "not run", "upstream step failed"))
                continue
            t0 = time.monotonic()
            try:
                with subflow_settings():
                    results[name] = step()
                outcomes.append(StepOutcome(name, "ok", _describe(name, results[name]), time.monotonic() - t0))
            except Exception as exc:  # noqa: BLE001 - reported, notified, then re-raised below
                failure = exc
                outcomes.append(StepOutcome(name, "failed", str(exc), time.monotonic() - t0))
        elapsed = time.monotonic() - started
        _emit_metrics(settings, day, results, outcomes, elapsed)
        report = [o.to_dict() for o in outcomes]
        write_record(settings, day, {
            "date": iso, "run_id": run_id, "finished_at": now_iso(), "seconds": round(elapsed, 2),
            "silver": "ok" if "transformation" in results else "failed",
            "gold": "ok" if "dbt" in results else "failed", "steps": report,
        })
    if failure is not None:
        failed = next(o for o in outcomes if o.status == "failed")
        notifier.send(f"finks {settings.env} pipeline FAILED for {iso}", f"step {failed.step}: {failed.detail}",
                      level="error", details={"run_id": run_id, "steps": report})
        raise PipelineFailed(f"pipeline for {iso} failed at {failed.step}: {failure}", report) from failure
    notifier.send(f"finks {settings.env} pipeline succeeded for {iso}", f"{len(outcomes)} steps in {elapsed:.0f}s",
                  details={"run_id": run_id})
    logger.info("pipeline for %s done in %.1fs", iso, elapsed)
    return {"date": iso, "run_id": run_id, "status": "ok", "seconds": round(elapsed, 2), "steps": report, "results": results}


def subflow_settings() -> Any:
    """Settings for a step's sub-flow run: no heartbeat thread of its own.

    Prefect (3.9) gives every flow run a heartbeat thread that sleeps in 1 s steps and is
    joined when the run ends, so each sub-flow's end waits up to a second for it (about 2 s of
    a 10 s pipeline, sampled). The sub-flows run in this flow's process and thread: this run's
    heartbeats already say whether the process is alive, and a crash ends both."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    return temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})


def _silver_names(datasets: list[str] | None) -> list[str] | None:
    # Bronze `eod` becomes silver `eod_prices`; the others keep their names.
    return None if datasets is None else [("eod_prices" if d == "eod" else d) for d in datasets]


def _describe(step: str, result: dict[str, Any]) -> str:
    if step == "ingestion":
        return ", ".join(f"{ds}: {'skipped' if r.get('skipped') else 'ok'}" for ds, r in result.items())
    if step == "transformation":
        return f"{result.get('rows_written', '?')} rows written, {result.get('quarantined', '?')} quarantined"
    passed, total = quality_score(None, result)
    return f"{passed}/{total} tests passed, gold published"


def _emit_metrics(settings: Settings, day: dt.date, results: dict[str, Any], outcomes: list[StepOutcome], elapsed: float) -> None:
    data = [metrics.pipeline_latency("pipeline", elapsed)]
    data += [metrics.pipeline_latency(o.step, o.seconds) for o in outcomes if o.status == "ok"]
    transform = results.get("transformation") or {}
    for ds in transform.get("datasets", []):
        data.append(metrics.records_processed("transformation", int(ds.get("rows_written", 0)), ds.get("dataset")))
    passed, total = quality_score(transform.get("validation"), results.get("dbt"))
    failed_gate = any(o.step == "dbt" and o.status == "failed" for o in outcomes)
    if total or failed_gate:
        data.append(metrics.data_quality_score(passed, total + (1 if failed_gate and not total else 0)))
    if any(o.status == "failed" for o in outcomes):
        data.append(metrics.Metric("StepFailures", 1.0, "Count", (("Step", "pipeline"),)))
    metrics.emit(settings, data, run_date=day)
