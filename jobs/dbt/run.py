"""One dbt run: prepare it, invoke dbt, audit, publish, record quality.

    build   into a fresh candidate; publish gold if the audit passes (local or Athena)
    test    against a copy of the last published warehouse
    docs    ``dbt docs generate`` (offline) into ``<dbt home>/docs``, published to ``<gold>/_dbt/docs/``

The dbt home (:func:`dbt_home`) is ``<home>/dbt`` for the environment's own
lake and ``<home>/dbt/lakes/<key>`` for any other lake (a check's scratch
lake): each lake has its own published warehouse, runs and docs, so building a
scratch lake never replaces what ``test`` and ``docs`` of the real one read.
Every run gets ``<dbt home>/runs/<run_id>/`` (candidate, target, logs); the
last few are kept for debugging. Its dbt artifacts are also kept in the lake,
which outlives the ECS task (``<gold>/_dbt/runs/<run_id>/``: jobs.dbt.artifacts).
``<home>/dbt/parse/`` keeps dbt's parse of the project between runs (see
jobs.dbt.manifests).
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import clock
from core.environ import scoped
from core.errors import UsageError
from jobs.dbt.args import DbtArgs, dbt_env
from jobs.dbt.artifacts import keep_artifacts, publish_docs
from jobs.dbt.audit import audit_freshness, quality_record
from jobs.dbt.invoke import invoke, require_adapter
from jobs.dbt.publish_athena import audit_then_publish, record_publication
from jobs.dbt.publish_local import publish_local
from jobs.dbt.results import DbtResult
from jobs.dbt.silver import local_silver, require_silver
from jobs.quality import write_quality

if TYPE_CHECKING:
    from core.settings import Settings

COMMANDS = ("build", "test", "docs")
KEEP_RUNS = 5


@dataclass(frozen=True)
class _Run:
    settings: Settings
    command: str
    target: str
    selection: list[str]
    started: dt.datetime
    run_id: str
    base: Path               # <home>/dbt
    db: Path                 # the candidate DuckDB file of this run
    args: DbtArgs            # what every dbt command of this run shares

    @property
    def run_dir(self) -> Path:
        return self.base / "runs" / self.run_id

    @property
    def warehouse(self) -> Path:
        return self.base / "warehouse.duckdb"


def run_dbt(settings: Settings, command: str = "build", select: list[str] | str | None = None,
            target: str | None = None, vars: dict[str, Any] | None = None, *,
            quiet: bool = False) -> DbtResult:
    """Run one dbt command in-process; ``build`` also audits and publishes gold.

    ``quiet`` keeps dbt's own console output (which goes to stdout) to errors only.
    """
    run = _prepare(settings, command, select, target, vars or {}, quiet)
    result = DbtResult(command, run.target, run.run_id, ok=False, run_dir=str(run.run_dir))
    with scoped(dbt_env(run.db)):
        if command == "docs":
            return _docs(run, result)
        _execute(run, result)
    if command == "build":
        _publish(run, result)
    record = write_quality(settings, quality_record(result, run.started, run.selection))
    result.quality = record.to_dict()
    # Last: the artifacts' latest.json points at a run whose quality record exists.
    result.artifacts = keep_artifacts(settings, result, run.run_dir / "target", whole=not run.selection)
    _prune(run.base / "runs")
    return result


def build_and_document(settings: Settings, select: list[str] | str | None = None, target: str | None = None,
                       vars: dict[str, Any] | None = None, *, quiet: bool = False) -> tuple[DbtResult, DbtResult | None]:
    """``build``, then — once it has published gold — ``docs`` on what it published: the daily dbt
    ECS task (``python -m jobs.dbt build --docs``), so the docs site in ``<gold>/_dbt/docs/``
    always describes the gold being served. A build that did not publish leaves the docs as they
    were (None)."""
    built = run_dbt(settings, "build", select=select, target=target, vars=vars, quiet=quiet)
    if not built.published:
        return built, None
    return built, run_dbt(settings, "docs", target=target, vars=vars, quiet=quiet)


def _prepare(settings: Settings, command: str, select: list[str] | str | None,
             target: str | None, vars: dict[str, Any], quiet: bool) -> _Run:
    if command not in COMMANDS:
        raise UsageError(f"unknown dbt command {command!r}",
                         hint=f"use one of {', '.join(COMMANDS)}")
    target = target or settings.dbt_target or "local"
    require_adapter(target)
    started = clock.utcnow()
    run_id = clock.new_run_id(started)
    base = dbt_home(settings)
    run_dir = base / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    silver = local_silver(settings, base) if target == "local" else ""
    db = run_dir / "candidate.duckdb"
    if command == "build":
        if target == "local":
            require_silver(silver)
    else:
        _copy_warehouse(base / "warehouse.duckdb", db, target)
    return _Run(settings, command, target,
                [select] if isinstance(select, str) else list(select or []),
                started, run_id, base, db,
                DbtArgs(target, run_dir, {"silver_uri": silver, **vars}, quiet=quiet,
                        parse_root=settings.home / "dbt" / "parse"))


def dbt_home(settings: Settings) -> Path:
    """Where dbt keeps a lake's runs, published warehouse and docs (see the module's docstring).
    The parse of the project does not depend on the lake: it stays in ``<home>/dbt/parse``."""
    import hashlib

    from core import lake

    base = settings.home / "dbt"
    own = lake.lake_root(settings.model_copy(update={"lake_uri": None}))
    root = lake.lake_root(settings)
    if root == own:
        return base
    return base / "lakes" / hashlib.sha256(root.encode()).hexdigest()[:12]


def _copy_warehouse(warehouse: Path, db: Path, target: str) -> None:
    """test and docs read a copy of the published warehouse: never lock the published file."""
    if target == "local" and not warehouse.exists():
        raise UsageError("nothing published yet to test or document",
                         hint="run 'finks dbt build' first")
    if warehouse.exists():
        shutil.copyfile(warehouse, db)


def _docs(run: _Run, result: DbtResult) -> DbtResult:
    outcome = invoke(["docs", "generate"], run.args, seconds=result.seconds)
    result.error = outcome.error
    result.ok = outcome.success
    if result.ok:
        docs = run.base / "docs"
        shutil.rmtree(docs, ignore_errors=True)
        shutil.copytree(run.run_dir / "target", docs)
        result.artifacts = publish_docs(run.settings, docs)
        result.publish_note = f"docs in {docs / 'index.html'}, published to {result.artifacts}"
    return result


def _execute(run: _Run, result: DbtResult) -> None:
    """Invoke build or test and judge it: every node clean, then the silver fresh."""
    if run.target == "athena" and run.command == "build" and not run.selection:
        outcome = audit_then_publish(run.settings, run.args, result)
    else:
        selection = ["--select", *run.selection] if run.selection else []
        outcome = invoke([run.command, *selection], run.args, seconds=result.seconds)
        result.nodes = outcome.nodes
    result.error = outcome.error
    result.failed_tests = [n.name for n in result.tests if n.status in ("fail", "error")]
    result.ok = outcome.success and not result.failed_nodes and result.error is None
    if result.ok and not run.selection and not result.freshness:
        audit_freshness(run.args, result)


def _publish(run: _Run, result: DbtResult) -> None:
    """Write-audit-publish's last step: only a whole, audited build replaces gold."""
    if run.selection:
        result.publish_note = "partial build (--select): gold not published"
    elif not result.ok:
        result.publish_note = "audit failed: previous gold left in place"
    elif run.target == "local":
        publish_local(run.settings, run.db, run.warehouse, result)
    else:
        record_publication(run.settings, result)


def _prune(runs: Path) -> None:
    """Keep the last few run directories (logs, manifests) for debugging."""
    dirs = sorted(p for p in runs.iterdir() if p.is_dir())
    for old in dirs[:-KEEP_RUNS]:
        shutil.rmtree(old, ignore_errors=True)
