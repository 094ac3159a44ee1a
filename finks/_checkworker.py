"""Child-process entry point that runs one Python check and prints its result.

Usage: python -m finks._checkworker module:function
       python -m finks._checkworker --plan module:function ARGS_JSON [STACK]

The context arrives in FINKS_CHECK_CONTEXT; the result is printed as one JSON
line after a marker so that whatever the check itself prints cannot be
mistaken for it.

With ``--plan`` the function is a criterion over the dry plan: the worker
builds the plan of STACK (default: the stack the environment plans) under
Pulumi's mocks and calls ``function(plan, *args)``, which returns
``(message, figures)`` or raises ``infra.criteria.NotMet`` (or LookupError:
the plan lacks what it looks for), both meaning failed.
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


def _resolve(target: str) -> Any:
    """The callable a target names, or None after emitting why it cannot run."""
    module_name, _, func_name = target.partition(":")
    if not func_name:
        _emit(Outcome.error, Evidence(f"check target {target!r} is not 'module:function'"))
        return None
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            _emit(Outcome.error, Evidence(f"not implemented: module {module_name!r} does not exist"))
        else:
            _emit(Outcome.error, Evidence(f"cannot import {module_name}: {exc}", excerpt=traceback.format_exc()))
        return None
    except Exception as exc:  # noqa: BLE001 - any import failure means the check could not run
        _emit(Outcome.error, Evidence(f"cannot import {module_name}: {exc}", excerpt=traceback.format_exc()))
        return None
    func = getattr(module, func_name, None)
    if not callable(func):
        _emit(Outcome.error, Evidence(f"not implemented: {module_name} has no function {func_name!r}"))
        return None
    return func


def _unexpected(exc: Exception) -> None:
    _emit(Outcome.error, Evidence(f"{type(exc).__name__}: {exc}", excerpt=traceback.format_exc()[-2000:]))


def main(target: str) -> int:
    func = _resolve(target)
    if func is None:
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
        _unexpected(exc)
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


def main_plan(target: str, args: list[Any], stack: str) -> int:
    """A plan check: the dry plan of the stack, then the criterion over it."""
    func = _resolve(target)
    if func is None:
        return 0
    ctx = CheckContext.from_json(os.environ["FINKS_CHECK_CONTEXT"])
    try:
        from core.environments import infra_stack
        from infra.criteria import NotMet
        from infra.plan import plan

        stack = stack or infra_stack(ctx.env)
        dry = plan(stack, ctx.settings)
    except Exception as exc:  # noqa: BLE001 - no plan: the check could not run
        _emit(Outcome.error, Evidence(f"cannot build the dry plan: {type(exc).__name__}: {exc}",
                                      excerpt=traceback.format_exc()[-2000:]))
        return 0
    label = f"planned (Pulumi mocks), stack {stack}"
    try:
        result = func(dry, *args)
    except NotMet as exc:
        _emit(Outcome.failed, Evidence(f"{label}: {exc}", {"stack": stack, **exc.figures}))
        return 0
    except LookupError as exc:
        _emit(Outcome.failed, Evidence(f"{label}: {exc}", {"stack": stack}))
        return 0
    except CheckFailed as exc:
        exc.evidence.message = f"{label}: {exc.evidence.message}"
        _emit(Outcome.failed, exc.evidence)
        return 0
    except Exception as exc:  # noqa: BLE001 - an unexpected exception is "could not run"
        _unexpected(exc)
        return 0
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict):
        message, figures = result
    elif isinstance(result, str):
        message, figures = result, {}
    else:
        _emit(Outcome.error, Evidence(f"criterion returned {type(result).__name__}, expected (message, figures): "
                                      "a check must say what it verified"))
        return 0
    _emit(Outcome.passed, Evidence(f"{label}: {message}", {"stack": stack, **figures}))
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "--plan":
        sys.exit(main_plan(sys.argv[2], json.loads(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else ""))
    sys.exit(main(sys.argv[1]))
