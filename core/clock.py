"""Time stamps and run ids, in the one format every record uses."""

from __future__ import annotations

import datetime as dt
import uuid

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def now_iso() -> str:
    """Now, to the second, as ISO 8601 with a ``Z``: ``2026-12-01T19:21:24Z``."""
    return utcnow().isoformat(timespec="seconds").replace("+00:00", "Z")


def stamp(when: dt.datetime | None = None) -> str:
    """A compact UTC stamp that sorts as text: ``20261201T192124Z``."""
    return (when or utcnow()).astimezone(dt.UTC).strftime(STAMP_FORMAT)


def new_run_id(when: dt.datetime | None = None) -> str:
    """A run id: the stamp and six hex digits, unique across processes."""
    return f"{stamp(when)}-{uuid.uuid4().hex[:6]}"
