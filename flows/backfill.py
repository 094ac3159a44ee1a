"""Historical backfill (S18): a date range, in parallel, resumable.

Per date (bounded concurrency): ingest → bronze→silver under the date's
lock. Gold is one dbt build over all of silver at the end, because the marts
span every date and dbt builds must not run concurrently. Dates already
completed are skipped, a failed date is reported without stopping the
others, and progress is visible as a Prefect progress artifact, log lines and
`finks.progress` events (which the CLI draws; see core.logsetup).
Ranges longer than `bulk_after_days` use FMP's bulk EOD endpoint (one call
per date for every symbol). The report, with the resources the run used, is
kept in the lake (flows.backfill_report), complete or not.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from core.clock import now_iso
from core.logsetup import progress
from core.settings import Settings
from flows import metrics
from flows.backfill_report import ResourceMeter, write_report
from flows.calendar import parse_date, trading_days
from flows.common import (
    RetryPolicy,
    completed_dates,
    retrying,
    run_retry,
    run_settings,
    write_record,
)
from flows.errors import DateLocked, PipelineError, QualityGateFailed
from flows.lock import date_lock
from flows.notify import Notifier
from flows.tasks import bronze_to_silver, dbt_build, ingest_dataset

BULK_AFTER_DAYS = 5


class BackfillIncomplete(PipelineError):
    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message, hint="rerun the same command: completed dates are skipped")
        self.report = report


@task(name="backfill-date", cache_policy=NO_CACHE)
def backfill_date(settings: Settings, date: str, datasets: list[str], force: bool, bulk: bool,
                  lock_wait_s: float, retry: RetryPolicy, sharing: int = 1) -> dict[str, Any]:
    """One date to silver; never raises, so one bad date cannot sink the range. ``sharing``: the
    dates ingesting at once on the FMP key (see ``ingest_dataset``)."""
    day = parse_date(date)
    t0 = time.monotonic()
    try:
        with date_lock(settings, day, wait=lock_wait_s):
            ingested = {}
            for ds in datasets:
                # Called as plain functions inside this task: the retry policy is applied here.
                ingested[ds] = _with_retries(retry, lambda ds=ds: ingest_dataset.fn(
                    settings, date, ds, force=force, bulk=bulk and ds == "eod", sharing=sharing))
            silver = [("eod_prices" if d == "eod" else d) for d in datasets]
            transformed = _with_retries(retry, lambda: bronze_to_silver.fn(settings, date, silver))
            write_record(settings, day, {"date": date, "finished_at": now_iso(), "silver": "ok", "by": "backfill",
                                         "rows_written": transformed.get("rows_written")})
        return {"date": date, "status": "ok", "seconds": round(time.monotonic() - t0, 2),
                "rows_written": transformed.get("rows_written", 0)}
    except Exception as exc:  # noqa: BLE001 - reported per date
        return {"date": date, "status": "failed", "seconds": round(time.monotonic() - t0, 2),
                "error": f"{type(exc).__name__}: {exc}"}


def _with_retries(policy: RetryPolicy, fn: Any) -> Any:
    for attempt in range(policy.retries + 1):
        try:
            return fn()
        except (DateLocked, QualityGateFailed):
            raise
        except Exception:
            if attempt >= policy.retries:
                raise
            time.sleep(policy.delays[min(attempt, len(policy.delays) - 1)])


@flow(name="backfill", log_prints=True)
def backfill_flow(start: str, end: str, concurrency: int = 4, datasets: list[str] | None = None,
                  env: str | None = None, force: bool = False, bulk: bool | None = None,
                  lock_wait_s: float = 600, build_gold: bool = True,
                  settings: Settings | None = None, retry: RetryPolicy | None = None) -> dict[str, Any]:
    """Backfill [start, end]; `settings` and `retry` as for the daily pipeline."""
    first, last = parse_date(start, what="start"), parse_date(end, what="end")
    if last < first:
        from core.errors import UsageError

        raise UsageError(f"backfill range is empty: end {last} is before start {first}")
    settings, policy, logger = run_settings(env, settings), run_retry(retry), get_run_logger()
    meter = ResourceMeter.start()
    days = trading_days(first, last)
    done = set() if force else completed_dates(settings)
    todo = [d for d in days if d not in done]
    use_bulk = len(days) > BULK_AFTER_DAYS if bulk is None else bulk
    chosen = datasets or (["eod"] if use_bulk else ["quotes", "profiles", "eod"])
    # Quotes and profiles are snapshots: with bulk EOD, the range's last date carries them
    # so the marts (company dimension, quotes staging) have data to build from.
    snapshot_extra = [] if datasets or not use_bulk else ["quotes", "profiles"]
    logger.info("backfill %s..%s: %d trading days, %d already complete, %d to run (concurrency %d, %s)",
                first, last, len(days), len(days) - len(todo), len(todo), concurrency,
                "bulk EOD" if use_bulk else "per-symbol endpoints")
    started = time.monotonic()
    results: list[dict[str, Any]] = [{"date": d.isoformat(), "status": "skipped"} for d in days if d in done]
    progress("start", title=f"backfill {first}..{last}", total=len(todo), unit="dates")
    if len(days) > len(todo):
        progress("note", text=f"{len(days) - len(todo)} of {len(days)} dates already complete, skipped")
    artifact: Any = create_progress_artifact(progress=0.0 if todo else 100.0, key=f"backfill-{first}-{last}",
                                        description=f"backfill {first}..{last}")
    if todo:
        runner: ThreadPoolTaskRunner[Any]
        with ThreadPoolTaskRunner(max_workers=max(1, concurrency)) as runner:
            futures: dict[cf.Future[Any], Any] = {runner.submit(backfill_date, {  # type: ignore[arg-type]
                "settings": settings, "date": d.isoformat(),
                "datasets": chosen + (snapshot_extra if d == days[-1] else []),
                "force": force, "bulk": use_bulk, "lock_wait_s": lock_wait_s, "retry": policy,
                "sharing": min(max(1, concurrency), len(todo)),
            }).wrapped_future: d for d in todo}
            for n, fut in enumerate(cf.as_completed(futures), 1):
                outcome = _unwrap(fut, futures[fut].isoformat())
                results.append(outcome)
                update_progress_artifact(artifact, 100.0 * n / len(todo))
                progress("advance", item=outcome["date"], status=outcome["status"], detail=outcome.get("error", ""))
                logger.info("backfill %d/%d: %s %s%s", n, len(todo), outcome["date"], outcome["status"],
                            f" ({outcome['error']})" if outcome.get("error") else "")
    results.sort(key=lambda r: r["date"])
    failed = [r for r in results if r["status"] == "failed"]
    gold: dict[str, Any] | str = "not run"
    ran = [r for r in results if r["status"] == "ok"]
    if build_gold and (ran or not failed):
        last_ok = max((r["date"] for r in results if r["status"] != "failed"), default=last.isoformat())
        progress("note", text="building gold (dbt build)")
        try:
            gold = retrying(dbt_build, policy)(settings, last_ok)
        except Exception as exc:  # noqa: BLE001 - reported with the dates
            gold = f"failed: {exc}"
    elapsed = time.monotonic() - started
    report = {"start": first.isoformat(), "end": last.isoformat(), "dates": len(days), "ran": len(ran),
              "skipped": len(days) - len(todo), "failed": [r["date"] for r in failed], "concurrency": concurrency,
              "bulk": use_bulk, "datasets": chosen, "seconds": round(elapsed, 2), "results": results,
              "gold": gold if isinstance(gold, str) else "published", "resources": meter.stop()}
    try:
        report["report_uri"] = write_report(settings, report)
    except Exception as exc:  # noqa: BLE001 - the dates are done; a lost report must not undo them
        logger.warning("backfill %s..%s: report not kept: %s", first, last, exc)
    metrics.emit(settings, [metrics.pipeline_latency("backfill", elapsed),
                            metrics.records_processed("backfill", sum(int(r.get("rows_written", 0)) for r in ran))])
    if failed or (isinstance(gold, str) and gold.startswith("failed")):
        what = f"{len(failed)} of {len(days)} dates failed ({', '.join(r['date'] for r in failed[:5])})" if failed else f"gold {gold}"
        Notifier.for_settings(settings).send(f"finks {settings.env} backfill incomplete", what, level="error",
                                             details={"failed": failed})
        raise BackfillIncomplete(f"backfill {first}..{last}: {what}", report)
    return report


def _unwrap(fut: cf.Future, date: str) -> dict[str, Any]:
    try:
        state = fut.result()
        return state.result() if hasattr(state, "result") else state
    except Exception as exc:  # noqa: BLE001
        return {"date": date, "status": "failed", "error": f"{type(exc).__name__}: {exc}"}
