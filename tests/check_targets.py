"""Python check callables used by the orchestrator's own tests."""

from __future__ import annotations

import os
import time
from pathlib import Path

from finks.checks import CheckContext, CheckFailed, CheckSkipped, Evidence


def passes(ctx: CheckContext) -> Evidence:
    return Evidence("verified the thing", figures={"env": ctx.env, "session": ctx.session})


def fails(ctx: CheckContext) -> Evidence:
    raise CheckFailed("the thing does not hold", figures={"expected": 1, "actual": 0})


def crashes(ctx: CheckContext) -> Evidence:
    raise RuntimeError("boom")


def skips(ctx: CheckContext) -> Evidence:
    raise CheckSkipped("no such tool here")


def returns_nothing(ctx: CheckContext) -> None:
    return None


def secret_in_env(ctx: CheckContext) -> Evidence:
    return Evidence("saw the context", figures={"work_dir_exists": ctx.work_dir.exists()})


def slow(ctx: CheckContext) -> Evidence:
    """Writes a marker, then sleeps: lets tests kill a run while a check is under way."""
    marker = Path(os.environ["FINKS_TEST_MARKER"])
    marker.write_text(str(os.getpid()))
    time.sleep(float(os.environ.get("FINKS_TEST_SLEEP", "30")))
    return Evidence("slept")


def process_facts(ctx: CheckContext) -> Evidence:
    """What the check's process looks like from inside: what was imported before it ran, and its env."""
    import sys

    preloaded = "prefect" in sys.modules
    from prefect.settings import get_current_settings

    return Evidence("looked", figures={
        "prefect_preloaded": preloaded, "pid": os.getpid(), "sid": os.getsid(0), "cwd": os.getcwd(),
        "api_url": str(get_current_settings().api.url), "env_api_url": os.environ.get("PREFECT_API_URL"),
        "marker": os.environ.get("FINKS_TEST_MARKER"), "context_check": ctx.check_id})


def exits_hard(ctx: CheckContext) -> Evidence:
    os._exit(3)
