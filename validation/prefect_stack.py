"""Checks for S8, S9 and S10: the Prefect server (UI, flows, restart, migrations,
PostgreSQL), a process worker running a deployment, and the blocks.

Checks use the default local settings (the stack of `finks dev up`, started
idempotently by validation.support.stack) and never stop a stack they did not
start (the restart check restarts the Prefect server only, which is its criterion).
Flow runs are read back from the server the settings name, whatever server the
Prefect client of this process happens to point at.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from core.settings import Settings
from finks.checks import CheckContext, CheckFailed, Evidence
from validation.support import stack


def _read_flow_run(settings: Settings, run_id: str) -> Any:
    """The flow run as the settings' server records it; CheckFailed when it has no such run."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.exceptions import ObjectNotFound

    with SyncPrefectClient(settings.prefect_api) as client:
        try:
            return client.read_flow_run(uuid.UUID(run_id))
        except ObjectNotFound:
            raise CheckFailed(f"flow run {run_id} is not recorded on {settings.prefect_api}") from None


# ---- S8: the Prefect server ----------------------------------------------------

def prefect_ui_reachable(ctx: CheckContext) -> Evidence:
    import httpx

    settings = stack(ctx.settings)
    base = settings.prefect_api.removesuffix("/api")
    try:
        health = httpx.get(f"{settings.prefect_api}/health", timeout=10)
        ui = httpx.get(f"{base}/", timeout=10, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise CheckFailed(f"Prefect at {base} does not answer: {exc}") from exc
    if health.status_code != 200 or ui.status_code != 200 or "<html" not in ui.text.lower():
        raise CheckFailed(f"Prefect UI/API not healthy at {base}", figures={"health": health.status_code, "ui": ui.status_code})
    return Evidence(f"Prefect API healthy and UI served at {base} (HTTP locally; HTTPS is the ALB's job in AWS)",
                    figures={"url": base, "health": health.status_code, "ui_bytes": len(ui.content)})


def test_flow_runs(ctx: CheckContext) -> Evidence:
    from flows.hello import hello_flow

    settings = stack(ctx.settings)
    state = hello_flow(name="s8-check", return_state=True)
    run = _read_flow_run(settings, str(state.state_details.flow_run_id))
    if run.state_type.value != "COMPLETED":
        raise CheckFailed(f"test flow run {run.id} ended {run.state_type.value}: {run.state.message if run.state else ''}")
    return Evidence(f"flow run {run.name} ({run.id}) completed and is recorded on {settings.prefect_api}",
                    figures={"flow_run_id": str(run.id), "result": state.result()})


def server_survives_restart(ctx: CheckContext) -> Evidence:
    """Restart the Prefect server (and the worker, if it runs): it comes back healthy, the run
    from before is still recorded, and new runs work."""
    from core.errors import ServiceError
    from finks.devstack import down, status, up
    from flows.hello import hello_flow

    settings = stack(ctx.settings)
    state = hello_flow(name="before-restart", return_state=True)
    run_id = str(state.state_details.flow_run_id)
    services = ["prefect", "worker"] if status(settings).services["worker"].state != "stopped" else ["prefect"]
    started = time.monotonic()
    down(settings, services)
    try:
        up(settings, services, bootstrap=False)
    except ServiceError as exc:
        raise CheckFailed(f"the Prefect server did not come back after a restart: {exc}",
                          figures={"backend": settings.database_kind}) from exc
    restart_s = time.monotonic() - started
    try:
        run = _read_flow_run(settings, run_id)
    except CheckFailed as exc:
        raise CheckFailed(f"flow history lost across a server restart: {exc}",
                          figures={"backend": settings.database_kind}) from None
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
        raise CheckFailed(f"deployment run {run.id} ended {run.state.type.value if run.state else 'unknown'}"
                          + (f": {run.state.message}" if run.state and run.state.message else ""),
                          figures={"flow_run_id": str(run.id)})
    if run.work_pool_name != settings.worker_pool:
        raise CheckFailed(f"deployment run {run.id} ran on pool {run.work_pool_name}, not {settings.worker_pool}")
    return Evidence(f"process worker on pool {settings.worker_pool} ran deployment finks-hello/s9-check "
                    f"(run {run.id}) in {time.monotonic() - started:.0f}s",
                    figures={"flow_run_id": str(run.id), "pool": settings.worker_pool})


# ---- S10: blocks ---------------------------------------------------------------

def apply_blocks(ctx: CheckContext) -> Evidence:
    """Task action (S10): save the blocks as code declares them (``finks blocks apply``)."""
    from flows.blocks import apply_blocks as save

    settings = ctx.settings
    stack(settings, ("moto", "prefect"))
    outcome = save(settings)
    return Evidence(f"{len(outcome)} blocks applied: " + ", ".join(f"{k} {v}" for k, v in sorted(outcome.items())),
                    figures={"blocks": outcome})


def blocks_exist_and_load(ctx: CheckContext) -> Evidence:
    """The blocks flows/blocks.py declares are on the server (``finks blocks apply`` saves
    them; this check does not): each loads, matches the settings, and every zone's S3
    block round-trips an object through the AWS credentials block."""
    from dataclasses import asdict

    from prefect.blocks.system import Secret
    from prefect_aws import AwsCredentials, S3Bucket

    from core import lake
    from flows.blocks import ZONES, ecs_task_settings, load_ecs_settings, names

    settings = stack(ctx.settings)
    n = names(settings)
    problems: list[str] = []

    def load(loader: Any, name: str) -> Any:
        try:
            return loader(name)
        except ValueError as exc:
            problems.append(f"block {name} does not load ({exc})")
            return None

    creds = load(AwsCredentials.load, n["aws"])
    if creds is not None:
        endpoint = creds.aws_client_parameters.endpoint_url
        if creds.region_name != settings.region or (settings.is_local and endpoint != settings.s3_endpoint):
            problems.append(f"{n['aws']}: region {creds.region_name}, endpoint {endpoint}; "
                            f"settings say {settings.region}, {settings.s3_endpoint}")
    ecs = load(lambda _: load_ecs_settings(settings), n["ecs"])
    wanted_ecs = ecs_task_settings(settings)
    if ecs is not None and asdict(ecs) != wanted_ecs:
        problems.append(f"{n['ecs']} does not hold the settings' ECS task ({wanted_ecs['cluster']})")
    secret = load(Secret.load, n["fmp"])
    if secret is not None and not secret.get():
        problems.append(f"{n['fmp']} holds an empty FMP key")
    key = f"_checks/blocks-{int(time.time())}.txt"
    for zone in ZONES:
        bucket = load(S3Bucket.load, n[zone])
        if bucket is None:
            continue
        if bucket.bucket_name != lake.bucket(settings, zone):
            problems.append(f"{n[zone]} names bucket {bucket.bucket_name}, not {lake.bucket(settings, zone)}")
            continue
        try:
            bucket.write_path(key, f"blocks ok {zone}".encode())
            if bucket.read_path(key) != f"blocks ok {zone}".encode():
                problems.append(f"{n[zone]} read back another object")
        except Exception as exc:  # noqa: BLE001 - the criterion: the block works against its bucket
            problems.append(f"{n[zone]} cannot round-trip an object ({type(exc).__name__}: {exc})")
    if problems:
        raise CheckFailed(f"{len(problems)} block problem(s): {problems[0]}; run 'finks blocks apply'",
                          excerpt="\n".join(problems))
    return Evidence(f"{len(n)} blocks exist and load; the {', '.join(ZONES)} S3 blocks round-trip an object via "
                    f"{n['aws']} and the emulator; {n['ecs']} matches the settings",
                    figures={"blocks": sorted(n.values())})
