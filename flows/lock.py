"""The per-date lock: two runs of one date never write the same partitions at once.

A lock belongs to the lake whose partitions it guards, in its silver zone's
``_locks/``: runs on different lakes (a check's scratch lake and the real one)
never wait for each other. Locally an OS file lock (`flock`) on
``<silver>/_locks/<name>.lock``: the kernel drops it when the holder dies, so
a crashed run never leaves a stale lock. On S3 an object ``_locks/<name>.json``
in the silver bucket, created with a conditional put (`If-None-Match: *`) and
an expiry, so a crashed cloud run blocks the date for at most `ttl` seconds.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import lake
from core.clock import now_iso
from flows.errors import DateLocked

if TYPE_CHECKING:
    from core.settings import Settings


def _holder(run_id: str | None) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": now_iso(),
    }


def _locked(name: str, holder: dict[str, Any] | None, waited: float) -> DateLocked:
    who = "another run"
    if holder:
        who = f"run {holder.get('run_id') or '?'} (pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('since')})"
    return DateLocked(
        f"{name} is locked by {who}; gave up after {waited:.0f}s",
        hint="let that run finish, or retry with --wait SECONDS to queue behind it",
    )


@contextmanager
def _file_lock(path: Path, name: str, run_id: str | None, wait: float, poll: float) -> Iterator[dict[str, Any]]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    start = time.monotonic()
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - start >= wait:
                    try:
                        holder = json.loads(path.read_text() or "null")
                    except (OSError, ValueError):
                        holder = None
                    raise _locked(name, holder, time.monotonic() - start) from None
                time.sleep(poll)
        holder = _holder(run_id)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        try:
            yield holder
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def _s3_lock(settings: Settings, name: str, run_id: str | None, wait: float, poll: float, ttl: float) -> Iterator[dict[str, Any]]:
    from botocore.exceptions import ClientError

    from core.aws import client as aws_client

    s3 = aws_client(settings, "s3")
    bucket, key = lake.bucket(settings, "silver"), f"_locks/{name}.json"
    start = time.monotonic()
    holder = _holder(run_id) | {"expires_at": time.time() + ttl}
    while True:
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(holder).encode(), IfNoneMatch="*")
            break
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise
        try:
            current = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except ClientError:
            continue  # released between our put and get: try again at once
        if current.get("expires_at", 0) < time.time():
            s3.delete_object(Bucket=bucket, Key=key)  # its holder died; take over
            continue
        if time.monotonic() - start >= wait:
            raise _locked(name, current, time.monotonic() - start)
        time.sleep(poll)
    try:
        yield holder
    finally:
        # Release only our own lock: if ours expired and another run took over, leave theirs.
        try:
            current = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except ClientError:
            current = None
        if current == holder:
            s3.delete_object(Bucket=bucket, Key=key)


def lock_path(settings: Settings, key: str) -> Path:
    """The file of a local lake's lock ``key``."""
    return Path(lake.zone_uri(settings, "silver")) / "_locks" / f"{key}.lock"


@contextmanager
def named_lock(
    settings: Settings,
    key: str,
    *,
    run_id: str | None = None,
    wait: float = 0.0,
    poll: float = 0.5,
    ttl: float = 6 * 3600,
) -> Iterator[dict[str, Any]]:
    """Hold the lock `key` (letters, digits, dashes); wait up to `wait` seconds, then raise DateLocked."""
    label = key.replace("-", " ", 1)
    if settings.storage == "s3":
        with _s3_lock(settings, key, run_id, wait, poll, ttl) as held:
            yield held
    else:
        with _file_lock(lock_path(settings, key), label, run_id, wait, poll) as held:
            yield held


@contextmanager
def date_lock(
    settings: Settings,
    date: dt.date,
    *,
    scope: str = "pipeline",
    run_id: str | None = None,
    wait: float = 0.0,
    poll: float = 0.5,
    ttl: float = 6 * 3600,
) -> Iterator[dict[str, Any]]:
    """The lock of one date's pipeline run: the message reads '<scope> <date> is locked by ...'."""
    with named_lock(settings, f"{scope}-{date.isoformat()}", run_id=run_id, wait=wait, poll=poll, ttl=ttl) as held:
        yield held
