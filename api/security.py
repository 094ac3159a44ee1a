"""API key authentication and the rule that an open API stays on loopback."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING

from core.errors import ConfigError

if TYPE_CHECKING:
    from core.settings import Settings

API_KEY_HEADER = "x-api-key"


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def configured_key(settings: Settings) -> str | None:
    """The API key, or None when unset or blank (FINKS_API_KEY= counts as unset)."""
    if settings.api_key is None:
        return None
    key = settings.api_key.get_secret_value().strip()
    return key or None


def check_bind(host: str, settings: Settings) -> None:
    """Refuse to expose an API without a key beyond this machine."""
    if configured_key(settings) is None and not is_loopback(host):
        raise ConfigError(
            f"refusing to serve the API on {host} without an API key: anyone who can reach it could read gold",
            hint="set FINKS_API_KEY, or bind to 127.0.0.1 (--host 127.0.0.1)",
        )


def key_checker(settings: Settings) -> Callable[..., None]:
    """A FastAPI dependency enforcing ``x-api-key`` when settings.api_key is set.

    Without a key (local development on loopback, or behind API Gateway, which
    checks its own usage-plan keys) every request is let through.
    """
    from fastapi import HTTPException, Security
    from fastapi.security import APIKeyHeader

    scheme = APIKeyHeader(
        name=API_KEY_HEADER,
        auto_error=False,
        description="The API key (FINKS_API_KEY locally, the API Gateway key in AWS)",
    )
    key_value = configured_key(settings)
    expected = key_value.encode() if key_value else None

    def require_key(key: str | None = Security(scheme)) -> None:
        if expected is None:
            return
        if not key:
            raise HTTPException(
                401,
                f"missing API key: send it in the {API_KEY_HEADER} header",
                headers={"WWW-Authenticate": API_KEY_HEADER},
            )
        if not hmac.compare_digest(key.encode(), expected):
            raise HTTPException(
                401,
                f"invalid API key in the {API_KEY_HEADER} header",
                headers={"WWW-Authenticate": API_KEY_HEADER},
            )

    return require_key
