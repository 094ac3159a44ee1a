"""Checks for S8, S9 and S10: the Prefect server (UI, flows, restart, migrations,
PostgreSQL), a process worker running a deployment, and the blocks.

Checks use the default local settings (the stack of `finks dev up`, started
idempotently by validation.support.stack) and never stop a stack they did not
start (the restart check restarts the Prefect server only, which is its criterion).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from core.settings import Settings
from finks.checks import CheckContext, CheckFailed, Evidence
from validation.support import stack


def _read_flow_run(run_id: str) -> Any:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(uuid.UUID(run_id))


# ---- S8: the Prefect server ----------------------------------------------------

def prefect_ui_reachable(ctx: CheckContext) -> Evidence:
    import httpx

    settings = stack(ctx.settings)
    base = settings.prefect_api.removesuffix("/api")
    health = httpx.get(f"{settings.prefect_api}/health", timeout=10)
    ui = httpx.get(f"{base}/", timeout=10, follow_redirects=True)
    if health.status_code != 200 or ui.status_code != 200 or "<html" not in ui.text.lower():
        raise CheckFailed(f"Prefect UI/API not healthy at {base}", figures={"health": health.status_code, "ui": ui.status_code})
    return Evidence(f"Prefect API healthy and UI served at {base} (HTTP locally; HTTPS is the ALB's job in AWS)",
                    figures={"url": base, "health": health.status_code, "ui_bytes": len(ui.content)})


def test_flow_runs(ctx: CheckContext) -> Evidence:
    from flows.hello import hello_flow

    settings = stack(ctx.settings)
    state = hello_flow(name="s8-check", return_state=True)
    run = _read_flow_run(str(state.state_details.flow_run_id))
    if run.state_type.value != "COMPLETED":
        raise CheckFailed(f"test flow run {run.id} ended {run.state_type.value}")
    return Evidence(f"flow run {run.name} ({run.id}) completed and is recorded on {settings.prefect_api}",
                    figures={"flow_run_id": str(run.id), "result": state.result()})


def server_survives_restart(ctx: CheckContext) -> Evidence:
    from finks.devstack import down, up
    from flows.hello import hello_flow

    settings = stack(ctx.settings)
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
    settings = stack(ctx.settings)
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

    settings = stack(ctx.settings)
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

    settings = stack(ctx.settings, ["moto", "prefect", "worker"])
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

    settings = stack(ctx.settings)
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
