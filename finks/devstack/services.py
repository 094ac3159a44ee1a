"""The services of the local stack: how each starts and how we know it is healthy."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.settings import Settings

# Start order; `up` with no selection starts the first two.
ALL_SERVICES: tuple[str, ...] = ("moto", "prefect", "worker")
DEFAULT_SERVICES: tuple[str, ...] = ("moto", "prefect")
REQUIRES: dict[str, tuple[str, ...]] = {"worker": ("prefect",)}

# What the moto server emulates for us (it serves every moto backend on one port).
EMULATED = ("s3", "glue", "athena", "secretsmanager", "iam", "sts", "cloudwatch", "logs", "sns")


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    port: int | None
    url: str | None
    command: list[str]
    env: dict[str, str]
    start_timeout: float
    healthy: Callable[[], bool]


def base_env(settings: Settings) -> dict[str, str]:
    """Environment for every process we start: offline, and agreeing on our settings."""
    env = dict(os.environ)
    env.update(
        DO_NOT_TRACK="1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_HOME=str(settings.prefect_home),
        PREFECT_API_URL=settings.prefect_api,
        FINKS_STATE_DIR=str(settings.home),
        FINKS_PREFECT_PORT=str(settings.prefect_port),
        FINKS_MOTO_PORT=str(settings.moto_port),
        PYTHONUNBUFFERED="1",
    )
    return env


def aws_env(settings: Settings) -> dict[str, str]:
    """Variables that point AWS SDKs at the emulator (for processes that run our flows)."""
    return {
        "AWS_ENDPOINT_URL": settings.s3_endpoint or "",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": settings.region,
        "AWS_REGION": settings.region,
    }


def http_ok(url: str, timeout: float = 3.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _worker_online(settings: Settings) -> bool:
    url = f"{settings.prefect_api}/work_pools/{settings.worker_pool}/workers/filter"
    req = urllib.request.Request(url, data=b"{}", method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=3) as resp:
            workers = json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return any(w.get("status") == "ONLINE" for w in workers)


def spec(name: str, settings: Settings) -> ServiceSpec:
    python = sys.executable
    env = base_env(settings)
    if name == "moto":
        url = f"http://127.0.0.1:{settings.moto_port}"
        return ServiceSpec(
            name, settings.moto_port, url,
            [python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(settings.moto_port)],
            env, 60.0, lambda: http_ok(f"{url}/moto-api/data.json"),
        )
    if name == "prefect":
        url = f"http://127.0.0.1:{settings.prefect_port}"
        env.update(
            PREFECT_SERVER_API_HOST="127.0.0.1",
            PREFECT_SERVER_API_PORT=str(settings.prefect_port),
            PREFECT_UI_API_URL=f"{url}/api",
        )
        env.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
        if settings.prefect_database_url:
            env["PREFECT_API_DATABASE_CONNECTION_URL"] = settings.prefect_database_url
        return ServiceSpec(
            name, settings.prefect_port, url,
            [python, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
             "--port", str(settings.prefect_port)],
            env, float(settings.prefect_start_timeout), lambda: http_ok(f"{url}/api/health"),
        )
    if name == "worker":
        env.update(aws_env(settings))
        # One local worker on its own server: ask for scheduled runs every 2 s, not Prefect's 10
        # (a run started from the UI or `finks` waited up to 10 s for nothing). The shell's wins.
        env.setdefault("PREFECT_WORKER_QUERY_SECONDS", "2")
        return ServiceSpec(
            name, None, None,
            [python, "-m", "prefect", "worker", "start", "--pool", settings.worker_pool,
             "--type", "process", "--name", f"finks-{settings.env}-worker"],
            env, 90.0, lambda: _worker_online(settings),
        )
    raise KeyError(name)
