"""Every ``--json`` document: one JSON object on stdout, carrying its kind and schema version.

The schema is named ``finks.<kind>/v<N>`` everywhere (``finks.status/v2``,
``finks.dev-status/v1``, ``finks.ingest/v1``); a consumer checks the name
before it reads the rest.
"""

from __future__ import annotations

import json
from typing import Any


def schema(kind: str, version: int = 1) -> str:
    return f"finks.{kind}/v{version}"


def document(kind: str, payload: dict[str, Any], version: int = 1) -> str:
    """The JSON text of one document; ``payload`` keys follow ``schema``."""
    return json.dumps({"schema": schema(kind, version), **payload}, indent=2, default=str)
