"""The read API over a sample gold publication, through a real uvicorn socket."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api import samplegold
from api.app import create_app
from api.cache import ResponseCache
from api.server import running_server
from api.service import ApiConfig
from core import lake
from core.errors import ConfigError
from core.settings import Settings, load_settings

KEY = "test-key-123"
AUTH = {"x-api-key": KEY}


def make_settings(lake: Path, **overrides: Any) -> Settings:
    return load_settings(env="local", lake_uri=str(lake), storage="local", api_key=KEY, **overrides)


@pytest.fixture(scope="module")
def gold(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, samplegold.SampleGold]:
    settings = make_settings(tmp_path_factory.mktemp("lake"))
    sample = samplegold.build(days=5)
    samplegold.write(sample, lake.zone_uri(settings, "gold"))
    return settings, sample


@pytest.fixture(scope="module")
def client(gold: tuple[Settings, samplegold.SampleGold]) -> Iterator[httpx.Client]:
    with running_server(create_app(gold[0])) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http


def test_health_reports_gold_freshness_without_a_key(client: httpx.Client) -> None:
    response = client.get("/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["backend"] == "duckdb"
    assert body["gold"]["run_id"] == "sample-1"
    assert body["gold"]["missing_models"] == [] and body["gold"]["age_seconds"] < 3600
    assert response.headers["cache-control"] == "no-store"


def test_health_is_503_and_says_what_to_run_before_gold_is_published(tmp_path: Path) -> None:
    with running_server(create_app(make_settings(tmp_path))) as url:
        health = httpx.get(f"{url}/v1/health")
        data = httpx.get(f"{url}/v1/portfolios", headers=AUTH)
    assert health.status_code == 503 and health.json()["status"] == "unpublished"
    assert data.status_code == 503 and "finks run s16" in data.json()["detail"]


@pytest.mark.parametrize(
    "headers,message", [({}, "missing API key"), ({"x-api-key": "wrong"}, "invalid API key")]
)
def test_data_endpoints_reject_a_missing_or_wrong_api_key(
    client: httpx.Client, headers: dict[str, str], message: str
) -> None:
    response = client.get("/v1/portfolios", headers=headers)
    assert response.status_code == 401
    assert message in response.json()["detail"] and "x-api-key" in response.json()["detail"]


def test_portfolios_lists_each_portfolio_with_its_coverage(client: httpx.Client) -> None:
    body = client.get("/v1/portfolios", headers=AUTH).json()
    assert [p["portfolio_id"] for p in body["data"]] == ["growth", "income"]
    growth = body["data"][0]
    assert (growth["first_date"], growth["last_date"], growth["days"]) == (
        "2024-01-02",
        "2024-01-08",
        5,
    )
    # 10 AAPL at 186 + 5 MSFT at 376 on the fifth trading day
    assert growth["market_value"] == pytest.approx(10 * 186 + 5 * 376)
    assert body["meta"] == {
        "run_id": "sample-1",
        "published_at": body["meta"]["published_at"],
        "count": 2,
        "limit": 100,
        "next_cursor": None,
    }
    assert (
        body["links"] == {"next": None}
        and "link" not in client.get("/v1/portfolios", headers=AUTH).headers
    )


def test_summary_returns_the_days_in_range_in_date_order(client: httpx.Client) -> None:
    body = client.get(
        "/v1/portfolios/growth/summary?start=2024-01-03&end=2024-01-05", headers=AUTH
    ).json()
    assert [row["date"] for row in body["data"]] == ["2024-01-03", "2024-01-04", "2024-01-05"]
    first = body["data"][0]
    assert first["market_value"] == pytest.approx(10 * 181.5 + 5 * 371.5)
    assert first["day_change"] == pytest.approx(15 * 1.5)
    assert first["position_count"] == 2
    assert (body["start"], body["end"], body["meta"]["count"]) == ("2024-01-03", "2024-01-05", 3)


def test_positions_default_to_the_latest_date_and_weights_sum_to_one(client: httpx.Client) -> None:
    body = client.get("/v1/portfolios/income/positions", headers=AUTH).json()
    assert body["date"] == "2024-01-08"
    assert [p["symbol"] for p in body["data"]] == ["KO", "MSFT"]  # largest market value first
    assert sum(p["weight"] for p in body["data"]) == pytest.approx(1.0)
    dated = client.get("/v1/portfolios/income/positions?date=2024-01-02", headers=AUTH).json()
    assert {p["date"] for p in dated["data"]} == {"2024-01-02"}


def test_prices_accept_a_lowercase_symbol(client: httpx.Client) -> None:
    body = client.get("/v1/prices/msft?start=2024-01-01&end=2024-01-03", headers=AUTH).json()
    assert body["symbol"] == "MSFT"
    assert [(r["date"], r["close"]) for r in body["data"]] == [
        ("2024-01-02", 370.0),
        ("2024-01-03", 371.5),
    ]
    assert body["data"][1]["volume"] == 1_001_000 and body["data"][0]["change"] is None


def test_company_by_symbol_and_404_for_an_unknown_one(client: httpx.Client) -> None:
    company = client.get("/v1/companies/KO", headers=AUTH).json()["data"]
    assert company["company_name"] == "The Coca-Cola Company" and company["exchange"] == "NYSE"
    missing = client.get("/v1/companies/ZZZZ", headers=AUTH)
    assert missing.status_code == 404 and "ZZZZ" in missing.json()["detail"]


def test_unknown_portfolio_is_404_with_a_pointer_to_the_list(client: httpx.Client) -> None:
    response = client.get(
        "/v1/portfolios/nobody/summary?start=2024-01-01&end=2024-01-31", headers=AUTH
    )
    assert response.status_code == 404 and "/v1/portfolios" in response.json()["detail"]


@pytest.mark.parametrize(
    "url,expected",
    [
        (
            "/v1/prices/AAPL?start=01/02/2024&end=2024-01-05",
            "query.start: expected a date as YYYY-MM-DD",
        ),
        ("/v1/prices/AAPL?start=2024-02-30&end=2024-03-05", "'2024-02-30' is not a calendar date"),
        (
            "/v1/prices/AA;PL?start=2024-01-01&end=2024-01-05",
            "path.symbol: symbol must be 1-20 characters",
        ),
        ("/v1/portfolios/growth/summary?from=2024-01-01", "query.from: unknown parameter"),
        ("/v1/portfolios/gr%20owth/positions", "path.portfolio_id: portfolio id must be"),
        ("/v1/prices/AAPL?limit=1001", "query.limit: Input should be less than or equal to 1000"),
        ("/v1/portfolios?limit=0", "query.limit: Input should be greater than or equal to 1"),
        ("/v1/portfolios?cursor=Not-A-Cursor", "query.cursor: cursor must be the meta.next_cursor"),
    ],
)
def test_invalid_parameters_get_a_422_naming_the_problem(
    client: httpx.Client, url: str, expected: str
) -> None:
    response = client.get(url, headers=AUTH)
    assert response.status_code == 422
    assert expected in response.json()["error"]


def test_responses_carry_etag_and_cache_control_and_honour_if_none_match(
    client: httpx.Client,
) -> None:
    url = "/v1/prices/KO?start=2024-01-01&end=2024-01-31"
    first, second = client.get(url, headers=AUTH), client.get(url, headers=AUTH)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert first.headers["etag"] == second.headers["etag"] and first.content == second.content
    assert first.headers["cache-control"] == "private, max-age=60"
    revalidated = client.get(url, headers={**AUTH, "If-None-Match": first.headers["etag"]})
    assert revalidated.status_code == 304 and revalidated.content == b""


def test_cache_serves_until_gold_is_republished_with_a_new_run_id(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    gold_uri = lake.zone_uri(settings, "gold")
    samplegold.write(samplegold.build(days=3, run_id="run-a"), gold_uri)
    url = "/v1/prices/AAPL?start=2024-01-01&end=2024-01-31"
    with running_server(create_app(settings)) as base, httpx.Client(base_url=base) as http:
        before = http.get(url, headers=AUTH)
        # same run_id, different bytes: the cache must not notice
        newer = samplegold.build(days=3, run_id="run-a", price_offset=10.0)
        (Path(gold_uri) / "marts" / "fct_daily_prices.parquet").write_bytes(
            newer.files["marts/fct_daily_prices.parquet"]
        )
        cached = http.get(url, headers=AUTH)
        samplegold.write(samplegold.build(days=3, run_id="run-b", price_offset=10.0), gold_uri)
        after = http.get(url, headers={**AUTH, "If-None-Match": before.headers["etag"]})
        stats = http.get("/v1/health").json()["cache"]
    assert cached.headers["x-cache"] == "hit" and cached.content == before.content
    assert after.status_code == 200 and after.headers["x-cache"] == "miss"
    assert (
        after.json()["meta"]["run_id"] == "run-b"
        and after.headers["etag"] != before.headers["etag"]
    )
    assert [r["close"] for r in after.json()["data"]] == [
        r["close"] + 10 for r in before.json()["data"]
    ]
    assert stats["invalidations"] == 1


def test_cache_entries_expire_after_their_ttl() -> None:
    now = [100.0]
    cache = ResponseCache(ttl=5, clock=lambda: now[0])
    cache.put(("q",), "run", b"body")
    now[0] += 4.9
    assert cache.get(("q",), "run") is not None
    now[0] += 0.2
    assert cache.get(("q",), "run") is None
    assert cache.stats() == {"entries": 0, "hits": 1, "misses": 1, "invalidations": 0}


def test_cache_evicts_the_least_recently_used_entry_beyond_its_size() -> None:
    cache = ResponseCache(ttl=60, max_entries=2)
    for key in ("a", "b"):
        cache.put(key, "run", key.encode())
    cache.get("a", "run")
    cache.put("c", "run", b"c")
    assert cache.get("b", "run") is None and cache.get("a", "run") is not None


def test_a_missing_mart_gives_503_naming_the_mart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    samplegold.write(samplegold.build(days=2), lake.zone_uri(settings, "gold"))
    (Path(lake.zone_uri(settings, "gold")) / "marts" / "dim_company.parquet").unlink()
    with running_server(create_app(settings, config=ApiConfig(cache_ttl=0))) as base:
        response = httpx.get(f"{base}/v1/companies/AAPL", headers=AUTH)
    assert response.status_code == 503 and "dim_company is missing" in response.json()["detail"]


def test_serve_refuses_a_public_host_without_an_api_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from api.cli import app as cli

    monkeypatch.setenv("FINKS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("FINKS_API_KEY", "  ")  # blank counts as unset
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert isinstance(result.exception, ConfigError)
    assert "refusing to serve the API on 0.0.0.0 without an API key" in str(result.exception)
    assert "FINKS_API_KEY" in str(result.exception)


def test_cli_module_imports_no_heavy_library() -> None:
    code = (
        "import sys, api.cli; "
        "print([m for m in ('fastapi','duckdb','boto3','httpx','uvicorn','pyarrow','mangum') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert out.stdout.strip() == "[]"


def test_openapi_export_writes_the_spec_and_the_committed_copy_is_current(tmp_path: Path) -> None:
    from api import openapi

    target = openapi.export(tmp_path, tmp_path / "openapi.json")
    document = json.loads(target.read_text())
    assert {"/v1/health", "/v1/prices/{symbol}", "/v1/companies/{symbol}"} <= set(document["paths"])
    assert document["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "x-api-key"
    assert openapi.is_current(Path(__file__).resolve().parent.parent), (
        "run: python -m api.cli openapi"
    )


def _rest_event(path: str, query: dict[str, str] | None = None) -> dict[str, Any]:
    """An API Gateway REST API proxy event, as the client called /prod<path>."""
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": "GET",
        "headers": {"x-api-key": KEY, "Host": "abc.execute-api.ca-central-1.amazonaws.com"},
        "multiValueHeaders": {},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": "GET",
            "path": f"/prod{path}",
            "stage": "prod",
            "identity": {"sourceIp": "203.0.113.9"},
        },
        "body": None,
        "isBase64Encoded": False,
    }


def test_lambda_handler_serves_an_api_gateway_event(
    gold: tuple[Settings, samplegold.SampleGold],
) -> None:
    from api.lambda_handler import build_handler

    handler = build_handler(gold[0])
    event = _rest_event("/v1/prices/AAPL", {"start": "2024-01-02", "end": "2024-01-03"})
    result = handler(event, None)
    assert result["statusCode"] == 200, result["body"]
    assert [r["close"] for r in json.loads(result["body"])["data"]] == [180.0, 181.5]
    # Links and docs lead back through the stage the client called.
    paged = handler(_rest_event("/v1/prices/AAPL", {"start": "2024-01-02", "limit": "1"}), None)
    following = json.loads(paged["body"])["links"]["next"]
    assert following.startswith("/prod/v1/prices/AAPL?start=2024-01-02&")
    docs = handler(_rest_event("/docs"), None)
    assert docs["statusCode"] == 200 and "/prod/docs-assets/swagger-ui-bundle.js" in docs["body"]
    assert "'/prod/openapi.json'" in docs["body"]


def test_serve_command_answers_on_the_configured_port(
    gold: tuple[Settings, samplegold.SampleGold], tmp_path: Path
) -> None:
    import os
    import socket
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "FINKS_LAKE_URI": lake.lake_root(gold[0]),
        "FINKS_STATE_DIR": str(tmp_path),
        "FINKS_API_PORT": str(port),
        "FINKS_API_KEY": KEY,
        "PYTHONPATH": str(root),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--log-level", "warning"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
                assert time.monotonic() < deadline, "serve did not answer within 20s"
                time.sleep(0.1)
        assert response.status_code == 200 and response.json()["gold"]["run_id"] == "sample-1"
    finally:
        proc.terminate()
        proc.wait(10)
