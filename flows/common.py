"""What every flow shares: settings, the retry policy, run records and step outcomes."""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from core import lake

if TYPE_CHECKING:
    from core.settings import Settings

Status = Literal["ok", "skipped", "failed", "not run"]
DEFAULT_DATASETS = ("quotes", "profiles", "eod")


def settings_for(env: str | None = None) -> Settings:
    from core.settings import load_settings

    return load_settings(env=env)


@dataclass(frozen=True)
class RetryPolicy:
    """Task retries: FINKS_TASK_RETRIES (default 2) and FINKS_TASK_RETRY_DELAY_S (default 30, ×4 per retry)."""

    retries: int
    delays: list[float]

    @classmethod
    def from_env(cls) -> RetryPolicy:
        retries = int(os.environ.get("FINKS_TASK_RETRIES", "2"))
        base = float(os.environ.get("FINKS_TASK_RETRY_DELAY_S", "30"))
        return cls(retries, [base * 4**i for i in range(max(retries, 1))])


def retrying(task: Any, **extra: Any) -> Any:
    """The task with the current retry policy (read at call time, so tests and CLI can tune it)."""
    policy = RetryPolicy.from_env()
    return task.with_options(retries=policy.retries, retry_delay_seconds=policy.delays, **extra)


@dataclass
class StepOutcome:
    step: str
    status: Status
    detail: str = ""
    seconds: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "status": self.status, "detail": self.detail,
                "seconds": round(self.seconds, 2), "figures": self.figures}


def runner_for(settings: Settings, runner: str) -> Literal["local", "aws"]:
    """'auto' means in-process locally and ECS/Glue in AWS; 'glue' forces the Glue path."""
    if runner == "auto":
        return "local" if settings.is_local else "aws"
    if runner in ("local", "aws", "glue"):
        return "aws" if runner == "glue" else runner  # type: ignore[return-value]
    from core.errors import UsageError

    raise UsageError(f"unknown runner {runner!r}", hint="use auto, local or glue")


# ---- run records: which dates are complete (backfill resumes from these) ----

def _records_uri(settings: Settings) -> str:
    return lake.join(lake.zone_uri(settings, "silver"), "_pipeline", "dates")


def record_uri(settings: Settings, date: dt.date) -> str:
    return lake.join(_records_uri(settings), f"{date.isoformat()}.json")


def write_record(settings: Settings, date: dt.date, record: dict[str, Any]) -> None:
    lake.write_text(settings, record_uri(settings, date), json.dumps(record, indent=2, default=str))


def read_record(settings: Settings, date: dt.date) -> dict[str, Any] | None:
    text = lake.read_text(settings, record_uri(settings, date))
    return json.loads(text) if text else None


def completed_dates(settings: Settings) -> set[dt.date]:
    """Dates whose silver partitions were completed by a pipeline or backfill run."""
    done = set()
    for name in lake.list_names(settings, _records_uri(settings)):
        if not name.endswith(".json"):
            continue
        text = lake.read_text(settings, lake.join(_records_uri(settings), name))
        if text and json.loads(text).get("silver") == "ok":
            done.add(dt.date.fromisoformat(name.removesuffix(".json")))
    return done


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def use_prefect_server(settings: Settings) -> str:
    """Point Prefect (this process and its children) at the environment's server.

    Prefect snapshots its settings at import; set the variables first, and
    refresh if it was already imported. An explicit PREFECT_API_URL wins.
    """
    import sys

    os.environ.setdefault("PREFECT_API_URL", settings.prefect_api)
    os.environ.setdefault("PREFECT_HOME", str(settings.prefect_home))
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if "prefect.context" in sys.modules:
        sys.modules["prefect.context"].refresh_global_settings_context()
    return os.environ["PREFECT_API_URL"]
