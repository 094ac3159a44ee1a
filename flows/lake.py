"""Tiny object I/O for orchestration state (run records, locks) in the lake.

Local zones are directories; S3 zones go through boto3 at the settings'
endpoint (the moto server locally, AWS otherwise).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from finks.settings import Settings


def aws_client(settings: Settings, service: str, *, fast_fail: bool = False) -> Any:
    """A boto3 client for `service` at the environment's endpoint (see finks.aws)."""
    from finks.aws import client

    return client(settings, service, fast_fail=fast_fail)


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def read_text(settings: Settings, uri: str) -> str | None:
    """The object's text, or None when it does not exist."""
    if uri.startswith("s3://"):
        bucket, key = _split(uri)
        s3 = aws_client(settings, "s3")
        try:
            return str(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode())
        except s3.exceptions.NoSuchKey:
            return None
    path = Path(uri)
    return path.read_text() if path.is_file() else None


def write_text(settings: Settings, uri: str, text: str) -> None:
    """Write atomically: readers see the old object or the new one, never half."""
    if uri.startswith("s3://"):
        bucket, key = _split(uri)
        aws_client(settings, "s3").put_object(Bucket=bucket, Key=key, Body=text.encode())
        return
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def delete(settings: Settings, uri: str) -> None:
    if uri.startswith("s3://"):
        bucket, key = _split(uri)
        aws_client(settings, "s3").delete_object(Bucket=bucket, Key=key)
        return
    Path(uri).unlink(missing_ok=True)


def list_names(settings: Settings, prefix_uri: str) -> list[str]:
    """Names directly under a prefix (files or 'directories')."""
    if prefix_uri.startswith("s3://"):
        bucket, key = _split(prefix_uri.rstrip("/") + "/")
        s3 = aws_client(settings, "s3")
        names: set[str] = set()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key, Delimiter="/"):
            names.update(p["Prefix"][len(key):].rstrip("/") for p in page.get("CommonPrefixes", []))
            names.update(o["Key"][len(key):] for o in page.get("Contents", []))
        return sorted(names)
    path = Path(prefix_uri)
    return sorted(p.name for p in path.iterdir()) if path.is_dir() else []
