"""Data-quality records: what each dbt run tested and how it went.

One JSON document per run at ``<gold>/_quality/<run_id>.json`` plus
``<gold>/_quality/latest.json`` (whole-project runs only, not ``--select``),
read by the flows' quality gate and by monitoring (the quality score is a
CloudWatch metric in AWS). The dbt runner fills a record from its result
(jobs.dbt.audit); this module only knows the record and where it is kept, so
it imports nothing of jobs.

    score = tests passed / tests run      (warnings count as passed, 1.0 when none ran)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from core import lake

if TYPE_CHECKING:
    from core.settings import Settings


@dataclass
class QualityRecord:
    run_id: str
    command: str
    target: str
    started_at: str
    finished_at: str
    ok: bool
    published: bool
    tests_run: int
    tests_passed: int
    tests_warned: int
    tests_failed: int
    quality_score: float
    failed_tests: list[str] = field(default_factory=list)
    freshness: dict[str, str] = field(default_factory=dict)
    models_built: int = 0
    models_failed: list[str] = field(default_factory=list)
    error: str | None = None
    selection: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _root(settings: Settings) -> tuple[Any, str]:
    fs, root = lake.filesystem(lake.zone_uri(settings, "gold"), settings)
    return fs, f"{root.rstrip('/')}/_quality"


def write_quality(settings: Settings, record: QualityRecord) -> QualityRecord:
    fs, root = _root(settings)
    fs.create_dir(root, recursive=True)
    data = json.dumps(record.to_dict(), indent=2).encode()
    # a --select run tests part of the project: kept, but never the "latest" verdict
    names = [f"{record.run_id}.json"] + ([] if record.selection else ["latest.json"])
    for name in names:
        with fs.open_output_stream(f"{root}/{name}") as fh:
            fh.write(data)
    return record


def quality_uri(settings: Settings, run_id: str) -> str:
    """Where the record of ``run_id`` is kept (a path locally, an s3:// URI on S3)."""
    return lake.join(lake.zone_uri(settings, "gold"), "_quality", f"{run_id}.json")


def read_quality(settings: Settings, run_id: str) -> dict[str, Any] | None:
    """The record of ``run_id``, or None when that run left none."""
    fs, root = _root(settings)
    try:
        with fs.open_input_stream(f"{root}/{run_id}.json") as fh:
            return json.loads(fh.read())
    except FileNotFoundError:
        return None


def latest_quality(settings: Settings) -> dict[str, Any] | None:
    """The most recent run's record, or None before the first run."""
    fs, root = _root(settings)
    try:
        with fs.open_input_stream(f"{root}/latest.json") as fh:
            return json.loads(fh.read())
    except FileNotFoundError:
        return None


def quality_history(settings: Settings, limit: int = 30) -> list[dict[str, Any]]:
    """Recent records, newest first (run ids sort by time)."""
    import pyarrow.fs as pafs

    fs, root = _root(settings)
    if fs.get_file_info(root).type != pafs.FileType.Directory:
        return []
    names = sorted((i.path for i in fs.get_file_info(pafs.FileSelector(root))
                    if i.base_name.endswith(".json") and i.base_name != "latest.json"), reverse=True)
    out = []
    for path in names[:limit]:
        with fs.open_input_stream(path) as fh:
            out.append(json.loads(fh.read()))
    return out
