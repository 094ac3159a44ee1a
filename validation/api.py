"""S19 checks: the read API over gold (endpoints, cache, OpenAPI).

Every check talks to the app over real HTTP (uvicorn on a free loopback port).
"""

from __future__ import annotations

import secrets
import time
from datetime import date, timedelta
from typing import Any

from core import lake
from finks.checks import CheckContext, CheckFailed, Evidence

PAGED = (
    "/v1/portfolios",
    "/v1/portfolios/{portfolio_id}/summary",
    "/v1/portfolios/{portfolio_id}/positions",
    "/v1/prices/{symbol}",
)
ENDPOINTS = (
    "/v1/health",
    "/v1/portfolios",
    "/v1/portfolios/{portfolio_id}/summary",
    "/v1/portfolios/{portfolio_id}/positions",
    "/v1/prices/{symbol}",
    "/v1/companies/{symbol}",
)


class _Probe:
    """Collects request outcomes; a mismatch is remembered, not raised at once."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.problems: list[str] = []
        self.timings: list[float] = []

    def get(self, url: str, expect: int, key: str | None = None, **headers: str) -> Any:
        if key is not None:
            headers["x-api-key"] = key
        started = time.perf_counter()
        response = self.client.get(url, headers=headers)
        self.timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != expect:
            self.problems.append(
                f"GET {url}: expected {expect}, got {response.status_code} {response.text[:200]}"
            )
        return response

    def expect(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)


def _walk(probe: _Probe, url: str, key: str) -> tuple[list[Any], int]:
    """Every row of a paged list, following links.next; (rows, pages)."""
    rows: list[Any] = []
    pages = 0
    following: str | None = url
    while following and pages < 10_000:
        body = probe.get(following, 200, key).json()
        rows += body.get("data", [])
        pages += 1
        following = (body.get("links") or {}).get("next")
    probe.expect(not following, f"GET {url}: still a next page after {pages} pages")
    return rows, pages


def _count(sql: str, *params: Any) -> int:
    import duckdb

    with duckdb.connect() as con:
        return int(con.execute(sql, list(params)).fetchone()[0])  # type: ignore[index]


def _expect_values(probe: _Probe, pid: str, summary: list[Any], positions: list[Any], summary_file: str) -> None:
    """The served numbers are gold's, and agree across endpoints: the summary of the
    positions' date is the sum of those positions."""
    import duckdb

    with duckdb.connect() as con:
        gold = con.execute(
            f"SELECT CAST(CAST(\"date\" AS DATE) AS VARCHAR), market_value, position_count FROM read_parquet('{summary_file}') "
            "WHERE portfolio_id = ?", [pid]).fetchall()
    in_gold = {d: (float(v), int(n)) for d, v, n in gold}
    served = {r.get("date"): (r.get("market_value"), r.get("position_count")) for r in summary}
    wrong = [d for d, (v, n) in served.items()
             if d not in in_gold or v is None or abs(v - in_gold[d][0]) > 0.005 or n != in_gold[d][1]]
    probe.expect(not wrong, f"summary of {pid}: {len(wrong)} served row(s) differ from gold (e.g. {wrong[:1]})")
    if not positions:
        return
    on = positions[0]["date"]
    value, count = served.get(on, (None, None))
    total = sum(float(p.get("market_value") or 0) for p in positions)
    probe.expect(
        value is not None and abs(value - total) <= 0.01 * len(positions) and count == len(positions),
        f"summary of {pid} on {on}: market value {value} over {count} positions, "
        f"its {len(positions)} served positions sum to {total:.2f}",
    )


def endpoints_work(ctx: CheckContext) -> Evidence:
    import httpx

    from api.app import create_app
    from api.server import running_server
    from core.gold import mart_uri, published_uri, read_published
    from core.settings import load_settings

    base = ctx.settings
    published = read_published(base)
    if published is None:
        raise CheckFailed(
            f"no gold published at {published_uri(base)}: run 'finks run s16' first "
            "(the daily pipeline builds gold with dbt and publishes it when the tests pass)"
        )
    key = secrets.token_urlsafe(16)
    settings = load_settings(env=ctx.env, root=ctx.root, api_key=key)
    summary_file = mart_uri(settings, "daily_portfolio_summary")
    with (
        running_server(create_app(settings)) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        probe = _Probe(client)
        health = probe.get("/v1/health", 200).json()
        probe.expect(
            (health.get("gold") or {}).get("run_id") == published.run_id,
            f"health reports run {health.get('gold')}, _published.json says {published.run_id}",
        )
        probe.get("/v1/portfolios", 401)
        probe.get("/v1/portfolios", 401, key="not-the-key")
        portfolios = probe.get("/v1/portfolios", 200, key).json().get("data", [])
        if not portfolios:
            raise CheckFailed(
                "GET /v1/portfolios returned no portfolio; is daily_portfolio_summary empty?",
                excerpt="\n".join(probe.problems),
            )
        expected = _count(
            f"SELECT COUNT(DISTINCT portfolio_id) FROM read_parquet('{summary_file}')"
        )
        probe.expect(
            len(portfolios) == expected, f"{len(portfolios)} portfolios served, gold has {expected}"
        )

        pid = portfolios[0]["portfolio_id"]
        first = date.fromisoformat(portfolios[0]["first_date"])
        last = date.fromisoformat(portfolios[0]["last_date"])
        # The whole history, in pages: a long range is paged, never refused.
        summary_rows, pages = _walk(
            probe, f"/v1/portfolios/{pid}/summary?start={first}&end={last}&limit=1000", key
        )
        in_gold = _count(
            f"SELECT COUNT(*) FROM read_parquet('{summary_file}') WHERE portfolio_id = ? "
            'AND CAST("date" AS DATE) BETWEEN ? AND ?',
            pid,
            first,
            last,
        )
        probe.expect(
            len(summary_rows) == in_gold,
            f"summary of {pid}: {len(summary_rows)} rows served in {pages} page(s), gold has {in_gold}",
        )
        # Pages small enough that there are a few: the same rows, in order, once each.
        limit = max(1, -(-in_gold // 3))
        small, small_pages = _walk(
            probe, f"/v1/portfolios/{pid}/summary?start={first}&end={last}&limit={limit}", key
        )
        expected_pages = max(1, -(-in_gold // limit))
        probe.expect(
            small == summary_rows and small_pages == expected_pages,
            f"summary of {pid} by pages of {limit}: {len(small)} rows in {small_pages} pages, "
            f"expected {in_gold} rows in {expected_pages}",
        )
        positions, _ = _walk(probe, f"/v1/portfolios/{pid}/positions", key)
        probe.expect(bool(positions), f"no positions served for portfolio {pid}")
        _expect_values(probe, pid, summary_rows, positions, summary_file)
        symbol = positions[0]["symbol"] if positions else None
        price_rows = 0
        if symbol:
            on = positions[0]["date"]
            prices = probe.get(
                f"/v1/prices/{symbol}?start={date.fromisoformat(on) - timedelta(days=30)}&end={on}",
                200,
                key,
            ).json()
            price_rows = len(prices.get("data", []))
            probe.expect(price_rows > 0, f"no prices served for {symbol} up to {on}")
            probe.get(f"/v1/companies/{symbol}", 200, key)

        bad_date = probe.get(f"/v1/prices/{symbol or 'AAPL'}?start=2024-13-01", 422, key).json()
        probe.expect(
            "YYYY-MM-DD" in str(bad_date.get("error")), f"bad date error is unclear: {bad_date}"
        )
        too_big = probe.get("/v1/prices/AAPL?limit=100000", 422, key).json()
        probe.expect("1000" in str(too_big.get("error")), f"limit error is unclear: {too_big}")
        probe.get("/v1/prices/NOT!A!SYMBOL", 422, key)
        probe.get("/v1/portfolios/no-such-portfolio-xyz/positions", 404, key)

    figures = {
        "run_id": published.run_id,
        "requests": len(probe.timings),
        "portfolios": len(portfolios),
        "summary_rows": len(summary_rows),
        "summary_pages": small_pages,
        "positions": len(positions),
        "price_rows": price_rows,
        "median_ms": round(sorted(probe.timings)[len(probe.timings) // 2], 1),
    }
    if probe.problems:
        raise CheckFailed(
            f"{len(probe.problems)} API expectation(s) failed: {probe.problems[0]}",
            figures=figures,
            excerpt="\n".join(probe.problems),
        )
    return Evidence(
        f"{len(ENDPOINTS)} endpoints, paging (next links), validation (422) and API key auth "
        f"(401) verified over HTTP against gold run {published.run_id}",
        figures=figures,
    )


def _sample_settings(ctx: CheckContext, key: str, lake: Any) -> Any:
    from core.settings import load_settings

    return load_settings(
        env="local", root=ctx.root, lake_uri=str(lake), storage="local", api_key=key
    )


def cache_works(ctx: CheckContext) -> Evidence:
    """On a sample gold in the work dir, so that republishing it harms no real data."""
    import httpx

    from api import samplegold
    from api.app import create_app
    from api.server import running_server
    from api.service import ApiConfig

    key = secrets.token_urlsafe(16)
    settings = _sample_settings(ctx, key, ctx.work_dir / "lake")
    gold = lake.zone_uri(settings, "gold")
    samplegold.write(samplegold.build(run_id="cache-run-1"), gold)
    url_path = "/v1/prices/AAPL?start=2024-01-01&end=2024-01-31"
    figures: dict[str, Any] = {}
    with (
        running_server(create_app(settings)) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        probe = _Probe(client)
        first = probe.get(url_path, 200, key)
        second = probe.get(url_path, 200, key)
        figures.update(miss_ms=round(probe.timings[0], 1), hit_ms=round(probe.timings[1], 1))
        etag = first.headers.get("etag", "")
        probe.expect(
            first.headers.get("x-cache") == "miss" and second.headers.get("x-cache") == "hit",
            f"expected miss then hit, got {first.headers.get('x-cache')}, {second.headers.get('x-cache')}",
        )
        probe.expect(
            bool(etag) and second.headers.get("etag") == etag and first.content == second.content,
            "a cache hit changed the ETag or the body",
        )
        probe.expect(
            "max-age" in first.headers.get("cache-control", ""),
            f"Cache-Control lacks max-age: {first.headers.get('cache-control')!r}",
        )
        not_modified = probe.get(url_path, 304, key, **{"If-None-Match": etag})
        probe.expect(not_modified.content == b"", "a 304 carried a body")

        # New data under the same run_id: the cache must keep serving the publication it knows.
        changed = samplegold.build(run_id="cache-run-1", price_offset=100.0)
        (ctx.work_dir / "lake" / "gold" / "marts" / "fct_daily_prices.parquet").write_bytes(
            changed.files["marts/fct_daily_prices.parquet"]
        )
        same_run = probe.get(url_path, 200, key)
        probe.expect(
            same_run.headers.get("x-cache") == "hit" and same_run.content == first.content,
            "the cache did not serve the cached response while run_id was unchanged",
        )

        samplegold.write(samplegold.build(run_id="cache-run-2", price_offset=100.0), gold)
        republished = probe.get(url_path, 200, key, **{"If-None-Match": etag})
        body = republished.json() if republished.status_code == 200 else {}
        closes = [
            (a["close"], b["close"]) for a, b in zip(first.json()["data"], body.get("data", []))
        ]
        probe.expect(
            republished.headers.get("x-cache") == "miss",
            "a new run_id did not invalidate the cache",
        )
        probe.expect(
            body.get("meta", {}).get("run_id") == "cache-run-2"
            and bool(closes)
            and all(abs(b - a - 100.0) < 1e-9 for a, b in closes),
            "after republishing, the API did not serve the new gold",
        )
        probe.expect(
            republished.headers.get("etag") not in (None, etag),
            "the ETag did not change with the data",
        )
        stats = client.get("/v1/health").json().get("cache", {})
        figures.update(invalidations=stats.get("invalidations"), hits=stats.get("hits"))

    short = create_app(settings, config=ApiConfig(cache_ttl=0.3))
    with running_server(short) as url, httpx.Client(base_url=url, timeout=30) as client:
        ttl_probe = _Probe(client)
        states = [ttl_probe.get(url_path, 200, key).headers.get("x-cache") for _ in range(2)]
        time.sleep(0.4)
        states.append(ttl_probe.get(url_path, 200, key).headers.get("x-cache"))
        probe.expect(
            states == ["miss", "hit", "miss"], f"TTL expiry: expected miss, hit, miss; got {states}"
        )
        probe.problems += ttl_probe.problems
    if probe.problems:
        raise CheckFailed(
            f"caching: {probe.problems[0]}", figures=figures, excerpt="\n".join(probe.problems)
        )
    return Evidence(
        "response cache verified over HTTP on sample gold: hit after miss with same ETag, 304 on "
        "If-None-Match, invalidated by a new run_id, expired after its TTL",
        figures=figures,
    )


def _offline_page(client: Any, page: str) -> list[str]:
    """A docs page answers and every script and stylesheet it loads is served by the API."""
    import re

    response = client.get(page)
    if response.status_code != 200:
        return [f"GET {page} does not answer 200 (got {response.status_code})"]
    assets = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    problems = [f"{page} loads {url} from outside the API" for url in assets if "//" in url]
    for url in assets:
        if "//" not in url and client.get(url).status_code != 200:
            problems.append(f"{page} loads {url}, which the API does not serve")
    if not assets:
        problems.append(f"{page} loads no script: not a Swagger UI/ReDoc page")
    return problems


def openapi_documented(ctx: CheckContext) -> Evidence:
    import httpx

    from api import openapi
    from api.app import create_app
    from api.server import running_server
    from core.settings import load_settings

    problems: list[str] = []
    spec = openapi.spec()
    paths = spec.get("paths", {})
    for path in ENDPOINTS:
        operation = paths.get(path, {}).get("get")
        if operation is None:
            problems.append(f"{path} is not documented")
            continue
        if not operation.get("description") and not operation.get("summary"):
            problems.append(f"{path} has no description")
        if "schema" not in operation.get("responses", {}).get("200", {}).get("content", {}).get(
            "application/json", {}
        ):
            problems.append(f"{path} documents no 200 response schema")
        if path != "/v1/health":
            if not operation.get("security"):
                problems.append(f"{path} does not declare the API key requirement")
            if "422" not in operation.get("responses", {}) or "401" not in operation.get(
                "responses", {}
            ):
                problems.append(f"{path} does not document its 401/422 errors")
    for path in ("/v1/prices/{symbol}", "/v1/portfolios/{portfolio_id}/summary"):
        names = {p.get("name") for p in paths.get(path, {}).get("get", {}).get("parameters", [])}
        if not {"start", "end"} <= names:
            problems.append(
                f"{path} does not document start/end (has {sorted(n for n in names if n)})"
            )
    for path in PAGED:
        params = {
            p.get("name"): p.get("schema", {})
            for p in paths.get(path, {}).get("get", {}).get("parameters", [])
        }
        if not params.get("limit", {}).get("maximum") or "pattern" not in params.get("cursor", {}):
            problems.append(f"{path} does not state its paging (limit maximum, cursor pattern)")
    schemes = spec.get("components", {}).get("securitySchemes", {})
    if not any(
        s.get("type") == "apiKey" and s.get("in") == "header" and s.get("name") == "x-api-key"
        for s in schemes.values()
    ):
        problems.append(f"no x-api-key header security scheme (found {schemes})")

    # Served by the running app too, and identical to the generated document.
    settings = load_settings(env=ctx.env, root=ctx.root, api_key="spec-only")
    with (
        running_server(create_app(settings)) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        served = client.get("/openapi.json")
        if served.status_code != 200 or served.json().get("paths", {}).keys() != paths.keys():
            problems.append(f"GET /openapi.json: {served.status_code}, not the generated document")
        for page in ("/docs", "/redoc"):
            problems += _offline_page(client, page)
    exported = ctx.root / openapi.SPEC_PATH
    if not exported.is_file():
        problems.append(f"{openapi.SPEC_PATH} is missing; run 'finks api openapi'")
    elif not openapi.is_current(ctx.root):
        problems.append(f"{openapi.SPEC_PATH} is out of date; run 'finks api openapi'")
    figures = {
        "paths": len(paths),
        "schemas": len(spec.get("components", {}).get("schemas", {})),
        "openapi": spec.get("openapi"),
    }
    if problems:
        raise CheckFailed(f"OpenAPI: {problems[0]}", figures=figures, excerpt="\n".join(problems))
    return Evidence(
        f"OpenAPI {spec.get('openapi')} documents {len(ENDPOINTS)} endpoints with schemas, errors and "
        f"the x-api-key scheme and paging; served at /openapi.json, /docs and /redoc (assets "
        f"served locally, no CDN); {openapi.SPEC_PATH} is current",
        figures=figures,
    )
