"""The FastAPI application: versioned read endpoints over the gold marts."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from api import API_VERSION, queries
from api.backends import BackendError, QueryBackend
from api.models import (
    PORTFOLIO_PATTERN,
    SYMBOL_PATTERN,
    Company,
    CompanyResponse,
    DateRange,
    ErrorBody,
    GoldFreshness,
    Health,
    Meta,
    OnDate,
    PortfolioInfo,
    PortfolioList,
    PortfolioPositions,
    PortfolioSummary,
    Position,
    PriceBar,
    PriceHistory,
    SummaryRow,
    ValidationErrorBody,
)
from api.security import key_checker
from api.service import ApiConfig, GoldService, NoGold
from core.gold import Published

if TYPE_CHECKING:
    from core.settings import Settings

SPEC_VERSION = "1.0.0"
DESCRIPTION = """Read access to the Finks gold marts: portfolios, positions, prices, companies.

* Authenticate with the `x-api-key` header.
* Dates are `YYYY-MM-DD`; a date range is inclusive and at most 366 days.
* Every data response carries `meta.run_id`, the gold publication it was read
  from, an `ETag` (send it back as `If-None-Match` for a `304`) and
  `Cache-Control`. Responses are cached until gold is republished.
"""

PortfolioId = Annotated[
    str,
    Path(
        pattern=PORTFOLIO_PATTERN,
        description="Portfolio id (letters, digits, '_', '-')",
        examples=["growth"],
    ),
]
Symbol = Annotated[
    str,
    Path(
        pattern=SYMBOL_PATTERN,
        description="Ticker symbol, case-insensitive (e.g. AAPL, BRK-B)",
        examples=["AAPL"],
    ),
]
_FRIENDLY = {
    "portfolio_id": "portfolio id must be 1-64 letters, digits, '_' or '-', starting with a letter or digit",
    "symbol": "symbol must be 1-20 characters of letters, digits, '.', '-' or '^' (e.g. AAPL, BRK-B, ^GSPC)",
}
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or invalid API key"},
    422: {"model": ValidationErrorBody, "description": "Invalid parameters"},
    503: {"model": ErrorBody, "description": "Gold not published yet, or not readable"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "Unknown portfolio or symbol"}
}


def _meta(published: Published, count: int) -> Meta:
    return Meta(run_id=published.run_id, published_at=published.published_at, count=count)


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
    )
    app.state.service = service

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
        entry, hit = service.cached(
            key, lambda published: build(published).model_dump_json().encode()
        )
        headers = {
            "ETag": entry.etag,
            "Cache-Control": f"private, max-age={service.config.client_max_age}",
            "Vary": "x-api-key",
            "X-Cache": "hit" if hit else "miss",
            "X-Gold-Run-Id": entry.run_id,
        }
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

    v1 = APIRouter(
        prefix=f"/{API_VERSION}", dependencies=[Depends(key_checker(settings))], responses=ERRORS
    )

    @v1.get("/portfolios", tags=["portfolios"], response_model=PortfolioList)
    def list_portfolios(request: Request) -> Response:
        """Every portfolio in gold with its date coverage and latest market value."""

        def build(published: Published) -> BaseModel:
            rows = service.rows(queries.portfolios(), published)
            return PortfolioList(
                data=[PortfolioInfo(**r) for r in rows], meta=_meta(published, len(rows))
            )

        return respond(request, ("portfolios",), build)

    def require_portfolio(portfolio_id: str, published: Published) -> dict[str, Any]:
        found = service.rows(queries.portfolio_days(portfolio_id), published)
        if not found or not found[0]["n"]:
            raise HTTPException(
                404,
                f"portfolio {portfolio_id!r} not found; GET /{API_VERSION}/portfolios lists them",
            )
        return found[0]

    @v1.get(
        "/portfolios/{portfolio_id}/summary",
        tags=["portfolios"],
        response_model=PortfolioSummary,
        responses=NOT_FOUND,
    )
    def portfolio_summary(
        request: Request, portfolio_id: PortfolioId, dates: Annotated[DateRange, Query()]
    ) -> Response:
        """Daily market value, cost basis, P&L and day change of a portfolio."""
        start, end = dates.bounds

        def build(published: Published) -> BaseModel:
            rows = service.rows(queries.portfolio_summary(portfolio_id, start, end), published)
            if not rows:
                require_portfolio(portfolio_id, published)
            return PortfolioSummary(
                portfolio_id=portfolio_id,
                start=start,
                end=end,
                data=[SummaryRow(**r) for r in rows],
                meta=_meta(published, len(rows)),
            )

        return respond(
            request, queries.portfolio_summary(portfolio_id, start, end).cache_key, build
        )

    @v1.get(
        "/portfolios/{portfolio_id}/positions",
        tags=["portfolios"],
        response_model=PortfolioPositions,
        responses=NOT_FOUND,
    )
    def portfolio_positions(
        request: Request, portfolio_id: PortfolioId, on: Annotated[OnDate, Query()]
    ) -> Response:
        """Holdings of a portfolio on one date (default: its latest date), largest first."""

        def build(published: Published) -> BaseModel:
            day = on.date
            if day is None:
                latest = service.rows(queries.latest_position_date(portfolio_id), published)
                day = latest[0]["last_date"] if latest else None
                if day is None:
                    require_portfolio(portfolio_id, published)
                    raise HTTPException(404, f"portfolio {portfolio_id!r} has no positions in gold")
            rows = service.rows(queries.positions(portfolio_id, day), published)
            if not rows:
                require_portfolio(portfolio_id, published)
            return PortfolioPositions(
                portfolio_id=portfolio_id,
                date=day,
                data=[Position(**r) for r in rows],
                meta=_meta(published, len(rows)),
            )

        return respond(request, ("positions", portfolio_id, str(on.date or "latest")), build)

    @v1.get("/prices/{symbol}", tags=["market"], response_model=PriceHistory, responses=NOT_FOUND)
    def prices(request: Request, symbol: Symbol, dates: Annotated[DateRange, Query()]) -> Response:
        """Daily OHLCV bars of a symbol."""
        symbol, (start, end) = symbol.upper(), dates.bounds

        def build(published: Published) -> BaseModel:
            rows = service.rows(queries.prices(symbol, start, end), published)
            if not rows:
                known = service.rows(queries.symbol_days(symbol), published)
                if not known or not known[0]["n"]:
                    raise HTTPException(404, f"symbol {symbol!r} has no prices in gold")
            return PriceHistory(
                symbol=symbol,
                start=start,
                end=end,
                data=[PriceBar(**r) for r in rows],
                meta=_meta(published, len(rows)),
            )

        return respond(request, queries.prices(symbol, start, end).cache_key, build)

    @v1.get(
        "/companies/{symbol}", tags=["market"], response_model=CompanyResponse, responses=NOT_FOUND
    )
    def company(request: Request, symbol: Symbol) -> Response:
        """Company profile of a symbol."""
        symbol = symbol.upper()

        def build(published: Published) -> BaseModel:
            rows = service.rows(queries.company(symbol), published)
            if not rows:
                raise HTTPException(404, f"company {symbol!r} not found in gold")
            return CompanyResponse(data=Company(**rows[0]), meta=_meta(published, 1))

        return respond(request, queries.company(symbol).cache_key, build)

    app.include_router(v1)
    return app
