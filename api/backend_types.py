"""What every query backend shares: the row type, the error and the protocol.

Both backends (:mod:`api.backends` for DuckDB, :mod:`api.athena`) and the
service that picks one import from here, so no backend imports another.
"""

from __future__ import annotations

from typing import Any, Protocol

from api.queries import Query
from core.errors import ServiceError

Row = dict[str, Any]


class BackendError(ServiceError):
    """The gold marts could not be queried (missing mart, bad schema, engine error)."""


class QueryBackend(Protocol):
    name: str

    def run(self, query: Query, run_id: str) -> list[Row]:
        """Rows of ``query`` against the publication ``run_id``."""
        ...
