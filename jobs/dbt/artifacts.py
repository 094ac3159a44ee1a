"""A run's dbt artifacts, kept in the lake: the dbt task on ECS keeps nothing when it stops.

    <gold>/_dbt/runs/<run_id>/run_results.json   what every node of the run did
    <gold>/_dbt/runs/<run_id>/manifest.json      the project as the run saw it
    <gold>/_dbt/runs/<run_id>/sources.json       source freshness, when the audit ran it
    <gold>/_dbt/latest.json                      the last whole-project build: run id, target, where
    <gold>/_dbt/docs/                            the docs site of the last `docs` run
                                                 (index.html, catalog.json, manifest.json)

They sit beside the quality records (``<gold>/_quality/``) and go through the
same lake functions, so the task role's lake access is all the upload needs.
``latest.json`` is written last: whoever finds it finds the run's artifacts.
Only the last :data:`KEEP` runs' artifacts are kept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import lake

if TYPE_CHECKING:
    from core.settings import Settings
    from jobs.dbt.results import DbtResult

PREFIX, RUNS, DOCS_DIR = "_dbt", "runs", "docs"     # <gold>/_dbt/runs/, <gold>/_dbt/docs/
ARTIFACTS = ("run_results.json", "manifest.json", "sources.json")
# index.html loads the other two from beside itself; it goes last.
DOCS = ("catalog.json", "manifest.json", "index.html")
LATEST = "latest.json"
KEEP = 30


def dbt_uri(settings: Settings) -> str:
    return lake.join(lake.zone_uri(settings, "gold"), PREFIX)


def run_uri(settings: Settings, run_id: str) -> str:
    return lake.join(dbt_uri(settings), RUNS, run_id)


def docs_uri(settings: Settings) -> str:
    return lake.join(dbt_uri(settings), DOCS_DIR)


def keep_artifacts(settings: Settings, result: DbtResult, target: Path, *, whole: bool) -> str:
    """Copy the run's artifacts from its target directory; a whole-project build becomes latest.json."""
    where = run_uri(settings, result.run_id)
    kept = []
    for name in ARTIFACTS:
        path = target / name
        if path.is_file():
            lake.write_bytes(settings, lake.join(where, name), path.read_bytes())
            kept.append(name)
    if whole and result.command == "build" and kept:
        latest = {"run_id": result.run_id, "command": result.command, "target": result.target,
                  "ok": result.ok, "published": result.published, "uri": where, "artifacts": kept}
        lake.write_text(settings, lake.join(dbt_uri(settings), LATEST), json.dumps(latest, indent=2))
    _prune(settings)
    return where


def publish_docs(settings: Settings, target: Path) -> str:
    """The docs site ``dbt docs generate`` wrote, published to ``<gold>/_dbt/docs/``."""
    where = docs_uri(settings)
    for name in DOCS:
        lake.write_bytes(settings, lake.join(where, name), (target / name).read_bytes())
    return where


def latest_build(settings: Settings) -> dict[str, Any] | None:
    """What ``latest.json`` says of the last whole-project build, or None before the first."""
    found = lake.read_json(settings, lake.join(dbt_uri(settings), LATEST))
    return found if isinstance(found, dict) else None


def _prune(settings: Settings) -> None:
    runs = lake.join(dbt_uri(settings), RUNS)
    for old in lake.list_names(settings, runs)[:-KEEP]:  # run ids sort by time
        for name in lake.list_names(settings, lake.join(runs, old)):
            lake.delete(settings, lake.join(runs, old, name))
        if not lake.is_s3(runs):
            Path(runs, old).rmdir()
