"""What a backfill leaves behind: its report, with the resources it used, in the lake.

A backfill's report (dates run, skipped, failed, gold) lands next to the run
records it wrote, at ``<silver>/_pipeline/backfills/<stamp>.<µs>.json`` — on the
local lake as in the environment's silver bucket — so that what a backfill on
ECS used is still there when its task is gone, and a probe can read it.

The resources are those of the process running the flow (stdlib only: the
flows image carries no psutil): wall time, CPU seconds of the process and of
the children it waited for, and their peak resident set size
(``getrusage(2)``'s ``ru_maxrss``, the process's high-water mark). On AWS the
connector and dbt run as ECS tasks and bronze→silver as Glue runs, whose own
usage is in Container Insights and the Glue job metrics.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core import clock, lake

if TYPE_CHECKING:
    from core.settings import Settings

RESOURCE_FIGURES = ("wall_s", "cpu_s", "peak_rss_mb")
REPORTS = "_pipeline/backfills"  # under the silver zone: <silver>/_pipeline/backfills/<stamp>.<µs>.json


def _peak_rss_mb() -> float:
    import resource

    # ru_maxrss is kilobytes on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return round(peak * scale / 2**20, 1)


def _cpu_s() -> float:
    import resource

    # getrusage(2) counts in microseconds; os.times() only in clock ticks (10 ms), which rounds a short run to 0.
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass(frozen=True)
class ResourceMeter:
    """Wall time, CPU time and peak RSS of this process (and its waited-for children) since :meth:`start`."""

    t0: float
    cpu0: float

    @classmethod
    def start(cls) -> ResourceMeter:
        return cls(time.monotonic(), _cpu_s())

    def stop(self) -> dict[str, float]:
        return {"wall_s": round(time.monotonic() - self.t0, 2), "cpu_s": round(_cpu_s() - self.cpu0, 3),
                "peak_rss_mb": _peak_rss_mb()}


def measured(resources: dict[str, Any] | None) -> bool:
    """Whether a report's resources were measured (every figure present and above zero)."""
    return bool(resources) and all(float((resources or {}).get(k) or 0) > 0 for k in RESOURCE_FIGURES)


def reports_uri(settings: Settings) -> str:
    return lake.join(lake.zone_uri(settings, "silver"), REPORTS)


def write_report(settings: Settings, report: dict[str, Any]) -> str:
    """Keep a backfill's report (one per run, named by when it finished: names sort by time); returns its URI."""
    now = clock.utcnow()
    uri = lake.join(reports_uri(settings), f"{clock.stamp(now)}.{now.microsecond:06d}.json")
    lake.write_text(settings, uri, json.dumps({**report, "finished_at": now.isoformat()}, indent=2, default=str))
    return uri


def list_reports(settings: Settings, limit: int = 20) -> list[tuple[str, dict[str, Any]]]:
    """The newest backfill reports with their URIs, newest first (none before the first backfill)."""
    names = sorted((n for n in lake.list_names(settings, reports_uri(settings)) if n.endswith(".json")), reverse=True)
    out = []
    for name in names[:limit]:
        uri = lake.join(reports_uri(settings), name)
        out.append((uri, lake.read_json(settings, uri) or {}))
    return out
