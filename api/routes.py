"""The versioned data routes (``/v1/...``, behind the API key), every list paged.

Date-ordered lists (summary, prices) page by keyset: the cursor is the last
date served, so a republished gold never shifts a page. Short lists
(portfolios, one day's positions) page by offset. Each page is fetched with
one row more than ``limit`` to learn whether another follows.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from api import API_VERSION, queries
from api.models import (
    Company,
    CompanyResponse,
    ErrorBody,
    Links,
    Meta,
    PageMeta,
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
from api.params import (
    PORTFOLIO_PATTERN,
    SYMBOL_PATTERN,
    DayQuery,
    PageQuery,
    RangeQuery,
    encode_cursor,
)
from api.security import key_checker
from core.gold import Published

if TYPE_CHECKING:
    from api.service import GoldService
    from core.settings import Settings

Responder = Callable[[Request, Hashable, Callable[[Published], BaseModel]], Response]
Item = TypeVar("Item", bound=BaseModel)

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
ERRORS: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: `If-None-Match` matched the current `ETag`"},
    401: {"model": ErrorBody, "description": "Missing or invalid API key"},
    422: {"model": ValidationErrorBody, "description": "Invalid parameters"},
    503: {"model": ErrorBody, "description": "Gold not published yet, or not readable"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "Unknown portfolio or symbol"}
}
_ETAG = {
    "description": "Version of the body; send it as If-None-Match",
    "schema": {"type": "string"},
}
_LINK = {
    "description": 'The next page, `<path?query>; rel="next"`; absent on the last page',
    "schema": {"type": "string"},
}
ONE: dict[int | str, dict[str, Any]] = {200: {"description": "OK", "headers": {"ETag": _ETAG}}}
PAGED: dict[int | str, dict[str, Any]] = {
    200: {"description": "One page", "headers": {"ETag": _ETAG, "Link": _LINK}}
}


def _meta(published: Published, count: int) -> Meta:
    return Meta(run_id=published.run_id, published_at=published.published_at, count=count)


def _page(
    request: Request,
    published: Published,
    rows: Sequence[dict[str, Any]],
    limit: int,
    *,
    make: Callable[..., Item],
    position: Callable[[list[Item]], int],
    path: str,
    **params: Any,
) -> dict[str, Any]:
    """``data``, ``meta`` and ``links`` of a page; ``rows`` holds up to ``limit`` + 1.

    ``position`` gives the cursor of the page after ``data``; the next link
    repeats ``params`` as resolved here (a default ``end`` of today stays the
    same day while a client walks the pages).
    """
    data = [make(**r) for r in rows[:limit]]
    cursor = encode_cursor(position(data)) if len(rows) > limit else None
    following = None
    if cursor is not None:
        query = urlencode(
            {**{k: str(v) for k, v in params.items()}, "limit": limit, "cursor": cursor}
        )
        following = f"{request.scope.get('root_path', '')}/{API_VERSION}{path}?{query}"
    meta = PageMeta(
        run_id=published.run_id,
        published_at=published.published_at,
        count=len(data),
        limit=limit,
        next_cursor=cursor,
    )
    return {"data": data, "meta": meta, "links": Links(next=following)}


def _last_date(items: list[Any]) -> int:
    day: date = items[-1].date
    return day.toordinal()


def data_router(settings: Settings, service: GoldService, respond: Responder) -> APIRouter:
    v1 = APIRouter(
        prefix=f"/{API_VERSION}", dependencies=[Depends(key_checker(settings))], responses=ERRORS
    )

    @v1.get("/portfolios", tags=["portfolios"], response_model=PortfolioList, responses=PAGED)
    def list_portfolios(request: Request, page: Annotated[PageQuery, Query()]) -> Response:
        """Every portfolio in gold with its date coverage and latest market value."""
        limit, offset = page.limit, page.offset

        def build(published: Published) -> BaseModel:
            rows = service.rows(queries.portfolios(limit + 1, offset), published)
            return PortfolioList(
                **_page(
                    request,
                    published,
                    rows,
                    limit,
                    make=PortfolioInfo,
                    position=lambda items: offset + len(items),
                    path="/portfolios",
                )
            )

        return respond(request, ("portfolios", limit, offset), build)

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
        responses={**PAGED, **NOT_FOUND},
    )
    def portfolio_summary(
        request: Request, portfolio_id: PortfolioId, q: Annotated[RangeQuery, Query()]
    ) -> Response:
        """Daily market value, cost basis, P&L and day change of a portfolio, by date."""
        (start, end), first = q.bounds, q.resume()

        def build(published: Published) -> BaseModel:
            rows = []
            if first is not None:
                query = queries.portfolio_summary(portfolio_id, first, end, q.limit + 1)
                rows = service.rows(query, published)
            if not rows:
                require_portfolio(portfolio_id, published)
            return PortfolioSummary(
                portfolio_id=portfolio_id,
                start=start,
                end=end,
                **_page(
                    request,
                    published,
                    rows,
                    q.limit,
                    make=SummaryRow,
                    position=_last_date,
                    path=f"/portfolios/{portfolio_id}/summary",
                    start=start,
                    end=end,
                ),
            )

        return respond(request, ("summary", portfolio_id, start, end, q.limit, first), build)

    @v1.get(
        "/portfolios/{portfolio_id}/positions",
        tags=["portfolios"],
        response_model=PortfolioPositions,
        responses={**PAGED, **NOT_FOUND},
    )
    def portfolio_positions(
        request: Request, portfolio_id: PortfolioId, q: Annotated[DayQuery, Query()]
    ) -> Response:
        """Holdings of a portfolio on one date (default: its latest date), largest first."""
        offset = q.offset

        def build(published: Published) -> BaseModel:
            day = q.date
            if day is None:
                latest = service.rows(queries.latest_position_date(portfolio_id), published)
                day = latest[0]["last_date"] if latest else None
                if day is None:
                    require_portfolio(portfolio_id, published)
                    raise HTTPException(404, f"portfolio {portfolio_id!r} has no positions in gold")
            query = queries.positions(portfolio_id, day, q.limit + 1, offset)
            rows = service.rows(query, published)
            if not rows:
                require_portfolio(portfolio_id, published)
            return PortfolioPositions(
                portfolio_id=portfolio_id,
                date=day,
                **_page(
                    request,
                    published,
                    rows,
                    q.limit,
                    make=Position,
                    position=lambda items: offset + len(items),
                    path=f"/portfolios/{portfolio_id}/positions",
                    date=day,
                ),
            )

        key = ("positions", portfolio_id, str(q.date or "latest"), q.limit, offset)
        return respond(request, key, build)

    @v1.get(
        "/prices/{symbol}",
        tags=["market"],
        response_model=PriceHistory,
        responses={**PAGED, **NOT_FOUND},
    )
    def prices(request: Request, symbol: Symbol, q: Annotated[RangeQuery, Query()]) -> Response:
        """Daily OHLCV bars of a symbol, by date."""
        symbol, (start, end), first = symbol.upper(), q.bounds, q.resume()

        def build(published: Published) -> BaseModel:
            rows = []
            if first is not None:
                rows = service.rows(queries.prices(symbol, first, end, q.limit + 1), published)
            if not rows:
                known = service.rows(queries.symbol_days(symbol), published)
                if not known or not known[0]["n"]:
                    raise HTTPException(404, f"symbol {symbol!r} has no prices in gold")
            return PriceHistory(
                symbol=symbol,
                start=start,
                end=end,
                **_page(
                    request,
                    published,
                    rows,
                    q.limit,
                    make=PriceBar,
                    position=_last_date,
                    path=f"/prices/{quote(symbol, safe='')}",
                    start=start,
                    end=end,
                ),
            )

        return respond(request, ("prices", symbol, start, end, q.limit, first), build)

    @v1.get(
        "/companies/{symbol}",
        tags=["market"],
        response_model=CompanyResponse,
        responses={**ONE, **NOT_FOUND},
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

    return v1
