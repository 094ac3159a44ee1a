"""Checks for S16: the daily pipeline, its sub-flows, failures, idempotency and its deployment.

Checks run on the stack of `finks dev up` (validation.support.stack) with the
default local settings; the failure scenarios run on a scratch lake under the
check's work dir, against the same Prefect server. Settings travel to the
flows as objects: nothing here changes the process environment.
"""

from __future__ import annotations

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
    """Where the S16 action records the date and flow run it ran."""
    return settings.home / "pipeline" / "last_run.json"


def pipeline_date(settings: Settings) -> str:
    """The date the S16 action ran (recorded), else the previous trading day."""
    from flows.calendar import previous_trading_day

    marker = last_run_marker(settings)
    if marker.is_file():
        return str(json.loads(marker.read_text())["date"])
    return os.environ.get(SAMPLE_DATE_ENV) or previous_trading_day().isoformat()


def run_daily_pipeline(ctx: CheckContext) -> Evidence:
    """Task action (S16): run the master flow for the previous trading day on the local lake."""
    from flows.master_flow import daily_pipeline

    settings = support.stack(ctx.settings)
    with support.fmp(settings) as source:
        result = daily_pipeline(date=os.environ.get(SAMPLE_DATE_ENV), settings=source)
    marker = last_run_marker(settings)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"date": result["date"], "run_id": result["run_id"]}))
    return Evidence(f"daily pipeline for {result['date']} ok in {result['seconds']:.0f}s",
                    figures={"date": result["date"], "run_id": result["run_id"],
                             "steps": {s["step"]: s["status"] for s in result["steps"]}})


def ingestion_flow_completes(ctx: CheckContext) -> Evidence:
    from flows.ingestion import ingestion_flow

    settings = support.stack(ctx.settings)
    date = pipeline_date(settings)
    with support.fmp(settings) as source:
        result = ingestion_flow(date=date, settings=source)
    bronze = Path(zone_uri(settings, "bronze"))
    records: dict[str, int] = {}
    for ds in result:
        manifests = sorted(bronze.glob(f"fmp/{ds}/date={date}/*/_manifest.json"))
        if manifests:
            symbols = json.loads(manifests[-1].read_text()).get("symbols", {})
            records[ds] = sum(int(v.get("records") or 0) for v in symbols.values())
    missing = [ds for ds in result if ds not in records]
    if missing and settings.storage == "local":
        raise CheckFailed(f"no complete bronze manifest for {missing} on {date}", figures={"result": result})
    return Evidence(f"ingestion flow for {date}: " + ", ".join(
        f"{ds} {records.get(ds, '?')} records ({'already complete, skipped' if r.get('skipped') else 'ingested'})"
        for ds, r in result.items()),
        figures={"records": records, "skipped": {ds: r.get("skipped") for ds, r in result.items()}})


def transformation_flow_processes(ctx: CheckContext) -> Evidence:
    from flows.transformation import transformation_flow

    settings = support.stack(ctx.settings)
    date = pipeline_date(settings)
    result = transformation_flow(date=date, settings=settings)
    written = {d["dataset"]: d["rows_written"] for d in result.get("datasets", [])}
    if not written or min(written.values()) <= 0:
        raise CheckFailed(f"bronze→silver for {date} wrote no rows for some dataset", figures={"rows": written})
    return Evidence(f"transformation flow for {date} wrote {sum(written.values())} silver rows",
                    figures={"rows": written})


def dbt_flow_generates_gold(ctx: CheckContext) -> Evidence:
    import pyarrow.parquet as pq

    from flows.dbt import dbt_flow

    settings = support.stack(ctx.settings)
    date = pipeline_date(settings)
    result = dbt_flow(date=date, settings=settings)
    marts = Path(zone_uri(settings, "gold"), "marts")
    rows = {p.stem: pq.read_metadata(p).num_rows for p in marts.glob("*.parquet")}
    wanted = {"daily_portfolio_summary", "fct_daily_prices", "dim_company", "fct_portfolio_positions"}
    if not wanted <= set(rows) or min(rows[m] for m in wanted) == 0:
        raise CheckFailed(f"gold marts missing or empty in {marts}", figures={"rows": rows})
    return Evidence(f"dbt flow published gold ({result['publication'].get('run_id')}): "
                    + ", ".join(f"{m} {rows[m]} rows" for m in sorted(wanted)), figures={"rows": rows})


def master_flow_orchestrates(ctx: CheckContext) -> Evidence:
    """The latest daily-pipeline run completed and its sub-flows ran in order."""
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
    """Ingestion failure stops downstream and notifies; a Glue timeout fails clearly."""
    from connectors.fmp.simulator import Faults
    from flows.master_flow import PipelineFailed, daily_pipeline
    from flows.notify import read_local

    settings = support.stack(ctx.settings)
    lake = support.scratch_lake(settings, ctx.work_dir / "ingestion-failure" / "lake")
    with support.fmp(lake, faults=Faults(invalid_key=True)) as broken:
        try:
            daily_pipeline(date=SCENARIO_DATE, settings=broken, retry=support.NO_RETRY)
            raise CheckFailed("the pipeline succeeded although FMP rejected every request")
        except PipelineFailed as exc:
            steps = {s["step"]: s["status"] for s in exc.steps}
    notes = read_local(lake)
    silver = list(Path(zone_uri(lake, "silver")).glob(f"*/date={SCENARIO_DATE}/*.parquet"))
    if steps != {"ingestion": "failed", "transformation": "not run", "dbt": "not run"} or silver:
        raise CheckFailed("ingestion failure did not stop downstream",
                          figures={"steps": steps, "silver_files": len(silver)})
    if not notes or notes[-1]["level"] != "error":
        raise CheckFailed("ingestion failure was not notified")
    figures = {"ingestion_failure": steps, "notification": notes[-1]["subject"],
               "glue_timeout": _glue_timeout_scenario(settings)}
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
    from flows.master_flow import daily_pipeline

    settings = support.stack(ctx.settings)
    date = pipeline_date(settings)
    silver_root, gold_root = Path(zone_uri(settings, "silver")), Path(zone_uri(settings, "gold"))

    def snapshot() -> tuple[dict[str, Any], dict[str, Any]]:
        return (support.partition_tables(silver_root, f"*/date={date}/*.parquet"),
                support.partition_tables(gold_root, "marts/*.parquet"))

    with support.fmp(settings) as source:
        daily_pipeline(date=date, settings=source)
        silver, gold = snapshot()
        daily_pipeline(date=date, settings=source)
    silver2, gold2 = snapshot()
    diff = [k for k in set(silver) | set(silver2) if k not in silver or k not in silver2 or not silver[k].equals(silver2[k])]
    diff += [k for k in set(gold) | set(gold2) if k not in gold or k not in gold2 or not gold[k].equals(gold2[k])]
    if diff or not silver or not gold:
        raise CheckFailed(f"re-running {date} changed {diff}", figures={"silver": len(silver), "gold": len(gold)})
    return Evidence(f"re-running {date} left {len(silver)} silver and {len(gold)} gold tables identical",
                    figures={k: t.num_rows for k, t in {**silver, **gold}.items()})


def daily_deployment_scheduled(ctx: CheckContext) -> Evidence:
    """S16 handoff "Deployed with daily schedule": prefect.yaml applied, daily at 02:00 UTC on the pool."""
    from prefect.client.orchestration import get_client

    from flows.deploy import apply_deployments, work_pool

    settings = support.stack(ctx.settings)
    report = apply_deployments(settings)
    with get_client(sync_client=True) as client:
        dep: Any = client.read_deployment_by_name("daily-pipeline/daily")
    crons = [(s.schedule.cron, s.schedule.timezone, s.active) for s in dep.schedules]
    pool, _ = work_pool(settings)
    if crons != [("0 2 * * *", "UTC", True)] or dep.work_pool_name != pool:
        raise CheckFailed(f"daily-pipeline/daily: schedules {crons} on pool {dep.work_pool_name}, "
                          f"expected 0 2 * * * UTC on {pool}")
    return Evidence(f"{len(report) - 1} deployments applied; daily-pipeline/daily runs at 02:00 UTC on pool {pool}",
                    figures={"deployments": sorted(k for k in report if k != "work-pool"), "pool": pool})
