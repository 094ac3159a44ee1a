"""Schema-driven fuzzing: every request the OpenAPI schema allows is served.

schemathesis generates requests from the served ``/openapi.json`` and sends
them to the app (uvicorn on loopback) over a sample gold. Valid requests must
never be rejected (no 400/422) nor fail (no 5xx) and must answer as
documented (status, headers, body schema); invalid ones must get a 4xx.
Every page's ``links.next`` is followed. The fuzz is derandomized and
bounded, so CI sees the same few hundred requests on every run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from api import samplegold
from api.app import create_app
from api.server import running_server
from core import lake
from core.settings import load_settings

KEY = "fuzz-key"
MAX_EXAMPLES = 25
# Random ids mostly find nothing (404); the sample's ids reach the data and its pages.
SAMPLE_IDS = {"portfolio_id": "growth", "symbol": "AAPL"}
SPEC = json.loads((Path(__file__).resolve().parent.parent / "docs/api/openapi.json").read_text())
OPERATIONS = [
    (path, method.upper(), operation.get("parameters", []))
    for path, methods in SPEC["paths"].items()
    for method, operation in methods.items()
]
CASES = [
    pytest.param(path, method, mode, ids, id=f"{method} {path} {label}")
    for path, method, parameters in OPERATIONS
    for mode, ids, label in (
        (GenerationMode.POSITIVE, False, "valid"),
        (GenerationMode.POSITIVE, True, "valid-on-sample-ids"),
        (GenerationMode.NEGATIVE, False, "invalid"),
    )
    # No parameters, no invalid request; no id in the path, nothing to fix.
    if not (mode is GenerationMode.NEGATIVE and not parameters)
    and not (ids and not any(p["in"] == "path" for p in parameters))
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, httpx.Client]]:
    app_settings = load_settings(
        env="local",
        lake_uri=str(tmp_path_factory.mktemp("lake")),
        storage="local",
        api_key=KEY,
    )
    # 30 trading days up to about today, so that a request without dates (the
    # default range is the last 30 days) finds data; small limits page it.
    first = datetime.now(UTC).date() - timedelta(days=40)
    samplegold.write(samplegold.build(days=30, start=first), lake.zone_uri(app_settings, "gold"))
    # The key goes with every request; generating security parameters would
    # only fuzz the key check, which test_api covers.
    config = SchemathesisConfig.from_dict({"generation": {"with-security-parameters": False}})
    with (
        running_server(create_app(app_settings)) as url,
        httpx.Client(base_url=url, headers={"x-api-key": KEY}, timeout=30) as client,
    ):
        yield schemathesis.openapi.from_url(f"{url}/openapi.json", config=config), client


def test_the_fuzzed_operations_are_the_served_ones(served: tuple[Any, httpx.Client]) -> None:
    operations = {(r.ok().path, r.ok().method.upper()) for r in served[0].get_all_operations()}
    assert operations == {(path, method) for path, method, _ in OPERATIONS}


def _follow_next(client: httpx.Client, response: Any) -> None:
    """A page's next link is served and continues after it."""
    body = response.json()
    following = body["links"]["next"]
    link = response.headers.get("link")  # schemathesis keeps every value of a header
    assert (following is None) == (body["meta"]["next_cursor"] is None)
    if following is None:
        assert link is None
        return
    assert link == [f'<{following}>; rel="next"']
    assert len(body["data"]) == body["meta"]["limit"]
    page = client.get(following)
    assert page.status_code == 200, page.text
    rows = page.json()["data"]
    if rows and "start" in body:
        # a date range's pages continue strictly after the last date served
        assert rows[0]["date"] > body["data"][-1]["date"]


@pytest.mark.parametrize("path,method,mode,sample_ids", CASES)
def test_schema_valid_requests_are_served_and_invalid_ones_refused(
    served: tuple[Any, httpx.Client],
    path: str,
    method: str,
    mode: GenerationMode,
    sample_ids: bool,
) -> None:
    schema, client = served
    fixed = {k: v for k, v in SAMPLE_IDS.items() if f"{{{k}}}" in path} if sample_ids else None
    strategy = schema[path][method].as_strategy(generation_mode=mode, path_parameters=fixed)
    statuses: list[int] = []

    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def fuzz(case: Any) -> None:
        response = case.call_and_validate(headers={"x-api-key": KEY})
        statuses.append(response.status_code)
        if response.status_code == 200 and "links" in response.json():
            _follow_next(client, response)

    fuzz()
    assert statuses, f"no {mode.value} request was generated for {method} {path}"
    if mode is GenerationMode.POSITIVE:
        assert not {400, 422} & set(statuses) and max(statuses) < 500
    if sample_ids:
        assert statuses.count(200) > len(statuses) // 2, statuses
