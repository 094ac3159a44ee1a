"""Publish on Athena: there is no file to swap, so the audit gets a schema of its own.

Write and audit (build with every test, then source freshness) in
``<schema>_audit``; only an audited build is rebuilt into ``<schema>``, the
schema that the API and users query, without the tests that just passed.
A failed audit leaves ``<schema>`` untouched.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

from core.environ import scoped
from core.gold import MARTS, write_published
from jobs.dbt.args import DbtArgs
from jobs.dbt.audit import audit_freshness
from jobs.dbt.invoke import Outcome, invoke
from jobs.dbt.results import FAILED, DbtResult

if TYPE_CHECKING:
    from core.settings import Settings

AUDIT_SUFFIX = "_audit"
SCHEMA_VAR = "FINKS_ATHENA_SCHEMA"     # read by dbt_project/profiles.yml


def athena_schema(settings: Settings) -> str:
    return os.environ.get(SCHEMA_VAR) or f"{settings.project}_{settings.env}_gold"


def athena_phases(schema: str) -> list[tuple[str, list[str]]]:
    """Write and audit (build with every test) in ``<schema>_audit``; then publish into
    ``<schema>`` by rebuilding the same models and seeds without tests, which just passed."""
    return [
        (schema + AUDIT_SUFFIX, ["build"]),
        (schema, ["build", "--exclude", "resource_type:test", "resource_type:unit_test"]),
    ]


def audit_then_publish(settings: Settings, args: DbtArgs, result: DbtResult) -> Outcome:
    """Both phases; ``result.nodes`` holds the audit's nodes plus any that failed publishing."""
    (audit_schema, audit_args), (schema, publish_args) = athena_phases(athena_schema(settings))
    with scoped({SCHEMA_VAR: audit_schema}):
        audit = invoke(audit_args, args, seconds=result.seconds)
        result.nodes = audit.nodes
        audited = audit.clean
        if audited:
            # part of the audit, before anything is published (and on the audit's manifest)
            audit_freshness(args, result)
            audited = result.ok
    if not audited:
        return Outcome(audit.success, audit.nodes, audit.error or result.error)
    # Its artifacts beside the audit's: run_results.json of the audit (every test) is what the run keeps.
    with scoped({SCHEMA_VAR: schema}):
        publish = invoke(publish_args, dataclasses.replace(args, run_dir=args.run_dir / "publish"),
                         seconds=result.seconds)
    result.nodes += [n for n in publish.nodes if n.status in FAILED]
    return publish


def record_publication(settings: Settings, result: DbtResult) -> None:
    """``_published.json`` naming the tables of the published schema."""
    schema = athena_schema(settings)
    write_published(settings, result.publication({m: f"{schema}.{m}" for m in MARTS}))
    result.published = True
    result.publish_note = f"audited in {schema}{AUDIT_SUFFIX}, published to {schema}"
