"""The local target's input: the silver zone as a directory DuckDB can read."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from core import lake
from core.errors import UsageError

if TYPE_CHECKING:
    from core.settings import Settings

REQUIRED = ("eod_prices", "quotes", "profiles")


def local_silver(settings: Settings, base: Path) -> str:
    """The silver zone as a local path: S3 silver is mirrored to ``<base>/silver-cache`` first
    (DuckDB's httpfs cannot be downloaded offline, see dbt_project/profiles.yml)."""
    silver = lake.zone_uri(settings, "silver")
    if not silver.startswith("s3://"):
        return silver
    import pyarrow.fs as pafs

    fs, root = lake.filesystem(silver, settings)
    cache = base / "silver-cache"
    shutil.rmtree(cache, ignore_errors=True)
    for info in fs.get_file_info(pafs.FileSelector(root, recursive=True)):
        if info.type == pafs.FileType.File and info.path.endswith("/part-0.parquet") \
                and "/_" not in info.path:
            dest = cache / info.path[len(root.rstrip("/")) + 1:]
            dest.parent.mkdir(parents=True, exist_ok=True)
            pafs.copy_files(info.path, str(dest), source_filesystem=fs,
                            destination_filesystem=pafs.LocalFileSystem())
    return str(cache)


def require_silver(silver: str) -> None:
    for dataset in REQUIRED:
        if not list(Path(silver, dataset).glob("date=*/part-0.parquet")):
            raise UsageError(f"no silver {dataset} under {silver}",
                             hint="run 'finks transform --date YYYY-MM-DD' first")
