"""Checks for S16, S17, S18 and S20: the daily pipeline, its failures and
idempotency, the quality gate, backfill and custom metrics. (The Prefect
server, worker and blocks of S8-S10 are in validation.prefect_stack.)

Checks use the default local settings (the stack of `finks dev up`), start
what they need idempotently and never stop a stack they did not start (the
restart check restarts the Prefect server only, which is its criterion).
Scenarios that break things (failures, the quality gate) run on a throw-away
lake under the check's work dir, against the same Prefect server.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.lake import zone_uri
from core.settings import Settings, load_settings
from finks.checks import CheckContext, CheckFailed, Evidence
from validation.prefect_stack import _stack

SAMPLE_DATE_ENV = "FINKS_PIPELINE_DATE"


# ---- helpers -------------------------------------------------------------------

@contextmanager
def _fmp(settings: Settings, **sim_options: Any) -> Iterator[str]:
    """The FMP source for this check: real FMP if a key is set, else a simulator of our own."""
    if not settings.uses_simulator and not sim_options:
        yield settings.fmp_url
        return
    from connectors.fmp.simulator import SimulatorServer

    old = os.environ.get("FMP_BASE_URL")
    with SimulatorServer(port=0, **sim_options) as sim:
        os.environ["FMP_BASE_URL"] = sim.base_url
        try:
            yield sim.base_url
        finally:
            if old is None:
                os.environ.pop("FMP_BASE_URL", None)
            else:
                os.environ["FMP_BASE_URL"] = old


@contextmanager
def _scratch_lake(ctx: CheckContext, name: str) -> Iterator[Settings]:
    """A throw-away lake for destructive scenarios; the same Prefect server."""
    import shutil

    old = os.environ.get("FINKS_LAKE_URI")
    lake = ctx.work_dir / name / "lake"
    shutil.rmtree(lake, ignore_errors=True)  # a previous attempt's leftovers would change the scenario
    os.environ["FINKS_LAKE_URI"] = str(lake)
    os.environ.setdefault("FINKS_TASK_RETRY_DELAY_S", "1")
    try:
        yield load_settings(env=ctx.env, root=ctx.root)
    finally:
        if old is None:
            os.environ.pop("FINKS_LAKE_URI", None)
        else:
            os.environ["FINKS_LAKE_URI"] = old


def _pipeline_date(settings: Settings) -> str:
    """The date the S16 action ran (recorded), else the previous trading day."""
    from flows.calendar import previous_trading_day

    marker = settings.home / "pipeline" / "last_run.json"
    if marker.is_file():
        return str(json.loads(marker.read_text())["date"])
    return os.environ.get(SAMPLE_DATE_ENV) or previous_trading_day().isoformat()


def _tables(root: Path, pattern: str) -> dict[str, Any]:
    import pyarrow.parquet as pq
    import pyarrow.types as pt

    def canonical(table: Any) -> Any:  # a partition is a set of rows: compare in a fixed order
        return table.sort_by([(c, "ascending") for c in table.column_names if not pt.is_nested(table.schema.field(c).type)])

    return {str(p.relative_to(root)): canonical(pq.read_table(p)) for p in sorted(root.glob(pattern))}


# ---- S16: the pipeline ---------------------------------------------------------

def run_daily_pipeline(ctx: CheckContext) -> Evidence:
    """Task action (S16): run the master flow for the previous trading day on the local lake."""
    from flows.master_flow import daily_pipeline

    settings = _stack(ctx.settings)
    date = os.environ.get(SAMPLE_DATE_ENV)
    with _fmp(settings):
        result = daily_pipeline(date=date)
    marker = settings.home / "pipeline" / "last_run.json"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"date": result["date"], "run_id": result["run_id"]}))
    return Evidence(f"daily pipeline for {result['date']} ok in {result['seconds']:.0f}s",
                    figures={"date": result["date"], "run_id": result["run_id"],
                             "steps": {s["step"]: s["status"] for s in result["steps"]}})


def ingestion_flow_completes(ctx: CheckContext) -> Evidence:
    from flows.ingestion import ingestion_flow

    settings = _stack(ctx.settings)
    date = _pipeline_date(settings)
    with _fmp(settings):
        result = ingestion_flow(date=date)
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
        for ds, r in result.items()), figures={"records": records, "skipped": {ds: r.get("skipped") for ds, r in result.items()}})


def transformation_flow_processes(ctx: CheckContext) -> Evidence:
    from flows.transformation import transformation_flow

    settings = _stack(ctx.settings)
    date = _pipeline_date(settings)
    result = transformation_flow(date=date)
    written = {d["dataset"]: d["rows_written"] for d in result.get("datasets", [])}
    if not written or min(written.values()) <= 0:
        raise CheckFailed(f"bronze→silver for {date} wrote no rows for some dataset", figures={"rows": written})
    return Evidence(f"transformation flow for {date} wrote {sum(written.values())} silver rows", figures={"rows": written})


def dbt_flow_generates_gold(ctx: CheckContext) -> Evidence:
    import pyarrow.parquet as pq

    from flows.dbt import dbt_flow

    settings = _stack(ctx.settings)
    date = _pipeline_date(settings)
    result = dbt_flow(date=date)
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

    settings = _stack(ctx.settings)
    marker = settings.home / "pipeline" / "last_run.json"
    if not marker.is_file():
        run_daily_pipeline(ctx)
    run_id = json.loads(marker.read_text())["run_id"]
    with get_client(sync_client=True) as client:
        parent: Any = client.read_flow_run(uuid.UUID(run_id))
        children: Any = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent.id])),
            sort=FlowRunSort.START_TIME_ASC)
        flows_by_id = {f.id: f.name for f in client.read_flows(flow_filter=FlowFilter(name=FlowFilterName(any_=["ingestion", "transformation", "dbt"])))}
    order = [flows_by_id.get(c.flow_id, "?") for c in children if c.flow_id in flows_by_id]
    states = {flows_by_id.get(c.flow_id, "?"): c.state_type.value for c in children if c.flow_id in flows_by_id}
    if parent.state_type.value != "COMPLETED" or order != ["ingestion", "transformation", "dbt"] \
            or set(states.values()) != {"COMPLETED"}:
        raise CheckFailed(f"daily-pipeline run {run_id}: {parent.state_type.value}, sub-flows {order} {states}")
    return Evidence(f"daily-pipeline run {parent.name} completed: ingestion → transformation → dbt, all COMPLETED",
                    figures={"flow_run_id": run_id, "subflows": order})


def failures_handled(ctx: CheckContext) -> Evidence:
    """Ingestion failure stops downstream and notifies; a Glue timeout fails clearly."""
    from connectors.fmp.simulator import Faults
    from flows.master_flow import PipelineFailed, daily_pipeline
    from flows.notify import read_local

    settings = _stack(ctx.settings)
    figures: dict[str, Any] = {}
    with _scratch_lake(ctx, "ingestion-failure") as lake, _fmp(lake, faults=Faults(invalid_key=True)):
        os.environ["FINKS_TASK_RETRIES"] = "0"
        try:
            daily_pipeline(date="2024-03-14")
            raise CheckFailed("the pipeline succeeded although FMP rejected every request")
        except PipelineFailed as exc:
            steps = {s["step"]: s["status"] for s in exc.steps}
        finally:
            os.environ.pop("FINKS_TASK_RETRIES", None)
        notes = read_local(lake)
        silver = list(Path(zone_uri(lake, "silver")).glob("*/date=2024-03-14/*.parquet"))
    if steps != {"ingestion": "failed", "transformation": "not run", "dbt": "not run"} or silver:
        raise CheckFailed("ingestion failure did not stop downstream", figures={"steps": steps, "silver_files": len(silver)})
    if not notes or notes[-1]["level"] != "error":
        raise CheckFailed("ingestion failure was not notified")
    figures["ingestion_failure"] = steps
    figures["notification"] = notes[-1]["subject"]
    figures["glue_timeout"] = _glue_timeout_scenario(ctx, settings)
    return Evidence("ingestion failure stopped downstream and notified; Glue timeout failed the flow clearly", figures=figures)


def _glue_timeout_scenario(ctx: CheckContext, settings: Settings) -> str:
    import httpx

    from core.aws import client as aws_client
    from flows.errors import GlueJobTimeout
    from flows.glue import job_name, run_glue_job

    glue = aws_client(settings, "glue")
    name = job_name(settings)
    try:
        glue.create_job(Name=name, Role="arn:aws:iam::123456789012:role/glue",
                        Command={"Name": "glueetl", "ScriptLocation": "s3://scripts/bronze_to_silver.py"})
    except glue.exceptions.AlreadyExistsException:
        pass
    api = f"{settings.s3_endpoint}/moto-api/state-manager"
    httpx.post(f"{api}/set-transition", json={"model_name": "glue::job_run",
                                              "transition": {"progression": "manual", "times": 10**9}}).raise_for_status()
    try:
        run_glue_job(glue, name, {"--DATE": "2024-03-14"}, timeout_s=2, poll_s=0.2)
    except GlueJobTimeout as exc:
        return str(exc)
    finally:
        httpx.post(f"{api}/unset-transition", json={"model_name": "glue::job_run"})
    raise CheckFailed("a Glue job run stuck in RUNNING did not time out")


def flows_idempotent(ctx: CheckContext) -> Evidence:
    from flows.master_flow import daily_pipeline

    settings = _stack(ctx.settings)
    date = _pipeline_date(settings)
    silver_root, gold_root = Path(zone_uri(settings, "silver")), Path(zone_uri(settings, "gold"))
    with _fmp(settings):
        daily_pipeline(date=date)
        silver, gold = _tables(silver_root, f"*/date={date}/*.parquet"), _tables(gold_root, "marts/*.parquet")
        daily_pipeline(date=date)
    silver2, gold2 = _tables(silver_root, f"*/date={date}/*.parquet"), _tables(gold_root, "marts/*.parquet")
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

    settings = _stack(ctx.settings)
    report = apply_deployments(settings)
    with get_client(sync_client=True) as client:
        dep: Any = client.read_deployment_by_name("daily-pipeline/daily")
    crons = [(s.schedule.cron, s.schedule.timezone, s.active) for s in dep.schedules]
    pool, _ = work_pool(settings)
    if crons != [("0 2 * * *", "UTC", True)] or dep.work_pool_name != pool:
        raise CheckFailed(f"daily-pipeline/daily: schedules {crons} on pool {dep.work_pool_name}, expected 0 2 * * * UTC on {pool}")
    return Evidence(f"{len(report) - 1} deployments applied; daily-pipeline/daily runs at 02:00 UTC on pool {pool}",
                    figures={"deployments": sorted(k for k in report if k != "work-pool"), "pool": pool})


# ---- S17: the quality gate -------------------------------------------------------

def quality_gate_blocks_publish(ctx: CheckContext) -> Evidence:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from flows.master_flow import PipelineFailed, daily_pipeline

    _stack(ctx.settings)
    with _scratch_lake(ctx, "quality-gate") as lake, _fmp(lake):
        daily_pipeline(date="2024-03-14")
        gold_root = Path(zone_uri(lake, "gold"))
        before = _tables(gold_root, "marts/*.parquet")
        published = (gold_root / "_published.json").read_text()
        good = pq.read_table(next(Path(zone_uri(lake, "silver")).glob("eod_prices/date=2024-03-14/*.parquet")))
        bad = good.set_column(good.schema.get_field_index("high"), "high", pc.subtract(good["low"], 1.0))
        bad = bad.set_column(bad.schema.get_field_index("date"), "date",
                             pa.array([__import__("datetime").date(2024, 3, 13)] * bad.num_rows, good.schema.field("date").type))
        target = Path(zone_uri(lake, "silver"), "eod_prices", "date=2024-03-13", "part-0.parquet")
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(bad, target)
        try:
            daily_pipeline(date="2024-03-15")
            raise CheckFailed("the pipeline published gold although silver breaks the dbt tests")
        except PipelineFailed as exc:
            message, steps = exc.message, {s["step"]: s["status"] for s in exc.steps}
        after = _tables(gold_root, "marts/*.parquet")
        kept = (gold_root / "_published.json").read_text() == published and after.keys() == before.keys() \
            and all(after[k].equals(before[k]) for k in before)
    if steps.get("dbt") != "failed" or not kept:
        raise CheckFailed("dbt test failures did not block the publish", figures={"steps": steps, "gold_kept": kept})
    return Evidence("failing dbt tests blocked the publish; the previous gold stayed byte-for-byte",
                    figures={"steps": steps, "message": message[:300]})


# ---- S18: backfill -----------------------------------------------------------------

def _backfill_range() -> tuple[str, str]:
    from flows.calendar import previous_trading_day, trading_days

    end = previous_trading_day()
    start = end
    while len(trading_days(start, end)) < 30:
        start = start.fromordinal(start.toordinal() - 1)
    return start.isoformat(), end.isoformat()


def run_backfill_30_days(ctx: CheckContext) -> Evidence:
    """Task action (S18): backfill the last 30 trading days of the default universe, with resource use."""
    import psutil

    from flows.backfill import backfill_flow

    settings = _stack(ctx.settings)
    start, end = _backfill_range()
    proc = psutil.Process()
    peak = {"rss": proc.memory_info().rss, "cpu_percent": 0.0}
    stop = False

    def sample() -> None:
        proc.cpu_percent(None)
        while not stop:
            time.sleep(0.5)
            peak["rss"] = max(peak["rss"], proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True)))
            peak["cpu_percent"] = max(peak["cpu_percent"], proc.cpu_percent(None))

    import threading

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu0 = proc.cpu_times()
    t0 = time.monotonic()
    try:
        with _fmp(settings):
            report = backfill_flow(start=start, end=end, concurrency=4)
    finally:
        stop = True
        sampler.join()
    cpu1 = proc.cpu_times()
    resources = {"wall_s": round(time.monotonic() - t0, 1), "cpu_s": round((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system), 1),
                 "peak_rss_mb": round(peak["rss"] / 2**20), "peak_cpu_percent": peak["cpu_percent"]}
    record = {"start": start, "end": end, "report": {k: v for k, v in report.items() if k != "results"}, "resources": resources}
    out = settings.home / "pipeline" / "backfill_30_days.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, default=str))
    return Evidence(f"backfill {start}..{end}: {report['ran']} ran, {report['skipped']} skipped in {resources['wall_s']}s; "
                    f"peak RSS {resources['peak_rss_mb']} MB, CPU {resources['cpu_s']}s", figures=record)


def backfill_30_days(ctx: CheckContext) -> Evidence:
    from flows.calendar import parse_date, trading_days
    from flows.common import completed_dates

    settings = ctx.settings
    out = settings.home / "pipeline" / "backfill_30_days.json"
    if not out.is_file():
        run_backfill_30_days(ctx)
    record = json.loads(out.read_text())
    days = set(trading_days(parse_date(record["start"]), parse_date(record["end"])))
    missing = sorted(days - completed_dates(settings))
    if len(days) < 30 or missing or record["report"].get("gold") != "published":
        raise CheckFailed(f"backfill {record['start']}..{record['end']} incomplete: {len(missing)} dates missing",
                          figures={"missing": [d.isoformat() for d in missing[:10]], "gold": record["report"].get("gold")})
    return Evidence(f"{len(days)} trading days {record['start']}..{record['end']} complete, gold published; "
                    f"resources: {record['resources']}", figures=record)


# ---- S20: custom metrics -----------------------------------------------------------

def custom_metrics_emitted(ctx: CheckContext) -> Evidence:
    from core.aws import client as aws_client
    from flows import metrics

    settings = _stack(ctx.settings)
    cw = aws_client(settings, "cloudwatch")
    wanted = {"RecordsProcessed", "PipelineLatency", "DataQualityScore"}

    def present() -> set[str]:
        return {m["MetricName"] for m in cw.list_metrics(Namespace=metrics.NAMESPACE)["Metrics"]}

    if not wanted <= present():
        run_daily_pipeline(ctx)  # the pipeline emits them; moto keeps metrics in memory only
    found = present()
    if not wanted <= found:
        raise CheckFailed(f"metrics missing in CloudWatch namespace {metrics.NAMESPACE}: {sorted(wanted - found)}")
    return Evidence(f"CloudWatch namespace {metrics.NAMESPACE} has {', '.join(sorted(wanted))} (emulator)",
                    figures={"metrics": sorted(found)})
