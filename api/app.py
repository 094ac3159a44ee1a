"""The FastAPI application: health, offline docs and the versioned data routes."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from api import API_VERSION
from api.backend_types import BackendError, QueryBackend
from api.docs import add_docs
from api.models import GoldFreshness, Health, Page
from api.params import DEFAULT_LIMIT, MAX_LIMIT
from api.routes import data_router
from api.service import ApiConfig, GoldService, NoGold
from core.gold import Published

if TYPE_CHECKING:
    from core.settings import Settings

SPEC_VERSION = "1.1.0"
DESCRIPTION = f"""Read access to the Finks gold marts: portfolios, positions, prices, companies.

* Authenticate with the `x-api-key` header.
* Dates are `YYYY-MM-DD`. A date range is inclusive and may be of any length
  (default: the 30 days up to today, UTC); a start after the end is an empty range.
* Lists come in pages of `limit` rows (default {DEFAULT_LIMIT}, at most {MAX_LIMIT}).
  While more rows follow, `meta.next_cursor` is set and `links.next` (also sent
  as a `Link: <...>; rel="next"` header) is the next page: follow it until it is
  null. Cursors are opaque; pass them back unchanged.
* Every data response carries `meta.run_id`, the gold publication it was read
  from, an `ETag` (send it back as `If-None-Match` for a `304`) and
  `Cache-Control`. Responses are cached until gold is republished.
"""
_FRIENDLY = {
    "portfolio_id": "portfolio id must be 1-64 letters, digits, '_' or '-', starting with a letter or digit",
    "symbol": "symbol must be 1-20 characters of letters, digits, '.', '-' or '^' (e.g. AAPL, BRK-B, ^GSPC)",
    "cursor": "cursor must be the meta.next_cursor of a previous page",
}


def _validation_message(errors: list[dict[str, Any]]) -> str:
    parts = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        name = loc[-1] if len(loc) > 1 else (loc[0] if loc else "request")
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") == "string_pattern_mismatch" and name in _FRIENDLY:
            msg = f"{_FRIENDLY[name]}, got {err.get('input')!r}"
        elif err.get("type") == "extra_forbidden":
            msg = f"unknown parameter (input {err.get('input')!r})"
        parts.append(f"{'.'.join(loc)}: {msg}")
    return "; ".join(parts)


def create_app(
    settings: Settings | None = None,
    backend: QueryBackend | None = None,
    config: ApiConfig | None = None,
) -> FastAPI:
    if settings is None:
        from core.settings import load_settings

        settings = load_settings()
    service = GoldService(settings, backend, config)
    app = FastAPI(
        title="Finks read API",
        version=SPEC_VERSION,
        description=DESCRIPTION,
        openapi_tags=[
            {"name": "health", "description": "Liveness and gold freshness (no key needed)"},
            {"name": "portfolios", "description": "Portfolio summaries and positions"},
            {"name": "market", "description": "Prices and companies"},
        ],
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    add_docs(app)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {k: v for k, v in e.items() if k in ("type", "loc", "msg", "input")}
            for e in exc.errors()
        ]
        return JSONResponse(
            {"error": _validation_message(errors), "detail": errors}, status_code=422
        )

    @app.exception_handler(NoGold)
    async def _no_gold(request: Request, exc: NoGold) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "60"})

    @app.exception_handler(BackendError)
    async def _backend(request: Request, exc: BackendError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    def respond(
        request: Request, key: Hashable, build: Callable[[Published], BaseModel]
    ) -> Response:
        def render(published: Published) -> tuple[bytes, str | None]:
            model = build(published)
            following = model.links.next if isinstance(model, Page) else None
            link = f'<{following}>; rel="next"' if following else None
            return model.model_dump_json().encode(), link

        # The links in a body carry the root path (an API Gateway stage, say).
        entry, hit = service.cached((request.scope.get("root_path", ""), key), render)
        headers = {
            "ETag": entry.etag,
            "Cache-Control": f"private, max-age={service.config.client_max_age}",
            "Vary": "x-api-key",
            "X-Cache": "hit" if hit else "miss",
            "X-Gold-Run-Id": entry.run_id,
        }
        if entry.link:
            headers["Link"] = entry.link
        tags = {t.strip() for t in request.headers.get("if-none-match", "").split(",")}
        if entry.etag in tags or "*" in tags:
            return Response(status_code=304, headers=headers)
        return Response(entry.body, media_type="application/json", headers=headers)

    @app.get(
        f"/{API_VERSION}/health",
        tags=["health"],
        response_model=Health,
        responses={503: {"model": Health, "description": "Gold not published or unreadable"}},
    )
    def health() -> JSONResponse:
        """Liveness plus the freshness of the gold publication the API serves."""
        detail: str | None = None
        gold: GoldFreshness | None = None
        status: Literal["ok", "stale", "unpublished", "error"] = "unpublished"
        try:
            gold = service.freshness()
        except Exception as exc:  # noqa: BLE001 - health must report a broken publication, not fail
            status, detail = "error", str(exc)
        if gold is not None:
            status = "stale" if gold.stale else "ok"
        elif status == "unpublished":
            detail = f"no _published.json under {service.gold_uri}; run the pipeline first (finks run s16)"
        body = Health(
            status=status,
            version=SPEC_VERSION,
            backend=service.backend_name,
            gold_uri=service.gold_uri,
            gold=gold,
            cache=service.cache.stats(),
            detail=detail,
        )
        code = 200 if status in ("ok", "stale") else 503
        return JSONResponse(
            body.model_dump(mode="json"), status_code=code, headers={"Cache-Control": "no-store"}
        )

    app.include_router(data_router(settings, service, respond))
    return app
