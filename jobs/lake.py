"""The lake as the jobs see it: bronze ingestions to read, partitions to replace.

Local zones are directories; S3 zones go through pyarrow's S3 filesystem with
the endpoint from the settings (the moto server locally). DuckDB's httpfs
extension cannot be downloaded on offline machines, so the jobs stage S3
objects in a local scratch directory instead of reading s3:// directly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finks.errors import ConfigError

if TYPE_CHECKING:
    import pyarrow.fs as pafs

    from finks.settings import Settings

MANIFEST = "_manifest.json"
_INGESTED = re.compile(r"^ingested_at=(\d{8}T\d{6}Z)$")


@dataclass
class Ingestion:
    """One complete ingestion of a dataset and date (its manifest was written)."""

    uri: str
    ingested_at: str
    files: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)


def filesystem(uri: str, settings: Settings | None = None) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and the path inside it for a local path or s3:// URI."""
    import pyarrow.fs as pafs

    if uri.startswith("s3://"):
        endpoint = settings.s3_endpoint if settings is not None else None
        kwargs: dict[str, Any] = {"region": settings.region if settings else "ca-central-1"}
        if endpoint:
            scheme, _, host = endpoint.partition("://")
            kwargs.update(endpoint_override=host, scheme=scheme)
            # moto accepts any key; real AWS uses the default credential chain
            kwargs.update(access_key=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
                          secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"))
        return pafs.S3FileSystem(**kwargs), uri[len("s3://"):]
    if "://" in uri and not uri.startswith("file://"):
        raise ConfigError(f"unsupported lake URI {uri!r}", hint="use a local path or s3://bucket/prefix")
    return pafs.LocalFileSystem(), uri.removeprefix("file://")


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *parts])


def list_ingestions(settings: Settings, bronze_uri: str, dataset: str, date: str) -> list[Ingestion]:
    """Complete ingestions of ``dataset`` for ``date``, oldest first.

    A folder without ``_manifest.json`` is an ingestion still being written (or
    one that crashed): it is ignored, never half-read.
    """
    import pyarrow.fs as pafs

    fs, root = filesystem(bronze_uri, settings)
    base = f"{root.rstrip('/')}/fmp/{dataset}/date={date}"
    if fs.get_file_info(base).type != pafs.FileType.Directory:
        return []
    found = []
    for info in fs.get_file_info(pafs.FileSelector(base)):
        match = _INGESTED.match(info.base_name)
        if info.type != pafs.FileType.Directory or not match:
            continue
        names = {i.base_name: i.path for i in fs.get_file_info(pafs.FileSelector(info.path))}
        if MANIFEST not in names:
            continue
        with fs.open_input_stream(names[MANIFEST]) as fh:
            manifest = json.loads(fh.read())
        files = sorted(p for n, p in names.items() if n.endswith(".json.gz") and not n.startswith("_"))
        prefix = "s3://" if bronze_uri.startswith("s3://") else ""
        found.append(Ingestion(prefix + info.path, match.group(1), [prefix + f for f in files],
                               manifest))
    return sorted(found, key=lambda i: i.ingested_at)


def stage_locally(settings: Settings, files: list[str], bronze_uri: str, scratch: Path) -> list[str]:
    """Local paths for the files; S3 objects are copied under ``scratch`` keeping
    the ``fmp/...`` suffix, so the engines see the same relative source_file."""
    if not bronze_uri.startswith("s3://"):
        return files
    fs, root = filesystem(bronze_uri, settings)
    out = []
    for uri in files:
        rel = uri[len("s3://"):][len(root.rstrip("/")) + 1:]
        dest = scratch / "bronze" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        with fs.open_input_stream(uri[len("s3://"):], compression=None) as src, open(dest, "wb") as dst:
            shutil.copyfileobj(src, dst)
        out.append(str(dest))
    return out


def replace_partition(settings: Settings, local_file: Path, zone_uri: str, rel_dir: str) -> str:
    """Make ``local_file`` the only file of ``<zone>/<rel_dir>/`` (as part-0.parquet).

    The new file is written next to the old one and renamed over it, so a
    reader sees the old partition or the new one, never a mix.
    """
    import pyarrow.fs as pafs

    fs, root = filesystem(zone_uri, settings)
    target_dir = f"{root.rstrip('/')}/{rel_dir}"
    fs.create_dir(target_dir, recursive=True)
    tmp = f"{target_dir}/.part-0.parquet.tmp"
    final = f"{target_dir}/part-0.parquet"
    if isinstance(fs, pafs.LocalFileSystem):
        shutil.copyfile(local_file, tmp)
        os.replace(tmp, final)
    else:
        pafs.copy_files(str(local_file), final, source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=fs)
    for info in fs.get_file_info(pafs.FileSelector(target_dir)):
        if info.path != final and info.type == pafs.FileType.File:
            fs.delete_file(info.path)
    prefix = "s3://" if zone_uri.startswith("s3://") else ""
    return prefix + final
