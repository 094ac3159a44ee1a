"""What every flow shares: a run's settings and retry policy, run records and step outcomes.

A flow that a deployment (or the scheduler) starts gets plain parameters; it
resolves them once at its entry into a Settings object and a RetryPolicy
(`run_settings`, `run_retry`) and passes those objects down to its sub-flows
and tasks. In-process callers (the CLI, checks, tests) pass ready objects.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core import lake

if TYPE_CHECKING:
    from core.settings import Settings

Status = Literal["ok", "skipped", "failed", "not run"]
DEFAULT_DATASETS = ("quotes", "profiles", "eod")


def run_settings(env: str | None = None, settings: Settings | None = None) -> Settings:
    """The settings of a flow run: the object the caller passed, else built from `env`."""
    if settings is None:
        from core.settings import load_settings

        return load_settings(env=env)
    if env is not None and env != settings.env:
        from core.errors import UsageError

        raise UsageError(f"env {env!r} contradicts the settings passed (env {settings.env!r})",
                         hint="pass either env or settings")
    return settings


class RetryPolicy(BaseModel):
    """Task retries: `retries` after the first attempt, waiting `delay_s`, ×4 per retry."""

    model_config = ConfigDict(frozen=True)

    retries: Annotated[int, Field(ge=0)] = 2
    delay_s: Annotated[float, Field(ge=0)] = 30.0

    @property
    def delays(self) -> list[float]:
        return [self.delay_s * 4**i for i in range(max(self.retries, 1))]

    @classmethod
    def from_env(cls) -> RetryPolicy:
        """FINKS_TASK_RETRIES (default 2) and FINKS_TASK_RETRY_DELAY_S (default 30)."""
        from core.errors import ConfigError

        retries = os.environ.get("FINKS_TASK_RETRIES", "2")
        delay = os.environ.get("FINKS_TASK_RETRY_DELAY_S", "30")
        try:
            return cls(retries=int(retries), delay_s=float(delay))
        except (ValueError, ValidationError):
            raise ConfigError(f"FINKS_TASK_RETRIES={retries!r}, FINKS_TASK_RETRY_DELAY_S={delay!r}: "
                              "expected a whole number >= 0 and seconds >= 0") from None


def run_retry(retry: RetryPolicy | None = None) -> RetryPolicy:
    """The retry policy of a flow run: the one passed, else the environment's."""
    return retry if retry is not None else RetryPolicy.from_env()


def retrying(task: Any, policy: RetryPolicy, **extra: Any) -> Any:
    """The task with the run's retry policy."""
    return task.with_options(retries=policy.retries, retry_delay_seconds=policy.delays, **extra)


def as_dict(obj: Any) -> dict[str, Any]:
    """A step's result (a dataclass, or anything with to_dict) as a plain dict."""
    if hasattr(obj, "to_dict"):
        return dict(obj.to_dict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return dict(obj)


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
