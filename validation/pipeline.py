"""Checks for S16: the daily pipeline, its sub-flows, failures, idempotency and its deployment.

Checks run on the stack of `finks dev up` (validation.support.stack) with the
default local settings; the ingestion check and the failure scenarios run on a
scratch lake under the check's work dir, against the same Prefect server.
Settings travel to the flows as objects: nothing here changes the process
environment. A failed flow run is a failed check (CheckFailed), never an error.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from pathlib import Path
from typing import Any

from core.lake import zone_uri
from core.settings import Settings
from finks.checks import CheckContext, CheckFailed, Evidence
from validation import support

SAMPLE_DATE_ENV = "FINKS_PIPELINE_DATE"
SCENARIO_DATE = "2024-03-14"


def last_run_marker(settings: Settings) -> Path:
    """Where the S16 action records the date, flow run and status of its run."""
    return settings.home / "pipeline" / "last_run.json"


def pipeline_date(settings: Settings) -> str:
    """FINKS_PIPELINE_DATE, else the date the S16 action ran (recorded), else the previous trading day."""
    from flows.calendar import previous_trading_day

    if os.environ.get(SAMPLE_DATE_ENV):
        return os.environ[SAMPLE_DATE_ENV]
    marker = last_run_marker(settings)
    if marker.is_file():
        return str(json.loads(marker.read_text())["date"])
    return previous_trading_day().isoformat()


def run_daily_pipeline(ctx: CheckContext) -> Evidence:
    """Task action (S16): deploy the flows of prefect.yaml, then run the master flow for the
    date on the local lake. A failed run is recorded too: the checks judge the last run, not
    an older one that happened to pass."""
    from flows.calendar import previous_trading_day
    from flows.master_flow import PipelineFailed, daily_pipeline

    settings = support.stack(ctx.settings)
    deployed = sorted(k for k in support.deploy_flows(settings) if k != "work-pool")
    date = os.environ.get(SAMPLE_DATE_ENV) or previous_trading_day().isoformat()
    with support.fmp(settings) as source:
        state: Any = daily_pipeline(date=date, settings=source, return_state=True)
    run_id = str(state.state_details.flow_run_id)
    marker = last_run_marker(settings)
    marker.parent.mkdir(parents=True, exist_ok=True)
    try:
        result = state.result()
    except PipelineFailed as exc:
        marker.write_text(json.dumps({"date": date, "run_id": run_id, "status": "failed"}))
        raise CheckFailed(f"daily pipeline for {date} failed (flow run {run_id}): {exc}",
                          figures={"date": date, "run_id": run_id,
                                   "steps": {s["step"]: s["status"] for s in exc.steps}}) from exc
    marker.write_text(json.dumps({"date": result["date"], "run_id": result["run_id"], "status": "ok"}))
    return Evidence(f"deployed {len(deployed)} flows; daily pipeline for {result['date']} ok in {result['seconds']:.0f}s",
                    figures={"date": result["date"], "run_id": result["run_id"], "deployments": deployed,
                             "steps": {s["step"]: s["status"] for s in result["steps"]}})


def ingestion_flow_completes(ctx: CheckContext) -> Evidence:
    """Run the ingestion flow into a scratch lake: every dataset lands a complete bronze
    partition with records, as its manifest counts them."""
    from flows.errors import PipelineError
    from flows.ingestion import ingestion_flow

    settings = support.stack(ctx.settings)
    date = pipeline_date(settings)
    lake = support.scratch_lake(settings, ctx.work_dir / "ingestion" / "lake")
    with support.fmp(lake) as source:
        try:
            result = ingestion_flow(date=date, settings=source, retry=support.SCRATCH_RETRY)
        except PipelineError as exc:
            raise CheckFailed(f"ingestion flow for {date} failed: {exc}") from exc
    bronze = Path(zone_uri(lake, "bronze"))
    records: dict[str, int] = {}
    for ds in result:
        manifests = sorted(bronze.glob(f"fmp/{ds}/date={date}/*/_manifest.json"))
        if manifests:
            symbols = json.loads(manifests[-1].read_text()).get("symbols", {})
            records[ds] = sum(int(v.get("records") or 0) for v in symbols.values())
    missing = sorted(ds for ds in result if ds not in records)
    empty = sorted(ds for ds, n in records.items() if n <= 0)
    reported = {ds: int(r.get("records") or 0) for ds, r in result.items()}
    figures = {"date": date, "records": records, "reported": reported}
    if not result or missing or empty:
        raise CheckFailed(f"ingestion flow for {date} into an empty lake: "
                          + (f"no complete bronze manifest for {missing}" if missing else
                             f"no records for {empty or 'any dataset'}"), figures=figures)
    disagree = sorted(ds for ds, n in records.items() if n != reported[ds])
    if disagree:
        raise CheckFailed(f"bronze manifests and the flow's result disagree on the records of {disagree}",
                          figures=figures)
    return Evidence(f"ingestion flow for {date} into a scratch lake: "
                    + ", ".join(f"{ds} {n} records" for ds, n in sorted(records.items())), figures=figures)


def transformation_flow_processes(ctx: CheckContext) -> Evidence:
    """Bronze→silver for the pipeline's date: every dataset writes rows, and the silver
    partitions on disk hold exactly the rows the flow reports."""
    import pyarrow.parquet as pq

    from flows.errors import PipelineError
    from flows.transformation import transformation_flow

    settings = support.stack(ctx.settings)
    date = pipeline_date(settings)
    try:
        result = transformation_flow(date=date, settings=settings)
    except PipelineError as exc:
        raise CheckFailed(f"transformation flow for {date} failed: {exc}") from exc
    written = {d["dataset"]: int(d.get("rows_written") or 0) for d in result.get("datasets", [])}
    silver = Path(zone_uri(settings, "silver"))
    on_disk = {ds: sum(pq.read_metadata(p).num_rows for p in silver.glob(f"{ds}/date={date}/*.parquet"))
               for ds in written}
    figures = {"date": date, "rows": written, "silver_rows": on_disk}
    if not written or min(written.values()) <= 0:
        raise CheckFailed(f"bronze→silver for {date} wrote no rows for "
                          f"{sorted(ds for ds, n in written.items() if n <= 0) or 'any dataset'}", figures=figures)
    if on_disk != written:
        raise CheckFailed(f"silver partitions for {date} do not hold the rows the flow reports", figures=figures)
    return Evidence(f"transformation flow for {date} wrote {sum(written.values())} silver rows "
                    f"({', '.join(f'{ds} {n}' for ds, n in sorted(written.items()))}), as the partitions hold",
                    figures=figures)


def dbt_flow_generates_gold(ctx: CheckContext) -> Evidence:
    """dbt build publishes gold: non-empty marts, `_published.json` naming this build."""
    import pyarrow.parquet as pq

    from core.gold import read_published
    from flows.dbt_flow import dbt_flow
    from flows.errors import PipelineError

    settings = support.stack(ctx.settings)
    date = pipeline_date(settings)
    try:
        result = dbt_flow(date=date, settings=settings)
    except PipelineError as exc:
        raise CheckFailed(f"dbt flow for {date} did not publish gold: {exc}") from exc
    marts = Path(zone_uri(settings, "gold"), "marts")
    rows = {p.stem: pq.read_metadata(p).num_rows for p in marts.glob("*.parquet")}
    wanted = {"daily_portfolio_summary", "fct_daily_prices", "dim_company", "fct_portfolio_positions"}
    published = read_published(settings)
    if not wanted <= set(rows) or min(rows[m] for m in wanted) == 0:
        raise CheckFailed(f"gold marts missing or empty in {marts}", figures={"rows": rows})
    if published is None or published.run_id != result.get("run_id"):
        raise CheckFailed(f"gold/_published.json names run {published.run_id if published else None}, "
                          f"not this build's {result.get('run_id')}", figures={"rows": rows})
    return Evidence(f"dbt flow published gold ({published.run_id}): "
                    + ", ".join(f"{m} {rows[m]} rows" for m in sorted(wanted)), figures={"rows": rows})


def master_flow_orchestrates(ctx: CheckContext) -> Evidence:
    """The S16 action's daily-pipeline run (recorded, even when it failed) completed on the
    Prefect server, its sub-flows in order and all completed."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    settings = support.stack(ctx.settings)
    marker = last_run_marker(settings)
    if not marker.is_file():
        run_daily_pipeline(ctx)
    run_id = json.loads(marker.read_text())["run_id"]
    subflows = ["ingestion", "transformation", "dbt"]
    with get_client(sync_client=True) as client:
        parent: Any = client.read_flow_run(uuid.UUID(run_id))
        children: Any = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent.id])),
            sort=FlowRunSort.START_TIME_ASC)
        flows_by_id = {f.id: f.name for f in client.read_flows(
            flow_filter=FlowFilter(name=FlowFilterName(any_=subflows)))}
    order = [flows_by_id.get(c.flow_id, "?") for c in children if c.flow_id in flows_by_id]
    states = {flows_by_id.get(c.flow_id, "?"): c.state_type.value for c in children if c.flow_id in flows_by_id}
    if parent.state_type.value != "COMPLETED" or order != subflows or set(states.values()) != {"COMPLETED"}:
        raise CheckFailed(f"daily-pipeline run {run_id}: {parent.state_type.value}, sub-flows {order} {states}")
    return Evidence(f"daily-pipeline run {parent.name} completed: ingestion → transformation → dbt, all COMPLETED",
                    figures={"flow_run_id": run_id, "subflows": order})


def failures_handled(ctx: CheckContext) -> Evidence:
    """Ingestion failure stops downstream and notifies; a Glue timeout fails clearly. Any other
    outcome of the failure (a crash, a missing notification) is not graceful: failed."""
    from connectors.fmp.simulator import Faults
    from flows.common import read_record
    from flows.master_flow import PipelineFailed, daily_pipeline
    from flows.notify import read_local

    settings = support.stack(ctx.settings)
    lake = support.scratch_lake(settings, ctx.work_dir / "ingestion-failure" / "lake")
    with support.fmp(lake, faults=Faults(invalid_key=True)) as broken:
        try:
            daily_pipeline(date=SCENARIO_DATE, settings=broken, retry=support.NO_RETRY)
        except PipelineFailed as exc:
            steps = {s["step"]: s["status"] for s in exc.steps}
        except Exception as exc:  # noqa: BLE001 - the criterion: anything but a clean report fails it
            raise CheckFailed(f"an ingestion failure crashed the pipeline ({type(exc).__name__}: {exc}) "
                              "instead of stopping it with a report") from exc
        else:
            raise CheckFailed("the pipeline succeeded although FMP rejected every request")
    # The trail is the state dir's, which other runs share: this run's notes are those naming its run id.
    run_id = (read_record(lake, dt.date.fromisoformat(SCENARIO_DATE)) or {}).get("run_id")
    if not run_id:
        raise CheckFailed(f"the failed run left no run record for {SCENARIO_DATE} naming its run id",
                          figures={"steps": steps})
    notes = [n for n in read_local(lake) if (n.get("details") or {}).get("run_id") == run_id]
    silver = list(Path(zone_uri(lake, "silver")).glob(f"*/date={SCENARIO_DATE}/*.parquet"))
    if steps != {"ingestion": "failed", "transformation": "not run", "dbt": "not run"} or silver:
        raise CheckFailed("ingestion failure did not stop downstream",
                          figures={"steps": steps, "silver_files": len(silver)})
    if not notes or notes[-1]["level"] != "error" or "ingestion" not in notes[-1]["message"]:
        raise CheckFailed("ingestion failure was not notified",
                          figures={"last_notification": notes[-1]["subject"] if notes else None})
    with support.own_emulator(lake) as own:  # moto's job-run progression is the whole server's
        glue_timeout = _glue_timeout_scenario(own)
    figures = {"ingestion_failure": steps, "notification": notes[-1]["subject"], "run_id": run_id,
               "glue_timeout": glue_timeout}
    return Evidence("ingestion failure stopped downstream and notified; Glue timeout failed the flow clearly",
                    figures=figures)


def _glue_timeout_scenario(settings: Settings) -> str:
    from core.aws import client as aws_client
    from flows.errors import GlueJobTimeout
    from flows.glue import run_glue_job

    name = support.create_glue_job(settings)
    stuck = {"progression": "manual", "times": 10**9}  # a job run that never leaves RUNNING
    with support.moto_progression(settings, "glue::job_run", stuck):
        try:
            run_glue_job(aws_client(settings, "glue"), name, {"--DATE": SCENARIO_DATE}, timeout_s=2, poll_s=0.2)
        except GlueJobTimeout as exc:
            return str(exc)
    raise CheckFailed("a Glue job run stuck in RUNNING did not time out")


def flows_idempotent(ctx: CheckContext) -> Evidence:
    from flows.master_flow import PipelineFailed, daily_pipeline

    settings = support.stack(ctx.settings)
    date = pipeline_date(settings)
    silver_root, gold_root = Path(zone_uri(settings, "silver")), Path(zone_uri(settings, "gold"))

    def snapshot() -> tuple[dict[str, Any], dict[str, Any]]:
        return (support.partition_tables(silver_root, f"*/date={date}/*.parquet"),
                support.partition_tables(gold_root, "marts/*.parquet"))

    with support.fmp(settings) as source:
        try:
            daily_pipeline(date=date, settings=source)
            silver, gold = snapshot()
            daily_pipeline(date=date, settings=source)
        except PipelineFailed as exc:
            raise CheckFailed(f"the pipeline for {date} did not run twice: {exc}",
                              figures={"steps": {s["step"]: s["status"] for s in exc.steps}}) from exc
    silver2, gold2 = snapshot()
    diff = [k for k in set(silver) | set(silver2) if k not in silver or k not in silver2 or not silver[k].equals(silver2[k])]
    diff += [k for k in set(gold) | set(gold2) if k not in gold or k not in gold2 or not gold[k].equals(gold2[k])]
    if diff or not silver or not gold:
        raise CheckFailed(f"re-running {date} changed {diff}" if diff else f"nothing to compare for {date}",
                          figures={"silver": len(silver), "gold": len(gold)})
    return Evidence(f"re-running {date} left {len(silver)} silver and {len(gold)} gold tables identical",
                    figures={k: t.num_rows for k, t in {**silver, **gold}.items()})


def daily_deployment_scheduled(ctx: CheckContext) -> Evidence:
    """S16 handoff "Deployed with daily schedule": the server holds daily-pipeline/daily, as
    prefect.yaml declares it (the S16 action applies it), daily at 02:00 UTC on the process pool."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from flows.deploy import read_deployments, work_pool

    settings = support.stack(ctx.settings)
    declared = next((d for d in read_deployments(settings.root) if d.get("name") == "daily"), None)
    pool, pool_type = work_pool(settings)
    with get_client(sync_client=True) as client:
        try:
            dep: Any = client.read_deployment_by_name("daily-pipeline/daily")
        except ObjectNotFound:
            raise CheckFailed(f"daily-pipeline/daily is not deployed on {settings.prefect_api}: "
                              "run 'finks run s16' (its action) or 'finks deploy'") from None
        try:
            server_pool: Any = client.read_work_pool(dep.work_pool_name) if dep.work_pool_name else None
        except ObjectNotFound:
            server_pool = None
    crons = [(s.schedule.cron, s.schedule.timezone, s.active) for s in dep.schedules]
    problems = []
    if crons != [("0 2 * * *", "UTC", True)]:
        problems.append(f"schedules {crons}, expected an active 0 2 * * * UTC")
    if dep.work_pool_name != pool or server_pool is None or server_pool.type != pool_type:
        problems.append(f"pool {dep.work_pool_name} ({server_pool.type if server_pool else 'missing'}), "
                        f"expected {pool} ({pool_type})")
    if declared is None or dep.entrypoint != declared.get("entrypoint"):
        problems.append(f"entrypoint {dep.entrypoint}, prefect.yaml declares "
                        f"{declared.get('entrypoint') if declared else 'no daily deployment'}")
    if problems:
        raise CheckFailed("daily-pipeline/daily: " + "; ".join(problems), figures={"schedules": crons})
    return Evidence(f"daily-pipeline/daily is deployed from prefect.yaml ({dep.entrypoint}) and runs at "
                    f"02:00 UTC on {pool_type} pool {pool}",
                    figures={"deployment_id": str(dep.id), "pool": pool, "entrypoint": dep.entrypoint})
