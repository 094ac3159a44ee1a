"""S1 (local dev environment) and the local part of S3: checks against the real stack.

Checks use the default settings (the stack `finks dev up` runs); those that
need services start them idempotently with `up()` and never stop a stack
they did not start. The cold-start timing uses a separate throw-away stack on
free ports so it never disturbs the running one.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from core import clock, lake
from core.settings import Settings, load_settings
from finks.checks import CheckContext, CheckFailed, Evidence

UP_BUDGET_S = 120.0


def _up(settings: Settings, services: list[str] | None = None) -> Any:
    from finks.devstack import up

    return up(settings, services)


def ensure_stack_up(ctx: CheckContext) -> Evidence:
    """Task action (S1 "Integration Test"): start the stack if needed and report it."""
    st = _up(ctx.settings)
    actions = {n: s.action for n, s in st.services.items() if s.action}
    return Evidence(
        f"local stack up in {st.elapsed_s:.1f}s (prefect on {st.prefect_backend}): "
        + ", ".join(f"{n} {a}" for n, a in actions.items()),
        figures={"elapsed_s": st.elapsed_s, "services": actions, "prefect_backend": st.prefect_backend},
    )


def stack_up_under_two_minutes(ctx: CheckContext) -> Evidence:
    """`up` from cold (fresh state, fresh database, all services) is under two minutes."""
    from finks.devstack import down
    from finks.devstack.database import drop_database
    from finks.devstack.procs import free_port

    base = ctx.settings
    db_url = None
    if base.database_kind == "postgresql":
        db_url = f"postgresql://postgres@127.0.0.1:5432/finks_cold_{uuid.uuid4().hex[:8]}"
    cold = load_settings(env="local", root=ctx.root, state_dir=ctx.work_dir / "cold-stack",
                         prefect_port=free_port(), moto_port=free_port(), database_url=db_url)
    started = time.monotonic()
    try:
        st = _up(cold, ["moto", "prefect", "worker"])
        elapsed = time.monotonic() - started
        healthy = st.healthy_services(["moto", "prefect", "worker"])
    finally:
        down(cold)
        if db_url:
            drop_database(db_url)
    figures = {"up_seconds": round(elapsed, 1), "budget_seconds": UP_BUDGET_S,
               "prefect_backend": cold.database_kind, "services": ["moto", "prefect", "worker"]}
    if not healthy:
        raise CheckFailed("stack came up but not every service is healthy", figures=figures)
    if elapsed >= UP_BUDGET_S:
        raise CheckFailed(f"cold start took {elapsed:.0f}s (budget {UP_BUDGET_S:.0f}s)", figures=figures)
    return Evidence(f"cold `up` (moto, prefect on {cold.database_kind}, worker, bootstrap) "
                    f"took {elapsed:.1f}s < {UP_BUDGET_S:.0f}s", figures=figures)


def stack_services_healthy(ctx: CheckContext) -> Evidence:
    """Every running service answers; the Prefect API and the emulator respond to real calls."""
    from core.aws import client as aws_client
    from finks.devstack import status

    settings = ctx.settings
    st = status(settings)
    required = ["moto", "prefect"]
    bad = {n: st.services[n].state for n in required if not st.services[n].healthy}
    if st.services["worker"].state != "stopped" and not st.services["worker"].healthy:
        bad["worker"] = st.services["worker"].state
    figures: dict[str, Any] = {n: {"state": s.state, "pid": s.pid, "url": s.url}
                               for n, s in st.services.items()}
    if bad:
        raise CheckFailed("unhealthy: " + ", ".join(f"{n} ({s})" for n, s in bad.items())
                          + "; run 'finks dev up'", figures=figures)
    import urllib.request

    with urllib.request.urlopen(f"{settings.prefect_api}/admin/version", timeout=10) as resp:
        version = json.loads(resp.read())
    buckets = [b["Name"] for b in aws_client(settings, "s3").list_buckets()["Buckets"]]
    missing = [b for b in lake.buckets(settings).values() if b not in buckets]
    figures.update(prefect_version=version, prefect_backend=st.prefect_backend, buckets=len(buckets))
    if missing:
        raise CheckFailed(f"emulator lacks buckets {missing}; run 'finks dev up' to bootstrap",
                          figures=figures)
    return Evidence(f"moto and prefect ({st.prefect_backend}, {version}) healthy; "
                    f"{len(lake.buckets(settings))} lake buckets present", figures=figures)


_FLOW_SCRIPT = """
import sys
from prefect import flow, task

@task(retries=1)
def add(x: int, y: int) -> int:
    return x + y

@flow(name="finks-devstack-check")
def check_flow(n: int) -> int:
    return add(n, 1)

state = check_flow(41, return_state=True)
print("FLOW_RUN_ID=" + str(state.state_details.flow_run_id))
print("RESULT=" + str(state.result()))
"""


def prefect_flow_runs_locally(ctx: CheckContext) -> Evidence:
    """A flow is created and run against the local server, which records it as Completed."""
    from finks.devstack.services import base_env

    settings = ctx.settings
    _up(settings)
    script = ctx.work_dir / "devstack_check_flow.py"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(_FLOW_SCRIPT)
    proc = subprocess.run([sys.executable, str(script)], env=base_env(settings), cwd=ctx.work_dir,
                          capture_output=True, text=True, timeout=240)
    out = dict(line.split("=", 1) for line in proc.stdout.splitlines()
               if line.startswith(("FLOW_RUN_ID=", "RESULT=")))
    if proc.returncode != 0 or "FLOW_RUN_ID" not in out:
        raise CheckFailed("the test flow did not run", excerpt=(proc.stderr or proc.stdout)[-2000:])
    run_id = out["FLOW_RUN_ID"]
    import urllib.request

    with urllib.request.urlopen(f"{settings.prefect_api}/flow_runs/{run_id}", timeout=10) as resp:
        run = json.loads(resp.read())
    state = (run.get("state") or {}).get("type")
    figures = {"flow_run_id": run_id, "state": state, "result": out.get("RESULT"),
               "api": settings.prefect_api}
    if state != "COMPLETED" or out.get("RESULT") != "42":
        raise CheckFailed(f"flow run {run_id} is {state} with result {out.get('RESULT')}", figures=figures)
    return Evidence(f"flow run {run_id} completed on {settings.prefect_api} (result 42)", figures=figures)


def s3_operations_work(ctx: CheckContext) -> Evidence:
    """put, get, list and versioning through the emulator's S3 API."""
    from core.aws import client as aws_client

    settings = ctx.settings
    _up(settings)
    s3 = aws_client(settings, "s3")
    bucket = lake.bucket(settings, "bronze")
    prefix = f"_checks/s3-ops-{uuid.uuid4().hex[:8]}/"
    key = prefix + "object.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"version one")
    s3.put_object(Bucket=bucket, Key=key, Body=b"version two")
    s3.put_object(Bucket=bucket, Key=prefix + "other.txt", Body=b"x")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))
    versions = s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
    versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    # LastModified has one-second resolution; IsLatest tells the versions apart.
    oldest = next((v for v in versions if not v["IsLatest"]), None)
    old_body = (s3.get_object(Bucket=bucket, Key=key, VersionId=oldest["VersionId"])["Body"].read()
                if oldest else b"")
    figures = {"bucket": bucket, "objects": len(listed), "versions": len(versions),
               "versioning": versioning, "endpoint": settings.s3_endpoint}
    for obj in s3.list_object_versions(Bucket=bucket, Prefix=prefix).get("Versions", []):
        s3.delete_object(Bucket=bucket, Key=obj["Key"], VersionId=obj["VersionId"])
    problems = []
    if body != b"version two":
        problems.append(f"get returned {body!r}")
    if listed != [prefix + "object.txt", prefix + "other.txt"]:
        problems.append(f"list returned {listed}")
    if versioning != "Enabled" or len(versions) != 2 or old_body != b"version one":
        problems.append(f"versioning {versioning}, {len(versions)} versions, old version {old_body!r}")
    if problems:
        raise CheckFailed(f"S3 operations on {bucket}: " + "; ".join(problems), figures=figures)
    return Evidence(f"put/get/list/versioning verified on {bucket} via {settings.s3_endpoint}",
                    figures=figures)


def sample_data_roundtrip(ctx: CheckContext) -> Evidence:
    """A sample bronze ingestion (gzipped FMP-shaped JSON + manifest) uploads and reads back intact."""
    from core.aws import client as aws_client

    settings = ctx.settings
    _up(settings)
    s3 = aws_client(settings, "s3")
    bucket = lake.bucket(settings, "bronze")
    records = [{"symbol": sym, "name": name, "price": price, "volume": vol, "timestamp": 1732560000}
               for sym, name, price, vol in (("AAPL", "Apple Inc.", 229.87, 42_000_000),
                                             ("MSFT", "Microsoft Corporation", 415.49, 18_000_000))]
    raw = json.dumps(records).encode()
    when = clock.utcnow()
    stamp = clock.stamp(when)
    prefix = f"_checks/fmp/quotes/date=2024-11-25/ingested_at={clock.new_run_id(when)}/"
    part = gzip.compress(raw)
    digest = hashlib.sha256(part).hexdigest()
    manifest = {"dataset": "quotes", "date": "2024-11-25", "ingested_at": stamp, "schema_version": 1,
                "symbols": {r["symbol"]: {"status": "ok", "records": 1, "error": None} for r in records},
                "files": [{"path": "part-0.json.gz", "sha256": digest, "records": len(records)}]}
    s3.put_object(Bucket=bucket, Key=prefix + "part-0.json.gz", Body=part, ContentEncoding="gzip")
    s3.put_object(Bucket=bucket, Key=prefix + "_manifest.json", Body=json.dumps(manifest).encode())
    got_part = s3.get_object(Bucket=bucket, Key=prefix + "part-0.json.gz")["Body"].read()
    got_manifest = json.loads(s3.get_object(Bucket=bucket, Key=prefix + "_manifest.json")["Body"].read())
    got_records = json.loads(gzip.decompress(got_part))
    for obj in s3.list_object_versions(Bucket=bucket, Prefix=prefix).get("Versions", []):
        s3.delete_object(Bucket=bucket, Key=obj["Key"], VersionId=obj["VersionId"])
    figures = {"bucket": bucket, "records": len(got_records), "bytes": len(got_part), "sha256": digest}
    if hashlib.sha256(got_part).hexdigest() != got_manifest["files"][0]["sha256"] or got_records != records:
        raise CheckFailed("sample data read back differs from what was uploaded", figures=figures)
    return Evidence(f"{len(records)} sample quote records uploaded to s3://{bucket}/{prefix} "
                    "and read back byte-identical", figures=figures)


def data_plane_bootstrapped(ctx: CheckContext) -> Evidence:
    """The emulator holds the data plane: buckets configured, FMP secret, Glue database, lake dirs."""
    from finks.devstack.bootstrap import describe_data_plane

    settings = ctx.settings
    _up(settings)
    found = describe_data_plane(settings)
    logs = lake.bucket(settings, "logs")
    problems = []
    for zone, info in found["buckets"].items():
        if info is None:
            problems.append(f"{zone}: bucket missing")
            continue
        if info["versioning"] != "Enabled":
            problems.append(f"{zone}: versioning {info['versioning']}")
        if info["lifecycle_rules"] < 1:
            problems.append(f"{zone}: no lifecycle rule")
        if zone != "logs" and info["logging_target"] != logs:
            problems.append(f"{zone}: access logging to {info['logging_target']}")
        if not info["public_access_blocked"]:
            problems.append(f"{zone}: public access not blocked")
    if not found["secret"]:
        problems.append(f"secret {settings.fmp_secret_name} missing")
    if not found["glue_database"]:
        problems.append(f"glue database {settings.glue_database} missing")
    missing_dirs = [z for z in ("bronze", "silver", "gold") if settings.storage == "local"
                    and not Path(lake.zone_uri(settings, z)).is_dir()]
    if missing_dirs:
        problems.append(f"lake dirs missing: {missing_dirs}")
    figures = {"buckets": found["buckets"], "secret": settings.fmp_secret_name,
               "glue_database": settings.glue_database, "endpoint": settings.s3_endpoint}
    if problems:
        raise CheckFailed("data plane incomplete: " + "; ".join(problems), figures=figures)
    return Evidence(f"emulator bootstrapped: {len(found['buckets'])} buckets (versioned, lifecycle, "
                    f"access logs -> {logs}, encrypted, public access blocked), secret, "
                    "Glue database, lake dirs", figures=figures)
