"""Gold: where the marts live and what was last published.

The contract: ``<gold zone>/marts/<model>.parquet`` and
``<gold zone>/_published.json`` = {"run_id", "published_at", "models",
"tests_passed", "paths"}. dbt writes ``_published.json`` only after its tests
pass, and last, so its ``run_id`` is the version of everything the API serves.
This module is the only one that reads or writes that file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core import lake
from core.errors import ConfigError, ServiceError

if TYPE_CHECKING:
    from core.settings import Settings

MARTS: tuple[str, ...] = (
    "daily_portfolio_summary",
    "fct_daily_prices",
    "dim_company",
    "fct_portfolio_positions",
)
PUBLISHED_FILE = "_published.json"
_HINT = "republish gold (finks dbt build)"


@dataclass(frozen=True)
class Published:
    """One publication of the gold marts: the content of ``_published.json``."""

    run_id: str
    published_at: datetime | None
    models: list[str] = field(default_factory=list)
    tests_passed: int | None = None
    paths: dict[str, str] = field(default_factory=dict)

    @classmethod
    def now(cls, run_id: str, *, tests_passed: int, models: tuple[str, ...] = MARTS) -> Published:
        return cls(run_id, datetime.now(UTC), list(models), tests_passed,
                   {m: f"marts/{m}.parquet" for m in models})

    @classmethod
    def from_json(cls, raw: dict[str, Any], where: str) -> Published:
        run_id = raw.get("run_id")
        if not isinstance(run_id, str) or not run_id:
            raise ServiceError(f"{where}: 'run_id' is missing or not a string", hint=_HINT)
        published_at = None
        if isinstance(raw.get("published_at"), str):
            try:
                published_at = datetime.fromisoformat(raw["published_at"])
            except ValueError:
                published_at = None
            if published_at is not None and published_at.tzinfo is None:
                published_at = published_at.replace(tzinfo=UTC)
        models = [str(m) for m in raw.get("models") or []]
        tests = raw.get("tests_passed")
        paths = raw.get("paths") if isinstance(raw.get("paths"), dict) else {}
        return cls(run_id, published_at, models, tests if isinstance(tests, int) else None,
                   {str(k): str(v) for k, v in (paths or {}).items()})

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "published_at": self.published_at.isoformat() if self.published_at else None,
            "models": list(self.models),
            "tests_passed": self.tests_passed,
            "paths": dict(self.paths),
        }

    def age_seconds(self, now: datetime | None = None) -> float | None:
        if self.published_at is None:
            return None
        now = now or datetime.now(UTC)
        return max(0.0, (now - self.published_at).total_seconds())


def gold_uri(settings: Settings) -> str:
    return lake.zone_uri(settings, "gold").rstrip("/")


def mart_uri(settings: Settings, model: str) -> str:
    return f"{gold_uri(settings)}/marts/{model}.parquet"


def published_uri(settings: Settings) -> str:
    return f"{gold_uri(settings)}/{PUBLISHED_FILE}"


def write_published(settings: Settings, published: Published) -> str:
    """Replace ``_published.json`` atomically; readers switch to the new gold when it appears."""
    uri = published_uri(settings)
    lake.write_text(settings, uri, json.dumps(published.to_json(), indent=2))
    return uri


def read_published(settings: Settings) -> Published | None:
    """The last publication, or None when gold has never been published."""
    uri = published_uri(settings)
    try:
        raw = lake.read_json(settings, uri)
    except ConfigError as exc:
        raise ServiceError(exc.message, hint=_HINT) from exc
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ServiceError(f"{uri}: expected a JSON object", hint=_HINT)
    return Published.from_json(raw, uri)


def latest_run_id(settings: Settings) -> str | None:
    """The run id of the gold that is served now, or None."""
    published = read_published(settings)
    return published.run_id if published else None
