"""AWS Lambda entry point: the same FastAPI app behind API Gateway, via Mangum.

The app is built on the first invocation (not at import) so that a bad
configuration shows up in the invocation's error, and warm invocations reuse
the app, its Athena client and its response cache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from core.settings import Settings

_handler: Any = None


class PublicPrefix:
    """Restore the part of the public URL that API Gateway strips before the app.

    A REST API event names the route (``path``: /v1/prices/AAPL) without the
    stage or the custom domain's base path that the client used
    (``requestContext.path``: /prod/v1/prices/AAPL). That prefix becomes the
    ASGI root path, so that the docs pages and the next-page links the app
    writes lead back through it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        event = scope.get("aws.event") or {}
        route = event.get("path") or ""
        public = (event.get("requestContext") or {}).get("path") or ""
        if scope.get("type") == "http" and route and public.endswith(route):
            prefix = public[: len(public) - len(route)].rstrip("/")
            if prefix and not scope.get("root_path"):
                scope = {**scope, "root_path": prefix}
        await self.app(scope, receive, send)


def build_handler(settings: Settings | None = None) -> Any:
    from mangum import Mangum

    from api.app import create_app

    # lifespan "off": the app has no startup work and Lambda has no shutdown hook.
    return Mangum(PublicPrefix(create_app(settings)), lifespan="off")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _handler
    if _handler is None:
        _handler = build_handler()
    result: dict[str, Any] = _handler(event, context)
    return result
