"""What the transformation steps of a running platform leave in a deployed stack (S12–S17).

No resource definition describes it, so it is made with the platform's own code:

* bronze from the test-data generator (``jobs.testdata``, defects included) for
  the symbols the dbt project's holdings name, over :data:`DAYS` trading days;
* silver from the bronze→silver job (``jobs.bronze_to_silver`` on DuckDB: the
  transformation the Glue job runs on Spark);
* gold, the quality record, dbt's artifacts and the docs site from ``jobs.dbt``
  (``build_and_document``: a whole ``build``, then ``docs``, as the task's ``build --docs``) on dbt-duckdb — where the dbt ECS task
  leaves them (``jobs.dbt.artifacts``), the target being dbt-duckdb, not Athena.

That is built in a local lake, then copied object for object into the stack's
buckets (a zone's directory is its bucket; moto refuses object calls under the
buckets' TLS-only Deny, which ``seed_lake.admit_plain_http`` drops). A Glue job
run per date is started and awaited by ``flows.glue`` (moto models the run's
states; it runs no script). The build's quality score goes to CloudWatch as
the daily flow reports it (``flows.metrics``), after the record it is read
from. The API's Athena workgroup, which :mod:`validation.aws.seed` leaves out,
is created from the plan's declaration, and the summary rows the mart probe
asks Athena for are queued with moto's result injection (moto runs no SQL: it
answers each new query execution with the next queued result).

The local build costs half a minute (dbt parses, builds, generates docs), so it
is kept in a cache directory named by a digest of everything it is made from
(the dbt project, ``jobs/``, ``core/``, the functions here that build, the
dbt and DuckDB versions) and made again only when that changes; copying it in takes seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.settings import Settings

# ``seeded`` is what validation.aws.seed.seed made (its outputs, its plan, its notes); typed loosely,
# since that module calls this one.
Seeded = Any

END, DAYS = "2024-03-15", 2
ZONES = ("bronze", "silver", "gold")
# Each query execution takes one queued answer: enough for every probe run of a test session.
ATHENA_ANSWERS = 40
CACHE_VAR = "FINKS_SEED_CACHE"


@dataclass(frozen=True)
class Built:
    """A lake the platform's own code filled: generated bronze, silver, gold, dbt's artifacts."""

    root: Path
    dates: list[str]
    run_id: str

    @property
    def lake(self) -> Path:
        return self.root / "lake"


def activity(settings: Settings, seeded: Seeded, make: Callable[[str], Any]) -> None:
    """Copy the built lake into the stack's buckets, run the Glue job per date, prepare Athena."""
    from flows.glue import job_arguments, run_glue_job
    from validation.aws.seed_lake import admit_plain_http

    built = build()
    out = seeded.outputs
    buckets = out.get("buckets") or {}
    s3 = make("s3")
    for zone in (*ZONES, "logs"):  # logs: the probes read the Glue script there
        if zone in buckets:
            admit_plain_http(s3, buckets[zone], seeded.notes)
    for zone in ZONES:
        if zone in buckets:
            upload(s3, built.lake / zone, buckets[zone])
    if out.get("glue_job"):
        import datetime as dt

        glue = make("glue")
        for day in built.dates:
            run_glue_job(glue, out["glue_job"], job_arguments(settings, dt.date.fromisoformat(day), None),
                         timeout_s=30, poll_s=0.05)
    _athena(settings, seeded, make, built)
    _report_score(settings, built)


def _report_score(settings: Settings, built: Built) -> None:
    """The build's quality score as the daily flow reports it once it has read the record (flows.master_flow)."""
    from flows import metrics

    record = json.loads((built.lake / "gold" / "_quality" / f"{built.run_id}.json").read_text())
    sent = metrics.emit(settings, [metrics.data_quality_score(record["tests_passed"] + record["tests_warned"],
                                                              record["tests_run"])])
    if not sent["cloudwatch"]:
        raise RuntimeError(f"seeding: the quality score did not reach the emulator: {sent.get('error')}")


def upload(s3: Any, directory: Path, bucket: str) -> int:
    """Every file under ``directory`` as an object of ``bucket`` under the same relative key."""
    import concurrent.futures as cf

    files = sorted(p for p in directory.rglob("*") if p.is_file())
    with cf.ThreadPoolExecutor(max_workers=4) as pool:  # boto3 clients are thread-safe
        list(pool.map(lambda p: s3.put_object(Bucket=bucket, Key=p.relative_to(directory).as_posix(),
                                              Body=p.read_bytes()), files))
    return len(files)


# ---- the local build, cached ----------------------------------------------------------
def build() -> Built:
    """The built lake of this code's digest: from the cache, else built now (and cached)."""
    cache = Path(os.environ.get(CACHE_VAR) or Path(tempfile.gettempdir()) / "finks-seed-transform")
    where = cache / digest()
    if not (where / "built.json").is_file():
        cache.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f"{where.name}.", dir=cache))
        try:
            _build_into(scratch)
            try:
                scratch.rename(where)  # atomic: a concurrent build of the same digest may win
            except OSError:
                pass
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        _forget_others(cache, keep=where.name)
    info = json.loads((where / "built.json").read_text())
    return Built(where, info["dates"], info["run_id"])


def digest() -> str:
    """What the built lake depends on: the code that makes it, and the engines' versions."""
    from importlib.metadata import version

    from core.paths import REPO_ROOT

    engines = "|".join(version(p) for p in ("dbt-core", "dbt-duckdb", "duckdb"))
    h = hashlib.sha256(f"{engines}|{END}|{DAYS}".encode())
    for top in ("dbt_project", "jobs", "core"):
        for path in sorted((REPO_ROOT / top).rglob("*")):
            parts = set(path.relative_to(REPO_ROOT).parts)
            if path.is_file() and not parts & {"target", "logs", "__pycache__"} and not path.name.startswith("."):
                h.update(path.relative_to(REPO_ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    import inspect

    for made_by in (_build_into, holdings_symbols, athena_result):  # this module's part in what is built
        h.update(inspect.getsource(made_by).encode())
    h.update((Path(__file__).parent / "gold_sample.py").read_bytes())
    return h.hexdigest()[:20]


def holdings_symbols() -> list[str]:
    """The symbols the dbt project's holdings seed names (its relationships test wants each one priced)."""
    import csv

    from core.paths import REPO_ROOT

    with (REPO_ROOT / "dbt_project" / "seeds" / "holdings.csv").open() as fh:
        return sorted({row["symbol"] for row in csv.DictReader(fh)})


def _build_into(root: Path) -> None:
    import pyarrow.parquet as pq

    from core.settings import load_settings
    from jobs.bronze_to_silver import run
    from jobs.dbt import build_and_document
    from jobs.testdata import generate_bronze, trading_days
    from validation.aws.gold_sample import athena_sample

    settings = load_settings(env="local", state_dir=root / "state", lake_uri=str(root / "lake"))
    generated = generate_bronze(settings, holdings_symbols(), trading_days(END, DAYS))
    for day in generated.dates:
        result = run(settings, day, engine="duckdb")
        if not result.ok:
            raise RuntimeError(f"seeding: bronze→silver failed for {day}: {result.to_dict()}")
    built, docs = build_and_document(settings, quiet=True)  # what the dbt task's `build --docs` does
    if docs is None:
        raise RuntimeError(f"seeding: the dbt build did not publish: {built.error or built.failed_tests}")
    if not docs.ok:
        raise RuntimeError(f"seeding: dbt docs generate failed: {docs.error}")
    shutil.rmtree(root / "state", ignore_errors=True)  # dbt's run directories: not what the stack holds
    summary = pq.read_table(root / "lake" / "gold" / "marts" / "daily_portfolio_summary.parquet")
    (root / "athena.json").write_text(json.dumps(athena_result(athena_sample(summary).table)))
    (root / "built.json").write_text(json.dumps({"dates": generated.dates, "run_id": built.run_id}))


def _forget_others(cache: Path, keep: str) -> None:
    """Builds of older code (a day untouched): nobody will ask for them again."""
    import time

    for old in cache.iterdir():
        if old.name != keep and time.time() - old.stat().st_mtime > 86400:
            shutil.rmtree(old, ignore_errors=True)


# ---- Athena: the API's workgroup, and the answers moto gives ------------------------------
def _athena(settings: Settings, seeded: Seeded, make: Callable[[str], Any], built: Built) -> None:
    athena = make("athena")
    for r in seeded.plan.of_type("aws:athena/workgroup:Workgroup"):
        config = r.inputs.get("configuration") or {}
        result = config.get("resultConfiguration") or {}
        athena.create_work_group(Name=r.inputs["name"], Configuration={
            "ResultConfiguration": {"OutputLocation": result.get("outputLocation", "")},
            "EnforceWorkGroupConfiguration": bool(config.get("enforceWorkgroupConfiguration")),
            "PublishCloudWatchMetricsEnabled": bool(config.get("publishCloudwatchMetricsEnabled"))},
            Tags=[{"Key": k, "Value": str(v)} for k, v in (r.inputs.get("tags") or {}).items()])
    answer = json.loads((built.root / "athena.json").read_text())  # the summary rows the probe asks for
    queue_athena_answers(settings, make, answer, ATHENA_ANSWERS)


def athena_result(table: Any) -> dict[str, Any]:
    """One result set, shaped like Athena's (the column labels again as the first row)."""
    import pyarrow as pa

    def athena_type(t: Any) -> str:
        if pa.types.is_date(t):
            return "date"
        if pa.types.is_integer(t):
            return "bigint"
        if pa.types.is_floating(t) or pa.types.is_decimal(t):
            return "double"
        return "varchar"

    def row(values: list[Any]) -> dict[str, Any]:
        return {"Data": [{} if v is None else {"VarCharValue": v if isinstance(v, str) else
                                               v.isoformat() if hasattr(v, "isoformat") else str(v)}
                         for v in values]}

    names = table.schema.names
    rows = [row(list(names))] + [row([r[n] for n in names]) for r in table.to_pylist()]
    columns = [{"Name": f.name, "Label": f.name, "Type": athena_type(f.type), "Nullable": "NULLABLE"}
               for f in table.schema]
    return {"rows": rows, "column_info": columns}


def queue_athena_answers(settings: Settings, make: Callable[[str], Any], result: dict[str, Any], copies: int) -> None:
    """moto's documented injection: POST /moto-api/static/athena/query-results."""
    import urllib.request

    from core.aws import endpoint_for

    endpoint = endpoint_for(settings, "athena")
    if not endpoint:
        raise RuntimeError("seeding: no emulator endpoint to queue Athena results at")
    body = {"account_id": make("sts").get_caller_identity()["Account"], "region": settings.region,
            "results": [result] * copies}
    request = urllib.request.Request(f"{endpoint}/moto-api/static/athena/query-results", method="POST",
                                     data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).close()
