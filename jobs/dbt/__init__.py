"""dbt in-process (dbtRunner) with write-audit-publish of the gold marts.

    run_dbt(settings)                      # build into a fresh candidate; publish if the audit passes
    run_dbt(settings, "test")              # test the last published warehouse
    run_dbt(settings, "docs")              # dbt docs generate (offline)
    build_and_document(settings)           # build, then docs of what it published (the ECS task's --docs)

Write: ``dbt build`` (seeds, models, data and unit tests) into
``<home>/dbt/runs/<run_id>/candidate.duckdb`` (Athena: the ``<schema>_audit``
schema). Audit: every test must pass and the silver sources must not be stale
(freshness error). Publish: the marts replace ``<gold>/marts/<model>.parquet``
(Athena: they are rebuilt into ``<schema>``) and ``<gold>/_published.json`` is
replaced last. A failed audit leaves the previous gold untouched and names the
failing tests. Either way the quality record goes to ``<gold>/_quality/<run_id>.json``
and dbt's artifacts (run_results, manifest, sources) to ``<gold>/_dbt/runs/<run_id>/``.

Modules, each one concern:

    results          NodeResult, DbtResult
    args             the arguments and environment every command of a run shares
    manifests        the parsed project, kept per process and between runs
    invoke           one dbtRunner invocation on that manifest, its per-node results
    silver           the local target's input (S3 silver mirrored locally)
    audit            source freshness; the quality record of a run
    artifacts        dbt's artifacts and docs site, kept in the lake (the ECS task keeps nothing)
    publish_local    DuckDB candidate → Parquet marts + _published.json
    publish_athena   audit schema, then publish schema
    run              run_dbt: prepare, invoke, audit, publish, record
    cli              ``python -m jobs.dbt`` (the dbt image's command)

dbt itself is imported only when a command runs.
"""

from __future__ import annotations

from jobs.dbt.args import PROJECT_DIR
from jobs.dbt.cli import main
from jobs.dbt.publish_athena import AUDIT_SUFFIX, athena_phases, athena_schema
from jobs.dbt.results import DbtResult, NodeResult
from jobs.dbt.run import COMMANDS, KEEP_RUNS, build_and_document, dbt_home, run_dbt

__all__ = [
    "AUDIT_SUFFIX",
    "COMMANDS",
    "KEEP_RUNS",
    "PROJECT_DIR",
    "DbtResult",
    "NodeResult",
    "athena_phases",
    "athena_schema",
    "build_and_document",
    "dbt_home",
    "main",
    "run_dbt",
]
