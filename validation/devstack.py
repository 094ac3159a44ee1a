"""S1 (local dev environment) and the local part of S3: checks against the real stack.

Checks use the default settings (the stack `finks dev up` runs) and only look
at it: bringing the stack up and bootstrapping the emulator is the sessions'
task action (`ensure_stack_up`, i.e. `finks dev up`), never a check's own
first step, so a check cannot pass on what it just created itself. A stack
that is not running fails with the command to run. The cold-start timing
uses a separate throw-away stack on free ports so it never disturbs the
running one; the services test selection starts its own stack (the
``local_stack`` fixture) the same way.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from core import clock, lake
from core.settings import Settings, load_settings
from finks.checks import CheckContext, CheckFailed, CheckSkipped, Evidence

UP_BUDGET_S = 120.0
# `make test`'s services part: the tests that start a real local stack of their own.
SERVICES_TESTS = ("tests/test_devstack_integration.py",)
SERVICES_TESTS_TIMEOUT_S = 840.0


def _local_only(ctx: CheckContext) -> Settings:
    if ctx.env != "local":
        raise CheckSkipped(f"the local stack runs only for env 'local', not {ctx.env!r}")
    return ctx.settings


def _up(settings: Settings, services: list[str] | None = None) -> Any:
    from core.errors import ServiceError
    from finks.devstack import up

    try:
        return up(settings, services)
    except ServiceError as exc:
        hint = f" ({exc.hint})" if getattr(exc, "hint", None) else ""
        raise CheckFailed(f"the local stack did not come up: {exc}{hint}") from None


def _emulator(settings: Settings) -> Any:
    """An S3 client on the running emulator; an emulator that does not answer fails the check."""
    import botocore.exceptions

    from core.aws import client as aws_client

    s3 = aws_client(settings, "s3")
    try:
        s3.list_buckets()
    except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError,
            botocore.exceptions.ReadTimeoutError) as exc:
        raise CheckFailed(f"the AWS emulator does not answer at {settings.s3_endpoint} ({type(exc).__name__}); "
                          "run 'finks dev up'", figures={"endpoint": settings.s3_endpoint}) from None
    return s3


def _lake_bucket(s3: Any, settings: Settings, zone: str) -> str:
    bucket = lake.bucket(settings, zone)
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        raise CheckFailed(f"the emulator has no {zone} bucket {bucket}: the data plane is not bootstrapped; "
                          "run 'finks dev up'", figures={"bucket": bucket, "buckets": sorted(existing)})
    return bucket


def _prefect(settings: Settings) -> None:
    from finks.devstack.services import http_ok

    if not http_ok(f"{settings.prefect_api}/health", timeout=5):
        raise CheckFailed(f"the Prefect server does not answer at {settings.prefect_api}; run 'finks dev up'",
                          figures={"api": settings.prefect_api})


def ensure_stack_up(ctx: CheckContext) -> Evidence:
    """Task action (S1 "Integration Test", S3 "Deploy and test"): `finks dev up` — start what is
    not running and bootstrap the emulator's data plane — and report it."""
    st = _up(_local_only(ctx))
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

    base = _local_only(ctx)
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

    settings = _local_only(ctx)
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

    settings = _local_only(ctx)
    _prefect(settings)
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
    """put, get, list and versioning through the emulator's S3 API, on the bronze bucket as it is."""
    settings = _local_only(ctx)
    s3 = _emulator(settings)
    bucket = _lake_bucket(s3, settings, "bronze")
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
    settings = _local_only(ctx)
    s3 = _emulator(settings)
    bucket = _lake_bucket(s3, settings, "bronze")
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


def _bucket_config(s3: Any, name: str) -> dict[str, Any]:
    """What S3 says about one bucket's configuration; a configuration S3 has none of is None."""
    import botocore.exceptions

    def read(call: Any, key: str) -> Any:
        try:
            return call(Bucket=name).get(key)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code", "").startswith(("NoSuch", "ServerSideEncryptionConfigurationNotFound")):
                return None
            raise

    return {
        "versioning": read(s3.get_bucket_versioning, "Status"),
        "lifecycle": read(s3.get_bucket_lifecycle_configuration, "Rules") or [],
        "logging": read(s3.get_bucket_logging, "LoggingEnabled"),
        "encryption": read(s3.get_bucket_encryption, "ServerSideEncryptionConfiguration"),
        "public_access_block": read(s3.get_public_access_block, "PublicAccessBlockConfiguration"),
    }


PUBLIC_ACCESS_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def _bucket_problems(zone: str, name: str, found: dict[str, Any], logs: str) -> tuple[list[str], dict[str, Any]]:
    rules = [r for r in found["lifecycle"] if r.get("Status") == "Enabled"]
    logging = found["logging"] or {}
    sse = [r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm")
           for r in (found["encryption"] or {}).get("Rules", [])]
    pab = found["public_access_block"] or {}
    problems = []
    if found["versioning"] != "Enabled":
        problems.append(f"{zone}: versioning {found['versioning'] or 'never enabled'}")
    if not any(r.get("NoncurrentVersionExpiration") for r in rules):
        problems.append(f"{zone}: no lifecycle rule expiring old versions")
    if zone != "logs" and logging.get("TargetBucket") != logs:
        problems.append(f"{zone}: access logging to {logging.get('TargetBucket')} (expected {logs})")
    if not sse or not all(a in ("AES256", "aws:kms", "aws:kms:dsse") for a in sse):
        problems.append(f"{zone}: no default encryption")
    if not all(pab.get(flag) is True for flag in PUBLIC_ACCESS_FLAGS):
        problems.append(f"{zone}: public access not fully blocked ({sorted(k for k, v in pab.items() if v) or 'no block'})")
    figures = {"name": name, "versioning": found["versioning"], "lifecycle_rules": len(rules),
               "logging_target": logging.get("TargetBucket"), "encryption": sse,
               "public_access_blocked": all(pab.get(flag) is True for flag in PUBLIC_ACCESS_FLAGS)}
    return problems, figures


def data_plane_bootstrapped(ctx: CheckContext) -> Evidence:
    """The emulator holds the data plane as it is now: buckets configured (versioning, lifecycle,
    access logging, SSE, public-access block), the FMP secret, the Glue database, lake dirs.

    It reads and never bootstraps: the S3 session's task action (`finks dev up`) does that.
    """
    from core.aws import client as aws_client

    settings = _local_only(ctx)
    s3 = _emulator(settings)
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    logs = lake.bucket(settings, "logs")
    problems: list[str] = []
    buckets: dict[str, Any] = {}
    for zone, name in lake.buckets(settings).items():
        if name not in existing:
            problems.append(f"{zone}: bucket {name} missing")
            buckets[zone] = None
            continue
        found, buckets[zone] = _bucket_problems(zone, name, _bucket_config(s3, name), logs)
        problems += found
    sm, glue = aws_client(settings, "secretsmanager"), aws_client(settings, "glue")
    try:
        sm.describe_secret(SecretId=settings.fmp_secret_name)
    except sm.exceptions.ResourceNotFoundException:
        problems.append(f"secret {settings.fmp_secret_name} missing")
    try:
        glue.get_database(Name=settings.glue_database)
    except glue.exceptions.EntityNotFoundException:
        problems.append(f"glue database {settings.glue_database} missing")
    missing_dirs = [z for z in ("bronze", "silver", "gold") if settings.storage == "local"
                    and not Path(lake.zone_uri(settings, z)).is_dir()]
    if missing_dirs:
        problems.append(f"lake dirs missing: {missing_dirs}")
    figures = {"buckets": buckets, "secret": settings.fmp_secret_name,
               "glue_database": settings.glue_database, "endpoint": settings.s3_endpoint}
    if problems:
        raise CheckFailed("data plane incomplete: " + "; ".join(problems) + "; run 'finks dev up'", figures=figures)
    return Evidence(f"emulator bootstrapped: {len(buckets)} buckets (versioned, lifecycle, "
                    f"access logs -> {logs}, encrypted, public access blocked), secret, "
                    "Glue database, lake dirs", figures=figures)


def services_tests_pass(ctx: CheckContext) -> Evidence:
    """`make test`'s services part: the local-stack test selection runs (on a stack of its own,
    free ports) and passes. Failures fail the check; nothing collected or everything skipped
    fails too; pytest that crashes or overruns is an error."""
    settings = _local_only(ctx)
    selection = [t for t in SERVICES_TESTS if (ctx.root / t.split("::")[0]).is_file()]
    if not selection:
        raise CheckFailed(f"no services tests: {', '.join(SERVICES_TESTS)} missing under {ctx.root}")
    # The selection's `local_stack` fixture picks its own ports and state dir: the developer's stack is left alone.
    env = {**os.environ, "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ctx.root), os.environ.get("PYTHONPATH", "")]))}
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfEs", *selection]
    try:
        proc = subprocess.run(argv, cwd=ctx.root, env=env, capture_output=True, text=True,
                              timeout=SERVICES_TESTS_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"the services tests did not finish within {SERVICES_TESTS_TIMEOUT_S:.0f}s") from None
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.strip()]
    summary = lines[-1].strip("= ") if lines else ""
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|errors?|skipped)", summary)}
    figures: dict[str, Any] = {"selection": selection, "exit_code": proc.returncode, **counts,
                               "prefect_backend": settings.database_kind}
    excerpt = (proc.stdout + ("\n" + proc.stderr if proc.stderr.strip() else ""))[-2000:]
    if proc.returncode == 1:
        raise CheckFailed(f"services tests fail: {summary}", figures=figures, excerpt=excerpt)
    if proc.returncode == 5 or (proc.returncode == 0 and not counts.get("passed")):
        raise CheckFailed(f"services tests: no test ran ({summary or 'no output'})", figures=figures, excerpt=excerpt)
    if proc.returncode != 0:
        raise RuntimeError(f"pytest could not run the services tests (exit {proc.returncode}): {summary}\n{excerpt}")
    if counts.get("skipped"):
        raise CheckFailed(f"services tests: {counts['skipped']} skipped, so not every service was tested ({summary})",
                          figures=figures, excerpt=excerpt)
    return Evidence(f"services tests ({', '.join(selection)}) on a stack of their own: {summary}", figures=figures)
