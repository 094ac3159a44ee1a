"""Where the gold marts live and what was last published.

The contract (see the project brief): ``<gold zone>/marts/<model>.parquet`` and
``<gold zone>/_published.json`` = {"run_id", "published_at", "models",
"tests_passed"}. dbt writes ``_published.json`` only after its tests pass, so
its ``run_id`` is the version of everything the API serves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finks.errors import ServiceError

if TYPE_CHECKING:
    from finks.settings import Settings

MARTS: tuple[str, ...] = (
    "daily_portfolio_summary",
    "fct_daily_prices",
    "dim_company",
    "fct_portfolio_positions",
)
PUBLISHED_FILE = "_published.json"


@dataclass(frozen=True)
class Published:
    """The content of ``_published.json``."""

    run_id: str
    published_at: datetime | None
    models: list[str] = field(default_factory=list)
    tests_passed: int | None = None

    @classmethod
    def from_json(cls, raw: dict[str, Any], where: str) -> Published:
        run_id = raw.get("run_id")
        if not isinstance(run_id, str) or not run_id:
            raise ServiceError(
                f"{where}: 'run_id' is missing or not a string", hint="republish gold (dbt build)"
            )
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
        return cls(run_id, published_at, models, tests if isinstance(tests, int) else None)

    def age_seconds(self, now: datetime | None = None) -> float | None:
        if self.published_at is None:
            return None
        now = now or datetime.now(UTC)
        return max(0.0, (now - self.published_at).total_seconds())


def gold_uri(settings: Settings) -> str:
    return settings.zone_uri("gold").rstrip("/")


def mart_uri(settings: Settings, model: str) -> str:
    return f"{gold_uri(settings)}/marts/{model}.parquet"


def published_uri(settings: Settings) -> str:
    return f"{gold_uri(settings)}/{PUBLISHED_FILE}"


def split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def aws_client_kwargs(settings: Settings) -> dict[str, Any]:
    """boto3 client arguments: the moto endpoint locally, AWS otherwise (see finks.aws)."""
    from finks.aws import client_kwargs

    return client_kwargs(settings)


def read_published(settings: Settings) -> Published | None:
    """The last publication, or None when gold has never been published."""
    uri = published_uri(settings)
    if uri.startswith("s3://"):
        # boto3 rather than pyarrow: the Lambda runtime ships boto3 already.
        import boto3

        bucket, key = split_s3(uri)
        client = boto3.client("s3", **aws_client_kwargs(settings))
        try:
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except client.exceptions.NoSuchKey:
            return None
        except client.exceptions.NoSuchBucket:
            return None
        text = body.decode()
    else:
        path = Path(uri)
        if not path.is_file():
            return None
        text = path.read_text()
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ServiceError(
            f"{uri}: not valid JSON ({exc})", hint="republish gold (dbt build)"
        ) from exc
    if not isinstance(raw, dict):
        raise ServiceError(f"{uri}: expected a JSON object", hint="republish gold (dbt build)")
    return Published.from_json(raw, uri)
