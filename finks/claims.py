"""Claims: who is on a session, until when, from which process.

The events live in the history (finks/state.py appends and reads them); this
module is the claim itself, its lease and how people read what is left of it.
"""

from __future__ import annotations

import datetime as dt
import getpass
import math
import os
import re
from dataclasses import dataclass
from typing import Any

from core.clock import utcnow
from core.errors import UsageError

_LEASE_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_LEASE_S = 30 * 86400


def parse_lease(text: str) -> float:
    """``4h``, ``30m``, ``1h30m``, ``90s``, ``2d`` → seconds."""
    spec = text.strip().lower().replace(" ", "")
    parts = _LEASE_PART.findall(spec)
    if not spec or "".join(n + u for n, u in parts) != spec:
        raise UsageError(f"lease {text!r} is not a duration", hint="give a number and a unit: 90s, 30m, 4h, 1h30m, 2d")
    seconds = sum(float(n) * _UNIT_S[u] for n, u in parts)
    if not 0 < seconds <= MAX_LEASE_S:
        raise UsageError(f"lease {text!r} is out of range", hint="a lease lasts more than 0 s and at most 30d")
    return seconds


def default_owner() -> str:
    """Who a claim or a run is for when no owner is given: FINKS_OWNER, else the user name."""
    owner = os.environ.get("FINKS_OWNER", "").strip()
    if owner:
        return owner
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return f"uid-{os.getuid()}"


def iso_ms(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _nearest(value: float) -> int:
    return math.floor(value + 0.5)


def _left(seconds: float) -> str:
    """``2 h``, ``1 h 25 min``, ``12 min``, ``40 s``: a lease's remaining time as people read it."""
    if seconds < 60:
        return f"{max(0, math.ceil(seconds))} s"
    minutes = _nearest(seconds / 60)
    if minutes >= 120:
        return f"{_nearest(minutes / 60)} h"
    if minutes >= 60:
        return "1 h" + (f" {minutes - 60} min" if minutes > 60 else "")
    return f"{minutes} min"


def _left_changes_at(seconds: float) -> float:
    """The remaining time at which :func:`_left` next reads differently (it reads the same down to it)."""
    if seconds < 60:
        return max(0.0, math.ceil(seconds) - 1.0)
    minutes = _nearest(seconds / 60)
    if minutes >= 120:
        return max((60 * _nearest(minutes / 60) - 30.5) * 60, 119.5 * 60)
    return max((minutes - 0.5) * 60, 60.0)


@dataclass(frozen=True)
class Claim:
    """Who is on a session, until when (UTC, ISO 8601), and from which process."""

    session: str
    owner: str
    claimed_at: str
    expires_at: str
    pid: int = 0
    host: str = ""

    @property
    def expires(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.expires_at)

    def remaining_s(self, now: dt.datetime | None = None) -> float:
        return (self.expires - (now or utcnow())).total_seconds()

    def live(self, now: dt.datetime | None = None) -> bool:
        return self.remaining_s(now) > 0

    def describe(self, now: dt.datetime | None = None) -> str:
        """``claimed by alice, 2 h left``."""
        return f"claimed by {self.owner}, {_left(self.remaining_s(now))} left"

    def describe_stable_s(self, now: dt.datetime | None = None) -> float:
        """For how many seconds from ``now`` :meth:`describe` reads the same (what a memo of it may last)."""
        left = self.remaining_s(now)
        return max(0.0, left - _left_changes_at(left))

    def to_dict(self, now: dt.datetime | None = None) -> dict[str, Any]:
        return {"session": self.session, "owner": self.owner, "claimed_at": self.claimed_at,
                "expires_at": self.expires_at, "remaining_s": round(max(0.0, self.remaining_s(now)), 1),
                "pid": self.pid, "host": self.host}
