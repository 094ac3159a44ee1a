"""AWS Lambda entry point: the same FastAPI app behind API Gateway, via Mangum.

The app is built on the first invocation (not at import) so that a bad
configuration shows up in the invocation's error, and warm invocations reuse
the app, its Athena client and its response cache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.settings import Settings

_handler: Any = None


def build_handler(settings: Settings | None = None) -> Any:
    from mangum import Mangum

    from api.app import create_app

    # lifespan "off": the app has no startup work and Lambda has no shutdown hook.
    return Mangum(create_app(settings), lifespan="off")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _handler
    if _handler is None:
        _handler = build_handler()
    result: dict[str, Any] = _handler(event, context)
    return result
