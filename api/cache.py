"""A TTL cache of serialized responses, keyed by query, tied to one gold run.

Gold only changes when dbt publishes a new ``run_id``; entries are dropped as
soon as a new ``run_id`` is observed, and otherwise live ``ttl`` seconds (a
safety net against a publication the API has not noticed yet).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass(frozen=True)
class CachedResponse:
    body: bytes
    etag: str
    run_id: str
    expires_at: float
    link: str | None = None
    """The ``Link`` header of the response (its next page), cached with the body."""


def make_etag(run_id: str, body: bytes) -> str:
    return '"' + hashlib.sha256(run_id.encode() + b"\0" + body).hexdigest()[:32] + '"'


class ResponseCache:
    def __init__(
        self,
        ttl: float = 300.0,
        max_entries: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[Hashable, CachedResponse] = OrderedDict()
        self._run_id: str | None = None
        self._lock = threading.Lock()
        self.hits = self.misses = self.invalidations = 0

    def observe(self, run_id: str) -> None:
        """Drop everything when gold has been republished."""
        with self._lock:
            if self._run_id is not None and run_id != self._run_id and self._entries:
                self._entries.clear()
                self.invalidations += 1
            self._run_id = run_id

    def get(self, key: Hashable, run_id: str) -> CachedResponse | None:
        self.observe(run_id)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.run_id != run_id or entry.expires_at <= self.clock():
                if entry is not None:
                    del self._entries[key]
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(
        self, key: Hashable, run_id: str, body: bytes, link: str | None = None
    ) -> CachedResponse:
        entry = CachedResponse(body, make_etag(run_id, body), run_id, self.clock() + self.ttl, link)
        with self._lock:
            if self.ttl <= 0:
                return entry
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "entries": len(self._entries),
                "hits": self.hits,
                "misses": self.misses,
                "invalidations": self.invalidations,
            }
