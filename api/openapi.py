"""The OpenAPI document: generated from the app, exported to docs/api/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SPEC_PATH = Path("docs") / "api" / "openapi.json"


def spec() -> dict[str, Any]:
    """The spec of the app; independent of environment and of any gold data."""
    from api.app import create_app
    from core.settings import load_settings

    # A key is set so the spec shows the authenticated API the way it is deployed.
    return create_app(load_settings(env="local", api_key="spec-only")).openapi()


def render(document: dict[str, Any] | None = None) -> str:
    return json.dumps(document if document is not None else spec(), indent=2, sort_keys=True) + "\n"


def export(root: Path, path: Path | None = None) -> Path:
    """Write the spec to ``path`` (default docs/api/openapi.json under root)."""
    target = path if path is not None else root / SPEC_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render())
    return target


def is_current(root: Path, path: Path | None = None) -> bool:
    target = path if path is not None else root / SPEC_PATH
    return target.is_file() and target.read_text() == render()
