"""Bronze writer: raw FMP bodies, gzipped, on the local lake or S3; manifest last.

Layout (COMMON contract)::

    <bronze>/fmp/<dataset>/date=YYYY-MM-DD/ingested_at=YYYYMMDDTHHMMSSZ/
        _run.json            written first: what this ingestion is fetching (resume)
        part-00000.json.gz   one per response, the exact body FMP returned
        _quarantine.json.gz  records that failed validation, with the reason
        _manifest.json       written LAST: its presence marks a complete ingestion

Atomicity: locally every object is written to a hidden temp file in the same
directory and renamed into place (rename is atomic on one filesystem); on S3
a PUT is atomic per object. Readers only trust directories with a manifest,
and the manifest only lists objects already written.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from core import clock

if TYPE_CHECKING:
    from core.settings import Settings

MANIFEST = "_manifest.json"
RUN_FILE = "_run.json"
QUARANTINE = "_quarantine.json.gz"


class Store(Protocol):
    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes | None: ...
    def list(self, prefix: str) -> list[str]: ...
    def uri(self, key: str) -> str: ...


class LocalStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def put(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def get(self, key: str) -> bytes | None:
        path = self.root / key
        return path.read_bytes() if path.is_file() else None

    def list(self, prefix: str) -> list[str]:
        base = self.root / prefix
        if not base.is_dir():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )

    def uri(self, key: str) -> str:
        return str(self.root / key)


class S3Store:
    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        self.bucket, self.prefix, self.client = bucket, prefix.strip("/"), client

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def get(self, key: str) -> bytes | None:
        try:
            return bytes(self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read())
        except self.client.exceptions.NoSuchKey:
            return None

    def list(self, prefix: str) -> list[str]:
        strip = len(self._key(""))
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(prefix)
        ):
            keys.extend(obj["Key"][strip:] for obj in page.get("Contents", []))
        return sorted(keys)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"


def open_store(zone_uri: str, settings: Settings) -> Store:
    """A store for a zone URI: a directory, or s3://bucket[/prefix] (moto locally)."""
    if not zone_uri.startswith("s3://"):
        return LocalStore(zone_uri)
    from core.aws import client

    bucket, _, prefix = zone_uri[len("s3://"):].partition("/")
    return S3Store(bucket, prefix, client(settings, "s3"))


def gz(body: bytes) -> bytes:
    return gzip.compress(body, compresslevel=6, mtime=0)  # mtime=0: same body, same checksum


@dataclass
class Ingestion:
    """One ``ingested_at=`` directory being written."""

    store: Store
    prefix: str  # ends with "/"
    ingested_at: str
    resumed: bool = False

    def part_key(self, index: int) -> str:
        return f"{self.prefix}part-{index:05d}.json.gz"

    def existing_parts(self) -> dict[int, str]:
        found = {}
        for key in self.store.list(self.prefix):
            name = key.rsplit("/", 1)[-1]
            if name.startswith("part-") and name.endswith(".json.gz"):
                found[int(name[5:-8])] = key
        return found

    def write_part(self, index: int, body: bytes) -> tuple[str, str]:
        data = gz(body)
        key = self.part_key(index)
        self.store.put(key, data)
        return key, hashlib.sha256(data).hexdigest()

    def read_part(self, key: str) -> tuple[bytes, str]:
        data = self.store.get(key)
        if data is None:
            raise FileNotFoundError(self.store.uri(key))
        return gzip.decompress(data), hashlib.sha256(data).hexdigest()

    def write_quarantine(self, rows: list[dict[str, Any]]) -> str:
        key = f"{self.prefix}{QUARANTINE}"
        self.store.put(key, gz(json.dumps(rows, default=str).encode()))
        return key

    def write_manifest(self, manifest: dict[str, Any]) -> str:
        key = f"{self.prefix}{MANIFEST}"
        self.store.put(key, json.dumps(manifest, indent=2, sort_keys=True).encode())
        return self.store.uri(key)


class BronzeWriter:
    """The ingestions of one dataset and date."""

    def __init__(self, store: Store, dataset: str, date: str) -> None:
        self.store, self.dataset, self.date = store, dataset, date
        self.base = f"fmp/{dataset}/date={date}/"

    def _dirs(self) -> dict[str, set[str]]:
        dirs: dict[str, set[str]] = {}
        for key in self.store.list(self.base):
            head, _, name = key.rpartition("/")
            if head.rsplit("/", 1)[-1].startswith("ingested_at="):
                dirs.setdefault(head + "/", set()).add(name)
        return dirs

    def manifests(self) -> list[tuple[str, dict[str, Any]]]:
        """Complete ingestions, oldest first: (manifest uri, manifest)."""
        out = []
        for prefix, names in sorted(self._dirs().items()):
            if MANIFEST in names:
                raw = self.store.get(prefix + MANIFEST)
                if raw is not None:
                    out.append((self.store.uri(prefix + MANIFEST), json.loads(raw)))
        return out

    def incomplete(self, request: dict[str, Any]) -> Ingestion | None:
        """The newest unfinished ingestion that asked for exactly ``request``."""
        for prefix, names in sorted(self._dirs().items(), reverse=True):
            if MANIFEST in names or RUN_FILE not in names:
                continue
            raw = self.store.get(prefix + RUN_FILE)
            if raw is not None and json.loads(raw).get("request") == request:
                stamp = prefix.rstrip("/").rsplit("=", 1)[-1]
                return Ingestion(self.store, prefix, stamp, resumed=True)
        return None

    def begin(self, request: dict[str, Any]) -> Ingestion:
        taken = set(self._dirs())
        now = dt.datetime.now(dt.UTC)
        while f"{self.base}ingested_at={clock.stamp(now)}/" in taken:
            now += dt.timedelta(seconds=1)  # two forced runs in one second stay apart
        stamp = clock.stamp(now)
        ingestion = Ingestion(self.store, f"{self.base}ingested_at={stamp}/", stamp)
        self.store.put(ingestion.prefix + RUN_FILE,
                       json.dumps({"request": request, "started_at": now.isoformat()}).encode())
        return ingestion
