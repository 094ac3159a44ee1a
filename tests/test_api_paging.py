"""Paging: limits and cursors the schema states, next links that walk every row."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from api import samplegold
from api.app import create_app
from api.params import CURSOR_PATTERN, decode_cursor, encode_cursor
from api.server import running_server
from core import lake
from core.settings import load_settings

KEY = "paging-key"
AUTH = {"x-api-key": KEY}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    lake_dir: Path = tmp_path_factory.mktemp("lake")
    settings = load_settings(env="local", lake_uri=str(lake_dir), storage="local", api_key=KEY)
    samplegold.write(samplegold.build(days=5), lake.zone_uri(settings, "gold"))
    with (
        running_server(create_app(settings)) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        yield http


@given(st.integers(min_value=0, max_value=36**12 - 1))
def test_every_position_round_trips_through_a_cursor_the_schema_allows(position: int) -> None:
    import re

    cursor = encode_cursor(position)
    assert re.fullmatch(CURSOR_PATTERN, cursor) and decode_cursor(cursor) == position


def test_the_schema_states_the_bounds_it_enforces(client: httpx.Client) -> None:
    parameters = {
        p["name"]: p["schema"]
        for p in client.get("/openapi.json").json()["paths"]["/v1/prices/{symbol}"]["get"][
            "parameters"
        ]
    }
    assert (parameters["limit"]["minimum"], parameters["limit"]["maximum"]) == (1, 1000)
    assert parameters["cursor"] == {
        "type": "string",
        "pattern": "^[0-9a-z]{1,12}$",
        "title": "Cursor",
    }
    assert parameters["start"]["format"] == "date" and "anyOf" not in parameters["start"]


def test_a_range_of_any_length_is_paged_not_refused(client: httpx.Client) -> None:
    # end defaults to today: two decades and more, the old 366-day limit long gone
    response = client.get("/v1/prices/AAPL?start=2000-01-01", headers=AUTH)
    assert response.status_code == 200
    assert response.json()["meta"]["count"] == 5 and response.json()["links"]["next"] is None


@pytest.mark.parametrize(
    "query",
    [
        "start=2024-03-01&end=2024-02-01",  # start after end
        "end=0001-01-05",  # the default start would fall before year 1
        "start=9999-12-31&end=9999-12-31&cursor=zzzzzzzzzzzz",
        "start=2024-01-02&end=2024-01-02&cursor=1",  # a cursor before the range
    ],
)
def test_edge_ranges_are_served_not_refused(client: httpx.Client, query: str) -> None:
    response = client.get(f"/v1/prices/AAPL?{query}", headers=AUTH)
    assert response.status_code == 200, response.text
    expected = ["2024-01-02"] if query.startswith("start=2024-01-02") else []
    assert [r["date"] for r in response.json()["data"]] == expected


def _walk(client: httpx.Client, url: str) -> tuple[list[dict[str, Any]], list[httpx.Response]]:
    rows: list[dict[str, Any]] = []
    pages: list[httpx.Response] = []
    following: str | None = url
    while following:
        page = client.get(following, headers=AUTH)
        assert page.status_code == 200, page.text
        pages.append(page)
        rows += page.json()["data"]
        following = page.json()["links"]["next"]
        if following:
            assert page.headers["link"] == f'<{following}>; rel="next"'
    return rows, pages


def test_following_next_links_walks_every_row_once_in_order(client: httpx.Client) -> None:
    everything = client.get("/v1/prices/KO?start=2024-01-01&end=2024-01-20", headers=AUTH).json()
    rows, pages = _walk(client, "/v1/prices/ko?start=2024-01-01&end=2024-01-20&limit=2")
    assert rows == everything["data"] and len(pages) == 3
    assert [p.json()["meta"]["count"] for p in pages] == [2, 2, 1]
    assert pages[0].json()["meta"]["next_cursor"] in pages[0].json()["links"]["next"]
    assert "start=2024-01-01&end=2024-01-20&limit=2&cursor=" in pages[0].json()["links"]["next"]
    summary, _ = _walk(client, "/v1/portfolios/growth/summary?start=2024-01-01&limit=3")
    assert [r["date"] for r in summary] == [
        "2024-01-02",
        "2024-01-03",
        "2024-01-04",
        "2024-01-05",
        "2024-01-08",
    ]


def test_offset_pages_cover_portfolios_and_positions(client: httpx.Client) -> None:
    portfolios, pages = _walk(client, "/v1/portfolios?limit=1")
    assert [p["portfolio_id"] for p in portfolios] == ["growth", "income"] and len(pages) == 2
    positions, pages = _walk(client, "/v1/portfolios/income/positions?limit=1")
    assert [p["symbol"] for p in positions] == ["KO", "MSFT"]
    # the default date is resolved once and pinned in the next link
    assert "date=2024-01-08" in pages[0].json()["links"]["next"]


def test_a_cursor_past_the_data_is_an_empty_last_page(client: httpx.Client) -> None:
    for url in ("/v1/prices/AAPL?start=2024-01-01&cursor=zzzzzzzzzzzz", "/v1/portfolios?cursor=zz"):
        body = client.get(url, headers=AUTH).json()
        assert body["data"] == [] and body["links"]["next"] is None, url
    missing = client.get("/v1/prices/ZZZZ?cursor=zz", headers=AUTH)
    assert missing.status_code == 404


def test_the_cache_keys_on_limit_and_cursor(client: httpx.Client) -> None:
    base = "/v1/prices/MSFT?start=2024-01-01&end=2024-01-31"
    first, second = (client.get(f"{base}&limit={n}", headers=AUTH) for n in (1, 2))
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "miss")
    assert first.headers["etag"] != second.headers["etag"]
    following = first.json()["links"]["next"]
    page, again = client.get(following, headers=AUTH), client.get(following, headers=AUTH)
    assert page.json()["data"][0]["date"] == "2024-01-03"
    assert (page.headers["x-cache"], again.headers["x-cache"]) == ("miss", "hit")
    assert again.headers["link"] == page.headers["link"]  # the Link header is cached too
    revalidated = client.get(following, headers={**AUTH, "If-None-Match": page.headers["etag"]})
    assert revalidated.status_code == 304 and revalidated.headers["link"] == page.headers["link"]
