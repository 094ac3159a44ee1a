"""dbt in-process (dbtRunner) with write-audit-publish of the gold marts.

    run_dbt(settings)                      # build into a fresh staging DuckDB; publish if every test passes
    run_dbt(settings, "test")              # test the last published warehouse
    run_dbt(settings, "docs")              # dbt docs generate (offline)

Write: ``dbt build`` (seeds, models, data and unit tests) into
``<home>/dbt/runs/<run_id>/candidate.duckdb``. Audit: every test must pass and
the silver sources must not be stale (freshness error). Publish: the marts are
exported to ``<gold>/marts/<model>.parquet`` (each written aside, then renamed
over the old file) and ``<gold>/_published.json`` is replaced last. A failed
audit leaves the previous gold untouched and names the failing tests. Either
way the quality record goes to ``<gold>/_quality/<run_id>.json``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import lake
from core.errors import ConfigError, UsageError
from core.gold import MARTS, Published, write_published
from jobs.quality import QualityRecord, write_quality

if TYPE_CHECKING:
    from core.settings import Settings

PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"
COMMANDS = ("build", "test", "docs")
KEEP_RUNS = 5


@dataclass
class NodeResult:
    unique_id: str
    resource_type: str
    name: str
    status: str
    message: str | None = None
    failures: int | None = None
    seconds: float = 0.0


@dataclass
class DbtResult:
    command: str
    target: str
    run_id: str
    ok: bool
    nodes: list[NodeResult] = field(default_factory=list)
    failed_tests: list[str] = field(default_factory=list)
    freshness: dict[str, str] = field(default_factory=dict)
    published: bool = False
    publish_note: str = ""
    error: str | None = None
    run_dir: str = ""
    quality: dict[str, Any] = field(default_factory=dict)

    @property
    def tests(self) -> list[NodeResult]:
        return [n for n in self.nodes if n.resource_type in ("test", "unit_test")]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextlib.contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _silver_for_dbt(settings: Settings, base: Path) -> str:
    """The silver zone as a local path: S3 silver is mirrored to a cache first
    (DuckDB's httpfs cannot be downloaded offline, see dbt_project/profiles.yml)."""
    silver = lake.zone_uri(settings, "silver")
    if not silver.startswith("s3://"):
        return silver
    import pyarrow.fs as pafs

    fs, root = lake.filesystem(silver, settings)
    cache = base / "silver-cache"
    shutil.rmtree(cache, ignore_errors=True)
    for info in fs.get_file_info(pafs.FileSelector(root, recursive=True)):
        if info.type == pafs.FileType.File and info.path.endswith("/part-0.parquet") and "/_" not in info.path:
            dest = cache / info.path[len(root.rstrip("/")) + 1:]
            dest.parent.mkdir(parents=True, exist_ok=True)
            pafs.copy_files(info.path, str(dest), source_filesystem=fs,
                            destination_filesystem=pafs.LocalFileSystem())
    return str(cache)


def _require_silver(silver: str) -> None:
    for dataset in ("eod_prices", "quotes", "profiles"):
        if not list(Path(silver, dataset).glob("date=*/part-0.parquet")):
            raise UsageError(f"no silver {dataset} under {silver}",
                             hint="run 'finks transform --date YYYY-MM-DD' first")


def _nodes(result: Any) -> list[NodeResult]:
    out = []
    for r in getattr(result, "results", None) or []:
        node = getattr(r, "node", None)
        status = getattr(r.status, "value", str(r.status))
        out.append(NodeResult(
            unique_id=getattr(node, "unique_id", "?"),
            resource_type=str(getattr(getattr(node, "resource_type", None), "value", "")),
            name=getattr(node, "name", "?"), status=str(status), message=getattr(r, "message", None),
            failures=getattr(r, "failures", None), seconds=round(float(getattr(r, "execution_time", 0) or 0), 3)))
    return out


def _invoke(args: list[str]) -> tuple[Any, str | None]:
    from dbt.cli.main import dbtRunner

    try:
        res = dbtRunner().invoke(args)
    finally:
        _release_duckdb()
    error = None
    if res.exception is not None:
        error = f"{type(res.exception).__name__}: {res.exception}".strip()
    return res, error


def _release_duckdb() -> None:
    """dbt-duckdb keeps its database open in the process after an invocation;
    close it so the file can be exported, copied and reopened."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    env = getattr(DuckDBConnectionManager, "_ENV", None)
    if env is not None and hasattr(env, "close"):
        env.close()
    DuckDBConnectionManager.close_all_connections()


def run_dbt(settings: Settings, command: str = "build", select: list[str] | str | None = None,
            target: str | None = None, vars: dict[str, Any] | None = None, *,
            quiet: bool = False) -> DbtResult:
    """Run one dbt command in-process; ``build`` also audits and publishes gold.

    ``quiet`` keeps dbt's own console output (which goes to stdout) to errors only.
    """
    if command not in COMMANDS:
        raise UsageError(f"unknown dbt command {command!r}", hint=f"use one of {', '.join(COMMANDS)}")
    target = target or settings.dbt_target or "local"
    if target == "athena":
        try:
            import dbt.adapters.athena  # noqa: F401
        except ImportError:
            raise ConfigError("the athena target needs dbt-athena, which is not installed here",
                              hint="it runs in the dbt image on ECS (dbt_project/Dockerfile)") from None
    selection = [select] if isinstance(select, str) else list(select or [])
    started = dt.datetime.now(dt.UTC)
    run_id = started.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    base = settings.home / "dbt"
    run_dir = base / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    warehouse = base / "warehouse.duckdb"
    silver = _silver_for_dbt(settings, base) if target == "local" else ""
    if target == "local" and command == "build":
        _require_silver(silver)
    if command == "build":
        db = run_dir / "candidate.duckdb"
    else:
        if target == "local" and not warehouse.exists():
            raise UsageError("nothing published yet to test or document",
                             hint="run 'finks dbt build' first")
        db = run_dir / "candidate.duckdb"
        if warehouse.exists():
            shutil.copyfile(warehouse, db)      # never lock the published file
    all_vars = {"silver_uri": silver, **(vars or {})}
    common = ["--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
              "--target", target, "--target-path", str(run_dir / "target"),
              "--log-path", str(run_dir / "logs"), "--vars", json.dumps(all_vars)]
    if quiet:
        common.append("--quiet")
    env = {"FINKS_DBT_DUCKDB_PATH": str(db), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
           "DO_NOT_TRACK": "1"}
    result = DbtResult(command, target, run_id, ok=False, run_dir=str(run_dir))
    with _env(env):
        if command == "docs":
            res, result.error = _invoke(["docs", "generate", *common])
            result.ok = bool(res.success)
            if result.ok:
                docs = base / "docs"
                shutil.rmtree(docs, ignore_errors=True)
                shutil.copytree(run_dir / "target", docs)
                result.publish_note = f"docs in {docs / 'index.html'}"
            return result
        if target == "athena" and command == "build" and not selection:
            res, result.error = _athena_audit_then_publish(settings, common, result)
        else:
            args = [command, *common] + (["--select", *selection] if selection else [])
            res, result.error = _invoke(args)
            result.nodes = _nodes(res.result)
        result.failed_tests = [n.name for n in result.tests if n.status in ("fail", "error")]
        failed_nodes = [n.name for n in result.nodes if n.status in ("error", "fail", "runtime error")]
        result.ok = bool(res.success) and not failed_nodes and result.error is None
        if result.ok and not selection and not result.freshness:
            _audit_freshness(common, result)
    if command == "build":
        if result.ok and not selection and target == "local":
            _publish(settings, db, run_id, result)
            tmp = warehouse.with_suffix(".tmp")
            shutil.copyfile(db, tmp)
            os.replace(tmp, warehouse)
        elif selection:
            result.publish_note = "partial build (--select): gold not published"
        elif not result.ok:
            result.publish_note = "audit failed: previous gold left in place"
        else:
            _write_published(settings, run_id, result, {m: f"{athena_schema(settings)}.{m}" for m in MARTS})
            result.publish_note = (f"audited in {athena_schema(settings)}{AUDIT_SUFFIX}, "
                                   f"published to {athena_schema(settings)}")
    result.quality = write_quality(settings, QualityRecord.from_dbt(result, started, selection)).to_dict()
    _prune(base / "runs")
    return result


def _publish(settings: Settings, db: Path, run_id: str, result: DbtResult) -> None:
    import duckdb
    import pyarrow.fs as pafs

    gold = lake.zone_uri(settings, "gold")
    fs, root = lake.filesystem(gold, settings)
    marts_dir = f"{root.rstrip('/')}/marts"
    fs.create_dir(marts_dir, recursive=True)
    export = Path(result.run_dir) / "export"
    export.mkdir(exist_ok=True)
    con = duckdb.connect(str(db), read_only=True)
    try:
        for model in MARTS:
            con.execute(f"COPY (SELECT * FROM marts.{model}) TO '{export / model}.parquet' (FORMAT parquet)")
    finally:
        con.close()
    local = isinstance(fs, pafs.LocalFileSystem)
    for model in MARTS:
        final = f"{marts_dir}/{model}.parquet"
        if local:
            tmp = f"{marts_dir}/.{model}.{run_id}.tmp"
            shutil.copyfile(export / f"{model}.parquet", tmp)
            os.replace(tmp, final)
        else:   # one S3 PUT replaces an object atomically
            pafs.copy_files(str(export / f"{model}.parquet"), final,
                            source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)
    _write_published(settings, run_id, result, {m: f"marts/{m}.parquet" for m in MARTS})
    result.publish_note = f"published {len(MARTS)} marts to {gold}/marts"


def _write_published(settings: Settings, run_id: str, result: DbtResult, paths: dict[str, str]) -> None:
    """_published.json, written last: readers (the API) switch to the new gold when it appears."""
    passed = sum(1 for n in result.tests if n.status == "pass")
    record = Published.now(run_id, tests_passed=passed)
    write_published(settings, dataclasses.replace(record, paths=paths))
    result.published = True


# Athena has no file to swap: the audit happens in a schema of its own, and only an
# audited build is rebuilt into the schema that the API and users query.
AUDIT_SUFFIX = "_audit"


def athena_schema(settings: Settings) -> str:
    return os.environ.get("FINKS_ATHENA_SCHEMA") or f"{settings.project}_{settings.env}_gold"


def athena_phases(schema: str) -> list[tuple[str, list[str]]]:
    """Write and audit (build with every test) in ``<schema>_audit``; then publish into
    ``<schema>`` by rebuilding the same models and seeds without tests, which just passed."""
    return [
        (schema + AUDIT_SUFFIX, ["build"]),
        (schema, ["build", "--exclude", "resource_type:test", "resource_type:unit_test"]),
    ]


def _audit_freshness(common: list[str], result: DbtResult) -> None:
    """`dbt source freshness` as part of the audit: stale silver fails it."""
    result.ok = True
    fres, ferr = _invoke(["source", "freshness", *common])
    result.freshness = {n.unique_id.removeprefix("source.finks."): n.status for n in _nodes(fres.result)}
    if ferr or any(s in ("error", "runtime error") for s in result.freshness.values()):
        result.ok = False
        result.error = ferr or "stale silver sources: " + ", ".join(
            k for k, s in result.freshness.items() if s != "pass")


def _athena_audit_then_publish(settings: Settings, common: list[str], result: DbtResult) -> tuple[Any, str | None]:
    res: Any = None
    error: str | None = None
    for number, (schema, args) in enumerate(athena_phases(athena_schema(settings))):
        with _env({"FINKS_ATHENA_SCHEMA": schema}):
            res, error = _invoke([*args, *common])
        if number == 0:
            result.nodes = _nodes(res.result)
            audited = bool(res.success) and error is None and not any(
                n.status in ("error", "fail", "runtime error") for n in result.nodes)
            if audited:
                _audit_freshness(common, result)  # part of the audit: before anything is published
                audited = result.ok
            if not audited:
                return res, error or result.error  # the published schema is untouched
        else:
            result.nodes += [n for n in _nodes(res.result) if n.status in ("error", "fail", "runtime error")]
    return res, error


def _atomic_write(fs: Any, path: str, data: bytes, local: bool) -> None:
    if local:
        tmp = path + ".tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    else:
        with fs.open_output_stream(path) as fh:
            fh.write(data)


def _prune(runs: Path) -> None:
    """Keep the last few run directories (logs, manifests) for debugging."""
    dirs = sorted(p for p in runs.iterdir() if p.is_dir())
    for old in dirs[:-KEEP_RUNS]:
        shutil.rmtree(old, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m jobs.dbt build|test|docs [--target T] [--select S …] [--vars JSON]``:
    the dbt image's command on ECS. Prints the result as JSON; exit 1 when not ok."""
    import argparse
    import sys

    from core.errors import FinksError
    from core.settings import load_settings

    parser = argparse.ArgumentParser(prog="python -m jobs.dbt")
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("--target", choices=("local", "athena"))
    parser.add_argument("--select", nargs="+")
    parser.add_argument("--vars", default="{}", help="JSON object of dbt vars")
    args = parser.parse_args(argv)
    try:
        result = run_dbt(load_settings(), args.command, select=args.select, target=args.target,
                         vars=json.loads(args.vars), quiet=True)
    except FinksError as exc:
        print(f"jobs.dbt: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(result.to_dict(), default=str))
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
