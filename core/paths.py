"""Where things are, without importing anything heavy (used by `finks status`)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def repo_root() -> Path:
    """The repository root (FINKS_ROOT overrides, e.g. for an installed copy)."""
    return Path(os.environ.get("FINKS_ROOT", REPO_ROOT)).resolve()


def state_dir() -> Path:
    """Where finks keeps state, logs and the local lake (FINKS_STATE_DIR overrides)."""
    return Path(os.environ.get("FINKS_STATE_DIR") or repo_root() / ".finks")
