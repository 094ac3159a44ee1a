"""Checks for S8, S9, S10, S16, S17, S18 and S20: the Prefect server, worker,
blocks, the daily pipeline, quality gate, backfill and custom metrics.

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

from finks.checks import CheckContext, CheckFailed, Evidence
from finks.settings import Settings, load_settings

SAMPLE_DATE_ENV = "FINKS_PIPELINE_DATE"


# ---- helpers -------------------------------------------------------------------

def _stack(settings: Settings, services: list[str] | None = None) -> Settings:
    from finks.devstack import up
    from flows.common import use_prefect_server

    up(settings, services)
    use_prefect_server(settings)
    return settings


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


def _read_flow_run(run_id: str) -> Any:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(uuid.UUID(run_id))


# ---- S8: the Prefect server ----------------------------------------------------

def prefect_ui_reachable(ctx: CheckContext) -> Evidence:
    import httpx

    settings = _stack(ctx.settings)
    base = settings.prefect_api.removesuffix("/api")
    health = httpx.get(f"{settings.prefect_api}/health", timeout=10)
    ui = httpx.get(f"{base}/", timeout=10, follow_redirects=True)
    if health.status_code != 200 or ui.status_code != 200 or "<html" not in ui.text.lower():
        raise CheckFailed(f"Prefect UI/API not healthy at {base}", figures={"health": health.status_code, "ui": ui.status_code})
    return Evidence(f"Prefect API healthy and UI served at {base} (HTTP locally; HTTPS is the ALB's job in AWS)",
                    figures={"url": base, "health": health.status_code, "ui_bytes": len(ui.content)})


def test_flow_runs(ctx: CheckContext) -> Evidence:
    from flows.hello import hello_flow

    settings = _stack(ctx.settings)
    state = hello_flow(name="s8-check", return_state=True)
    run = _read_flow_run(str(state.state_details.flow_run_id))
    if run.state_type.value != "COMPLETED":
        raise CheckFailed(f"test flow run {run.id} ended {run.state_type.value}")
    return Evidence(f"flow run {run.name} ({run.id}) completed and is recorded on {settings.prefect_api}",
                    figures={"flow_run_id": str(run.id), "result": state.result()})


def server_survives_restart(ctx: CheckContext) -> Evidence:
    from finks.devstack import down, up
    from flows.hello import hello_flow

    settings = _stack(ctx.settings)
    state = hello_flow(name="before-restart", return_state=True)
    run_id = str(state.state_details.flow_run_id)
    had_worker = False
    try:
        from finks.devstack import status

        had_worker = status(settings).services["worker"].state != "stopped"
    except Exception:  # noqa: BLE001, S110 - status is best effort
        pass
    started = time.monotonic()
    down(settings, ["worker", "prefect"] if had_worker else ["prefect"])
    up(settings, ["prefect", "worker"] if had_worker else ["prefect"], bootstrap=False)
    restart_s = time.monotonic() - started
    run = _read_flow_run(run_id)
    after = hello_flow(name="after-restart", return_state=True)
    if run.state_type.value != "COMPLETED" or not after.is_completed():
        raise CheckFailed("flow history or execution lost across a server restart",
                          figures={"before": run.state_type.value, "after": after.type.value})
    return Evidence(f"Prefect server restarted in {restart_s:.0f}s; run {run_id} still recorded as COMPLETED, new runs work",
                    figures={"restart_s": round(restart_s, 1), "flow_run_id": run_id, "backend": settings.database_kind})


def _migration_head(dialect: str) -> str:
    import re

    import prefect.server.database as db

    folder = Path(db.__file__).parent / "_migrations" / "versions" / dialect
    revisions, parents = set(), set()
    for path in folder.glob("*.py"):
        text = path.read_text()
        rev = re.search(r'^revision\s*=\s*"([^"]+)"', text, re.MULTILINE)
        down = re.search(r'^down_revision\s*=\s*"([^"]+)"', text, re.MULTILINE)
        if rev:
            revisions.add(rev.group(1))
        if down:
            parents.add(down.group(1))
    heads = revisions - parents
    if len(heads) != 1:
        raise CheckFailed(f"cannot tell Prefect's migration head for {dialect}: {sorted(heads)}")
    return heads.pop()


def _pg(settings: Settings, sql: str) -> list[Any]:
    import asyncio

    import asyncpg

    if settings.database_url is None:
        raise CheckFailed("the Prefect server is not configured with PostgreSQL (FINKS_DATABASE_URL is unset)")
    url = settings.database_url.get_secret_value().replace("postgresql+asyncpg://", "postgresql://")

    async def run() -> list[Any]:
        conn = await asyncpg.connect(url)
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    return asyncio.run(run())


def database_migrated(ctx: CheckContext) -> Evidence:
    settings = _stack(ctx.settings)
    if settings.database_kind != "postgresql":
        raise CheckFailed("Prefect runs on SQLite here; S8 needs PostgreSQL", figures={"backend": settings.database_kind})
    head = _migration_head("postgresql")
    rows = _pg(settings, "select version_num from alembic_version")
    current = [r["version_num"] for r in rows]
    if current != [head]:
        raise CheckFailed(f"database at migration {current}, Prefect {head}", figures={"current": current, "head": head})
    return Evidence(f"Prefect database at the latest migration {head}", figures={"revision": head})


def server_on_postgresql(ctx: CheckContext) -> Evidence:
    from flows.hello import hello_flow

    settings = _stack(ctx.settings)
    if settings.database_kind != "postgresql":
        raise CheckFailed("Prefect runs on SQLite here; set FINKS_DATABASE_URL to PostgreSQL", figures={"backend": settings.database_kind})
    state = hello_flow(name="pg-check", return_state=True)
    run_id = str(state.state_details.flow_run_id)
    rows = _pg(settings, f"select state_type from flow_run where id = '{run_id}'")
    if not rows:
        raise CheckFailed(f"flow run {run_id} is not in the PostgreSQL database the settings name")
    return Evidence(f"flow run {run_id} found in PostgreSQL table flow_run ({rows[0]['state_type']})",
                    figures={"flow_run_id": run_id, "state": str(rows[0]["state_type"])})


# ---- S9: a worker runs a deployment ----------------------------------------------

def worker_runs_deployment(ctx: CheckContext) -> Evidence:
    from prefect import Flow
    from prefect.deployments import run_deployment

    from flows.deploy import ensure_work_pool

    settings = _stack(ctx.settings, ["moto", "prefect", "worker"])
    ensure_work_pool(settings)
    flow: Any = Flow.from_source(source=str(settings.root), entrypoint="flows/hello.py:hello_flow")
    flow.deploy(name="s9-check", work_pool_name=settings.worker_pool, print_next_steps=False,
                job_variables={"working_dir": str(settings.root)})
    started = time.monotonic()
    run: Any = run_deployment("finks-hello/s9-check", parameters={"name": "worker"}, timeout=300)
    if run.state is None or not run.state.is_completed():
        raise CheckFailed(f"deployment run {run.id} ended {run.state.type.value if run.state else 'unknown'}",
                          figures={"flow_run_id": str(run.id)})
    return Evidence(f"process worker on pool {settings.worker_pool} ran deployment finks-hello/s9-check "
                    f"(run {run.id}) in {time.monotonic() - started:.0f}s",
                    figures={"flow_run_id": str(run.id), "pool": settings.worker_pool})


# ---- S10: blocks ---------------------------------------------------------------

def blocks_exist_and_load(ctx: CheckContext) -> Evidence:
    from flows.blocks import apply_blocks, load_blocks, names

    settings = _stack(ctx.settings)
    outcome = apply_blocks(settings)
    loaded = load_blocks(settings)
    n = names(settings)
    bronze = loaded[n["bronze"]]
    key = f"_checks/blocks-{int(time.time())}.txt"
    bronze.write_path(key, b"blocks ok")
    if bronze.read_path(key) != b"blocks ok":
        raise CheckFailed(f"S3 bucket block {n['bronze']} could not round-trip an object")
    return Evidence(f"{len(loaded)} blocks applied and loaded; {n['bronze']} round-trips an object via the emulator",
                    figures={"blocks": outcome})


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
    bronze = Path(settings.zone_uri("bronze"))
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
    marts = Path(settings.zone_uri("gold"), "marts")
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
        silver = list(Path(lake.zone_uri("silver")).glob("*/date=2024-03-14/*.parquet"))
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

    from flows.errors import GlueJobTimeout
    from flows.glue import job_name, run_glue_job
    from flows.lake import aws_client

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
    silver_root, gold_root = Path(settings.zone_uri("silver")), Path(settings.zone_uri("gold"))
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
        gold_root = Path(lake.zone_uri("gold"))
        before = _tables(gold_root, "marts/*.parquet")
        published = (gold_root / "_published.json").read_text()
        good = pq.read_table(next(Path(lake.zone_uri("silver")).glob("eod_prices/date=2024-03-14/*.parquet")))
        bad = good.set_column(good.schema.get_field_index("high"), "high", pc.subtract(good["low"], 1.0))
        bad = bad.set_column(bad.schema.get_field_index("date"), "date",
                             pa.array([__import__("datetime").date(2024, 3, 13)] * bad.num_rows, good.schema.field("date").type))
        target = Path(lake.zone_uri("silver"), "eod_prices", "date=2024-03-13", "part-0.parquet")
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
    from flows import metrics
    from flows.lake import aws_client

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
