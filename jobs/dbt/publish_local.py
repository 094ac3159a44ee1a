"""Publish from the local target: the audited DuckDB candidate becomes gold.

Each mart is exported to Parquet in the run directory, then replaces
``<gold>/marts/<model>.parquet`` (written aside and renamed locally; one PUT
on S3, which replaces an object atomically). ``_published.json`` goes last, so
readers switch to the new gold only when every mart is in place. The candidate
then becomes ``warehouse.duckdb``, which ``test`` and ``docs`` read.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from core import lake
from core.gold import MARTS, write_published
from jobs.dbt.results import DbtResult

if TYPE_CHECKING:
    from core.settings import Settings


def publish_local(settings: Settings, db: Path, warehouse: Path, result: DbtResult) -> None:
    export = _export_marts(db, Path(result.run_dir) / "export")
    gold = lake.zone_uri(settings, "gold")
    _replace_marts(settings, gold, export, result.run_id)
    write_published(settings, result.publication({m: f"marts/{m}.parquet" for m in MARTS}))
    result.published = True
    result.publish_note = f"published {len(MARTS)} marts to {gold}/marts"
    _promote(db, warehouse)


def _export_marts(db: Path, export: Path) -> Path:
    import duckdb

    export.mkdir(exist_ok=True)
    con = duckdb.connect(str(db), read_only=True)
    try:
        for model in MARTS:
            con.execute(f"COPY (SELECT * FROM marts.{model}) TO '{export / model}.parquet' "
                        "(FORMAT parquet)")
    finally:
        con.close()
    return export


def _replace_marts(settings: Settings, gold: str, export: Path, run_id: str) -> None:
    import pyarrow.fs as pafs

    fs, root = lake.filesystem(gold, settings)
    marts_dir = f"{root.rstrip('/')}/marts"
    fs.create_dir(marts_dir, recursive=True)
    local = isinstance(fs, pafs.LocalFileSystem)
    for model in MARTS:
        final = f"{marts_dir}/{model}.parquet"
        if local:
            tmp = f"{marts_dir}/.{model}.{run_id}.tmp"
            shutil.copyfile(export / f"{model}.parquet", tmp)
            os.replace(tmp, final)
        else:
            pafs.copy_files(str(export / f"{model}.parquet"), final,
                            source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)


def _promote(db: Path, warehouse: Path) -> None:
    tmp = warehouse.with_suffix(".tmp")
    shutil.copyfile(db, tmp)
    os.replace(tmp, warehouse)
