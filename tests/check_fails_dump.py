"""A pytest plugin for the coverage meta-test: writes every `check_fails` target it collects.

Loaded only by tests/test_check_coverage.py (`-p tests.check_fails_dump`), with
FINKS_CHECK_FAILS_OUT naming the JSON file to write.
"""

from __future__ import annotations

import json
import os
from typing import Any


def pytest_collection_modifyitems(session: Any, config: Any, items: list[Any]) -> None:
    out = os.environ.get("FINKS_CHECK_FAILS_OUT")
    if not out:
        return
    found: dict[str, list[str]] = {}
    for item in items:
        for mark in item.iter_markers("check_fails"):
            for target in mark.args:
                found.setdefault(str(target), []).append(item.nodeid)
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(found, handle, indent=1, sort_keys=True)
