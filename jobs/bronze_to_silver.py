"""Bronze→silver for one trading date: read every complete ingestion of the
date, type, validate, deduplicate (latest ingestion wins), replace the date's
silver partition, quarantine the rejects.

    run(settings, "2024-03-15")                   # all datasets, default engine
    run(settings, "2024-03-15", ["eod_prices"], engine="spark")
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import lake
from core.errors import UsageError
from jobs.datasets import Dataset, resolve
from jobs.engines import Engine, make_engine

if TYPE_CHECKING:
    from core.settings import Settings


@dataclass
class DatasetResult:
    dataset: str
    date: str
    status: str                      # ok | no_bronze
    ingestions: int = 0
    files: int = 0
    rows_read: int = 0
    rows_written: int = 0
    deduplicated: int = 0
    quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    silver_uri: str | None = None
    quarantine_uri: str | None = None
    seconds: float = 0.0


@dataclass
class TransformResult:
    date: str
    engine: str
    datasets: list[DatasetResult]

    @property
    def ok(self) -> bool:
        return all(d.status in ("ok", "no_bronze") for d in self.datasets)

    def get(self, name: str) -> DatasetResult:
        return next(d for d in self.datasets if d.dataset == name)

    @property
    def rows_written(self) -> int:
        return sum(d.rows_written for d in self.datasets)

    @property
    def quarantined(self) -> int:
        return sum(d.quarantined for d in self.datasets)

    def to_dict(self) -> dict[str, Any]:
        return {"date": self.date, "engine": self.engine, "ok": self.ok,
                "rows_written": self.rows_written, "quarantined": self.quarantined,
                "datasets": [asdict(d) for d in self.datasets]}


def check_date(date: str | dt.date) -> str:
    try:
        return dt.date.fromisoformat(str(date)).isoformat()
    except ValueError:
        raise UsageError(f"invalid date {date!r}", hint="use YYYY-MM-DD, e.g. 2024-03-15") from None


def run(settings: Settings, date: str | dt.date, datasets: list[str] | None = None,
        engine: str | None = None, *, engine_instance: Engine | None = None,
        bronze_uri: str | None = None, silver_uri: str | None = None) -> TransformResult:
    """Transform one date. Idempotent: a re-run replaces the same partitions.

    ``bronze_uri``/``silver_uri`` override the settings' zones (the Glue job's
    --SOURCE/--TARGET).
    """
    day = check_date(date)
    chosen = resolve(datasets)
    eng = engine_instance or make_engine(engine or settings.engine or "duckdb")
    bronze = bronze_uri or lake.zone_uri(settings, "bronze")
    silver = silver_uri or lake.zone_uri(settings, "silver")
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="finks-b2s-") as scratch:
            for ds in chosen:
                results.append(_one(settings, eng, ds, day, bronze, silver, Path(scratch)))
    finally:
        if engine_instance is None:
            eng.close()
    result = TransformResult(day, eng.name, results)
    _record(settings, silver, result)
    return result


def _one(settings: Settings, eng: Engine, ds: Dataset, day: str, bronze: str, silver: str,
         scratch: Path) -> DatasetResult:
    started = time.monotonic()
    ingestions = lake.list_ingestions(settings, bronze, ds.bronze, day)
    files = [f for ing in ingestions for f in ing.files]
    if not files:
        return DatasetResult(ds.silver, day, "no_bronze")
    local = lake.stage_locally(settings, files, bronze, scratch / ds.silver)
    out = eng.transform(ds, day, local, scratch / ds.silver / "out")
    assert out.silver_file is not None
    silver_uri = lake.replace_partition(settings, out.silver_file, silver, f"{ds.silver}/date={day}")
    quarantine_uri = None
    qdir = f"_quarantine/{ds.silver}/date={day}"
    if out.quarantine_file is not None:
        quarantine_uri = lake.replace_partition(settings, out.quarantine_file, silver, qdir)
    else:
        _clear(settings, silver, qdir)
    return DatasetResult(ds.silver, day, "ok", len(ingestions), len(files), out.rows_read,
                         out.rows_written, out.deduplicated, out.quarantined, out.reasons,
                         silver_uri, quarantine_uri, round(time.monotonic() - started, 3))


def _clear(settings: Settings, zone: str, rel_dir: str) -> None:
    """A clean re-run leaves no stale quarantine behind."""
    import pyarrow.fs as pafs

    fs, root = lake.filesystem(zone, settings)
    path = f"{root.rstrip('/')}/{rel_dir}"
    if fs.get_file_info(path).type == pafs.FileType.Directory:
        fs.delete_dir(path)


def _record(settings: Settings, silver: str, result: TransformResult) -> None:
    """The latest result per date, for flows and monitoring (records processed, rejects)."""
    fs, root = lake.filesystem(silver, settings)
    fs.create_dir(f"{root.rstrip('/')}/_runs", recursive=True)
    payload = dict(result.to_dict(), finished_at=dt.datetime.now(dt.UTC).isoformat())
    with fs.open_output_stream(f"{root.rstrip('/')}/_runs/date={result.date}.json") as fh:
        fh.write(json.dumps(payload, indent=2).encode())


def load_result(settings: Settings, date: str) -> dict[str, Any] | None:
    fs, root = lake.filesystem(lake.zone_uri(settings, "silver"), settings)
    try:
        with fs.open_input_stream(f"{root.rstrip('/')}/_runs/date={check_date(date)}.json") as fh:
            return json.loads(fh.read())
    except FileNotFoundError:
        return None
