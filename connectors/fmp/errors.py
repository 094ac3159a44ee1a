"""Errors of the FMP connector, and the redaction that keeps the key out of them.

    ServiceError (core.errors, exit 1)
    └── FmpError                   one call failed; message never holds the key
        ├── FmpAuthError           401 / invalid key: stops the run, never retried
        ├── FmpPlanError           402/403: the plan does not cover the endpoint
        ├── FmpQuotaExhausted      daily cap or bandwidth used up: stops the run
        ├── FmpRateLimited         429 after every retry
        ├── FmpTransientError      5xx, timeout, connection error, malformed JSON after retries
        └── FmpApiError            any other ``Error Message`` body or 4xx
"""

from __future__ import annotations

import re
from typing import Any

from core.errors import ServiceError

_APIKEY_PARAM = re.compile(r"(apikey=)[^&\s\"']+", re.IGNORECASE)


def redact(text: str, secret: str | None = None) -> str:
    """Remove an API key from text: the literal value and any ``apikey=`` parameter."""
    if secret:
        text = text.replace(secret, "***")
    return _APIKEY_PARAM.sub(r"\1***", text)


class FmpError(ServiceError):
    """A call to FMP that did not give data. ``endpoint`` is the path, never the URL."""

    retryable = False
    stops_run = False

    def __init__(self, message: str, *, endpoint: str = "", status: int | None = None,
                 hint: str | None = None) -> None:
        super().__init__(redact(message), hint=hint)
        self.endpoint = endpoint
        self.status = status
        self.result: Any = None  # the partial IngestResult when the error stops a run


class FmpAuthError(FmpError):
    stops_run = True


class FmpPlanError(FmpError):
    pass


class FmpQuotaExhausted(FmpError):
    stops_run = True


class FmpRateLimited(FmpError):
    retryable = True


class FmpTransientError(FmpError):
    retryable = True


class FmpApiError(FmpError):
    pass
