"""The lake: where each zone lives, and how to read and write it.

A lake URI is a local path or ``s3://bucket/key``. Locally the zones are
directories under ``<state>/lake``; on S3 each zone is its own bucket
(``<project>-<env>-<zone>``), reached at the settings' endpoint (the moto
server locally, AWS otherwise).

Two I/O stacks, each where it fits: small objects (records, locks,
``_published.json``) go through boto3, which the Lambda runtime ships;
partitions (Parquet, bronze files) go through pyarrow's filesystem. DuckDB's
httpfs extension cannot be downloaded on offline machines, so the jobs stage
S3 objects in a local scratch directory instead of reading s3:// directly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import ConfigError

if TYPE_CHECKING:
    import pyarrow.fs as pafs

    from core.settings import Settings

ZONES: tuple[str, ...] = ("bronze", "silver", "gold", "logs")
MANIFEST = "_manifest.json"
_INGESTED = re.compile(r"^ingested_at=(\d{8}T\d{6}Z)$")


# ---- addressing ----------------------------------------------------------
def bucket(settings: Settings, zone: str) -> str:
    """The bucket of a zone: ``<prefix>-<zone>`` (prefix defaults to project-env)."""
    if zone not in ZONES:
        raise ConfigError(f"unknown lake zone {zone!r}", hint=f"use one of {', '.join(ZONES)}")
    prefix = settings.bucket_prefix or f"{settings.project}-{settings.env}"
    return f"{prefix}-{zone}"


def buckets(settings: Settings) -> dict[str, str]:
    return {zone: bucket(settings, zone) for zone in ZONES}


def lake_root(settings: Settings) -> str:
    """The lake's root: a local directory path or an s3:// URI."""
    if settings.lake_uri:
        return settings.lake_uri.rstrip("/")
    if settings.storage == "local":
        return str(settings.home / "lake")
    return "s3://"


def zone_uri(settings: Settings, zone: str) -> str:
    """Where a zone lives: <lake>/<zone> locally, s3://<bucket> on S3."""
    if settings.storage == "s3":
        uri = settings.lake_uri
        if uri and uri.startswith("s3://") and uri != "s3://":
            return f"{uri.rstrip('/')}/{zone}"
        return f"s3://{bucket(settings, zone)}"
    return str(Path(lake_root(settings)) / zone)


def describe(settings: Settings) -> dict[str, Any]:
    """The lake's addresses, for `finks config show`."""
    return {
        "lake_root": lake_root(settings),
        "zones": {zone: zone_uri(settings, zone) for zone in ZONES},
        "buckets": buckets(settings),
    }


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def split(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> ("bucket", "a/b")."""
    bucket_name, _, key = uri.removeprefix("s3://").partition("/")
    return bucket_name, key


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


# ---- small objects (boto3 on S3) -----------------------------------------
def _s3(settings: Settings) -> Any:
    from core.aws import shared_client

    return shared_client(settings, "s3")


def read_bytes(settings: Settings, uri: str) -> bytes | None:
    """The object's bytes, or None when it (or its bucket) does not exist."""
    if is_s3(uri):
        name, key = split(uri)
        s3 = _s3(settings)
        try:
            return bytes(s3.get_object(Bucket=name, Key=key)["Body"].read())
        except (s3.exceptions.NoSuchKey, s3.exceptions.NoSuchBucket):
            return None
    path = Path(uri)
    return path.read_bytes() if path.is_file() else None


def read_text(settings: Settings, uri: str) -> str | None:
    data = read_bytes(settings, uri)
    return None if data is None else data.decode()


def read_json(settings: Settings, uri: str) -> Any:
    """Parsed JSON, or None when absent; invalid JSON is a ConfigError naming the URI."""
    text = read_text(settings, uri)
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{uri}: not valid JSON ({exc})") from exc


def write_bytes(settings: Settings, uri: str, data: bytes) -> None:
    """Write atomically: readers see the old object or the new one, never half."""
    if is_s3(uri):
        name, key = split(uri)  # a PUT is atomic on S3
        _s3(settings).put_object(Bucket=name, Key=key, Body=data)
        return
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def write_text(settings: Settings, uri: str, text: str) -> None:
    write_bytes(settings, uri, text.encode())


def delete(settings: Settings, uri: str) -> None:
    if is_s3(uri):
        name, key = split(uri)
        _s3(settings).delete_object(Bucket=name, Key=key)
        return
    Path(uri).unlink(missing_ok=True)


def list_names(settings: Settings, prefix_uri: str) -> list[str]:
    """Names directly under a prefix (files or 'directories'), sorted."""
    if is_s3(prefix_uri):
        name, key = split(prefix_uri.rstrip("/") + "/")
        names: set[str] = set()
        pages = _s3(settings).get_paginator("list_objects_v2").paginate(
            Bucket=name, Prefix=key, Delimiter="/")
        for page in pages:
            names.update(p["Prefix"][len(key):].rstrip("/") for p in page.get("CommonPrefixes", []))
            names.update(o["Key"][len(key):] for o in page.get("Contents", []))
        return sorted(names)
    path = Path(prefix_uri)
    return sorted(p.name for p in path.iterdir()) if path.is_dir() else []


# ---- partitions (pyarrow) -------------------------------------------------
def filesystem(uri: str, settings: Settings | None = None) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and the path inside it for a local path or s3:// URI."""
    import pyarrow.fs as pafs

    if is_s3(uri):
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


@dataclass
class Ingestion:
    """One complete ingestion of a dataset and date (its manifest was written)."""

    uri: str
    ingested_at: str
    files: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)


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
        prefix = "s3://" if is_s3(bronze_uri) else ""
        found.append(Ingestion(prefix + info.path, match.group(1), [prefix + f for f in files],
                               manifest))
    return sorted(found, key=lambda i: i.ingested_at)


def stage_locally(settings: Settings, files: list[str], bronze_uri: str, scratch: Path) -> list[str]:
    """Local paths for the files; S3 objects are copied under ``scratch`` keeping
    the ``fmp/...`` suffix, so the engines see the same relative source_file."""
    if not is_s3(bronze_uri):
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


def replace_partition(settings: Settings, local_file: Path, zone: str, rel_dir: str) -> str:
    """Make ``local_file`` the only file of ``<zone>/<rel_dir>/`` (as part-0.parquet).

    The new file is written next to the old one and renamed over it, so a
    reader sees the old partition or the new one, never a mix.
    """
    import pyarrow.fs as pafs

    fs, root = filesystem(zone, settings)
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
    prefix = "s3://" if is_s3(zone) else ""
    return prefix + final
