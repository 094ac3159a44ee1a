"""Connector options, derived from the one settings model (core.settings).

Only what core.settings does not already hold lives here (timeouts, retry
policy); everything per-environment (URL, key, plan, limits) comes from it.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class FmpOptions:
    base_url: str
    api_key: str | None
    plan: str
    calls_per_minute: int
    max_concurrency: int
    uses_simulator: bool
    window_s: float = 60.0  # the window the limit is counted over (core.settings fmp_rate_window_s)
    timeout_s: float = 15.0
    max_retries: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> FmpOptions:
        key = settings.fmp_api_key.get_secret_value() if settings.fmp_api_key is not None else None
        values: dict[str, Any] = {
            "base_url": settings.fmp_url,
            "api_key": key,
            "plan": settings.fmp_plan,
            "calls_per_minute": settings.fmp_rate_limit,
            "max_concurrency": settings.fmp_max_concurrency,
            "uses_simulator": settings.uses_simulator,
            "window_s": settings.fmp_rate_window_s,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def window_limit(self) -> int:
        """Calls allowed in one window: ``calls_per_minute`` scaled to ``window_s``."""
        from core.settings import window_limit

        return window_limit(self.calls_per_minute, self.window_s)

    @property
    def sim_extensions(self) -> bool:
        """Send the simulator's ``date`` parameter: only to a simulator or a loopback server."""
        host = urlsplit(self.base_url).hostname or ""
        return self.uses_simulator or host in {"127.0.0.1", "localhost", "::1"}

    def __repr__(self) -> str:  # the key never reaches a repr, a log or a traceback
        return (f"FmpOptions(base_url={self.base_url!r}, api_key={'***' if self.api_key else None}, "
                f"plan={self.plan!r}, calls_per_minute={self.calls_per_minute})")


def is_listening(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
