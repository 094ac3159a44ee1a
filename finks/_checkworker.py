"""Child-process entry point that runs one Python check and prints its result.

Usage: python -m finks._checkworker module:function
The context arrives in FINKS_CHECK_CONTEXT; the result is printed as one JSON
line after a marker so that whatever the check itself prints cannot be
mistaken for it.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from typing import Any

from finks.checks import WORKER_MARKER, CheckContext, CheckFailed, CheckSkipped, Evidence, Outcome


def _emit(outcome: Outcome, evidence: Evidence) -> None:
    payload: dict[str, Any] = {
        "outcome": outcome,
        "message": evidence.message,
        "figures": evidence.figures,
        "excerpt": evidence.excerpt,
    }
    sys.stdout.write(WORKER_MARKER + json.dumps(payload, default=str) + "\n")
    sys.stdout.flush()


def main(target: str) -> int:
    module_name, _, func_name = target.partition(":")
    if not func_name:
        _emit(Outcome.error, Evidence(f"check target {target!r} is not 'module:function'"))
        return 0
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            _emit(Outcome.error, Evidence(f"not implemented: module {module_name!r} does not exist"))
        else:
            _emit(Outcome.error, Evidence(f"cannot import {module_name}: {exc}", excerpt=traceback.format_exc()))
        return 0
    except Exception as exc:  # noqa: BLE001 - any import failure means the check could not run
        _emit(Outcome.error, Evidence(f"cannot import {module_name}: {exc}", excerpt=traceback.format_exc()))
        return 0
    func = getattr(module, func_name, None)
    if not callable(func):
        _emit(Outcome.error, Evidence(f"not implemented: {module_name} has no function {func_name!r}"))
        return 0
    ctx = CheckContext.from_json(os.environ["FINKS_CHECK_CONTEXT"])
    try:
        result = func(ctx)
    except CheckFailed as exc:
        _emit(Outcome.failed, exc.evidence)
        return 0
    except CheckSkipped as exc:
        _emit(Outcome.skipped, Evidence(str(exc)))
        return 0
    except Exception as exc:  # noqa: BLE001 - an unexpected exception is "could not run"
        _emit(Outcome.error, Evidence(f"{type(exc).__name__}: {exc}", excerpt=traceback.format_exc()[-2000:]))
        return 0
    if isinstance(result, Evidence):
        evidence = result
    elif isinstance(result, str):
        evidence = Evidence(result)
    else:
        _emit(Outcome.error, Evidence(f"check returned {type(result).__name__}, expected Evidence: "
                                "a check must say what it verified"))
        return 0
    _emit(Outcome.passed, evidence)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
