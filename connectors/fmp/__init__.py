"""Financial Modeling Prep connector: async client, rate limiter, bronze writer, simulator.

Imports are lazy so that ``finks --help`` can import the CLI without httpx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.fmp.ingest import IngestResult, run_ingest

__all__ = ["IngestResult", "run_ingest"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from connectors.fmp import ingest

        return getattr(ingest, name)
    raise AttributeError(name)
