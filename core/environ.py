"""The process environment, changed for a block and put back afterwards.

For the few places where a tool reads its configuration only from the
environment (dbt's ``env_var()``, Prefect's settings): everything of ours
takes a Settings object instead.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping


@contextlib.contextmanager
def scoped(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or, for None, unset) the variables for the block; restore them after."""
    saved = {key: os.environ.get(key) for key in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
