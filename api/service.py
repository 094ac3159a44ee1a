"""The request-independent core: publication state, backend and response cache.

The backend factory lives here, above both backends, so neither backend
module imports the other (their shared types are in :mod:`api.backend_types`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from api.backend_types import BackendError, QueryBackend, Row
from api.cache import CachedResponse, ResponseCache
from api.models import GoldFreshness
from api.queries import Query
from core.gold import MARTS, Published, gold_uri, read_published

if TYPE_CHECKING:
    from core.settings import Settings


@dataclass
class ApiConfig:
    cache_ttl: float = 300.0
    cache_max_entries: int = 1024
    client_max_age: int = 60
    # How long a read of _published.json is trusted. Local files are cheap to
    # re-read on every request; on S3 each read is a GET, so it is throttled.
    published_refresh: float | None = None
    stale_after_hours: float = 36.0


def backend_for(settings: Settings) -> QueryBackend:
    """Athena where dbt builds gold with Athena (AWS), DuckDB otherwise."""
    if settings.dbt_target == "athena":
        from api.athena import AthenaBackend

        return AthenaBackend.from_settings(settings)
    from api.backends import DuckDBBackend

    return DuckDBBackend(settings)


class NoGold(Exception):
    """Gold has not been published yet."""


class GoldService:
    def __init__(
        self,
        settings: Settings,
        backend: QueryBackend | None = None,
        config: ApiConfig | None = None,
    ):
        self.settings = settings
        self.config = config or ApiConfig()
        self._backend = backend
        self.cache = ResponseCache(self.config.cache_ttl, self.config.cache_max_entries)
        refresh = self.config.published_refresh
        self.published_refresh = (
            refresh if refresh is not None else (15.0 if settings.storage == "s3" else 0.0)
        )
        self._published: Published | None = None
        self._published_read_at = float("-inf")
        self._lock = threading.Lock()

    @property
    def backend(self) -> QueryBackend:
        if self._backend is None:
            self._backend = backend_for(self.settings)
        return self._backend

    @property
    def backend_name(self) -> str:
        if self._backend is not None:
            return self._backend.name
        return "athena" if self.settings.dbt_target == "athena" else "duckdb"

    @property
    def gold_uri(self) -> str:
        return gold_uri(self.settings)

    def published(self) -> Published | None:
        with self._lock:
            now = time.monotonic()
            if now - self._published_read_at >= self.published_refresh:
                self._published = read_published(self.settings)
                self._published_read_at = now
            if self._published is not None:
                self.cache.observe(self._published.run_id)
            return self._published

    def require_published(self) -> Published:
        published = self.published()
        if published is None:
            raise NoGold(
                f"no gold has been published at {self.gold_uri} yet; "
                "run the pipeline first (finks run s16, or dbt build with publish)"
            )
        return published

    def rows(self, query: Query, published: Published) -> list[Row]:
        return self.backend.run(query, published.run_id)

    def cached(
        self, key: Hashable, build: Callable[[Published], tuple[bytes, str | None]]
    ) -> tuple[CachedResponse, bool]:
        """The response for ``key`` under the current publication; (entry, hit).

        ``build`` returns the body and its ``Link`` header (None without one).
        """
        published = self.require_published()
        entry = self.cache.get(key, published.run_id)
        if entry is not None:
            return entry, True
        body, link = build(published)
        return self.cache.put(key, published.run_id, body, link), False

    def freshness(self) -> GoldFreshness | None:
        published = self.published()
        if published is None:
            return None
        age = published.age_seconds()
        return GoldFreshness(
            run_id=published.run_id,
            published_at=published.published_at,
            age_seconds=None if age is None else round(age, 1),
            stale=age is None or age > self.config.stale_after_hours * 3600,
            models=published.models,
            missing_models=[m for m in MARTS if published.models and m not in published.models],
            tests_passed=published.tests_passed,
        )


__all__ = ["ApiConfig", "BackendError", "GoldService", "NoGold", "backend_for"]
