"""The local stack: Prefect server, moto server, optional worker, as background processes.

Public API: ``up``, ``down``, ``status``, ``reset``, ``logs``, ``StackStatus``,
``bootstrap_data_plane``, ``describe_data_plane``. Attributes load lazily so that importing
``finks.devstack.cli`` stays cheap.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "up": "finks.devstack.stack",
    "down": "finks.devstack.stack",
    "status": "finks.devstack.stack",
    "reset": "finks.devstack.stack",
    "logs": "finks.devstack.stack",
    "StackStatus": "finks.devstack.stack",
    "ServiceStatus": "finks.devstack.stack",
    "bootstrap_data_plane": "finks.devstack.bootstrap",
    "describe_data_plane": "finks.devstack.bootstrap",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'finks.devstack' has no attribute {name!r}")
