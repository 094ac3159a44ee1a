"""The API docs work offline: Swagger UI and ReDoc load nothing but the API.

The browser tests drive Debian's chromium (/usr/bin/chromium) with
playwright; they never download a browser, and skip where chromium is not
installed (CI installs it). Every request off 127.0.0.1 is blocked and
recorded, so a page that needs the network fails instead of going blank.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Page, Route, sync_playwright

from api import samplegold
from api.app import create_app
from api.server import running_server
from core import lake
from core.settings import load_settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# How chromium reports a request its Content-Security-Policy refused (it never went out).
CSP_REFUSED = {"csp", "net::ERR_BLOCKED_BY_CSP"}
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.is_file(),
    reason=f"{CHROMIUM} is not installed (apt-get install -y chromium); CI installs it",
)


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = load_settings(
        env="local",
        lake_uri=str(tmp_path_factory.mktemp("lake")),
        storage="local",
        api_key="docs-key",
    )
    samplegold.write(samplegold.build(days=2), lake.zone_uri(settings, "gold"))
    with running_server(create_app(settings)) as url:
        yield url


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_assets_the_api_serves(base_url: str, page: str) -> None:
    html = httpx.get(f"{base_url}{page}").text
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and not [a for a in assets if "//" in a], assets
    for asset in assets:
        response = httpx.get(f"{base_url}{asset}")
        assert response.status_code == 200 and len(response.content) > 1000, asset


class _Browser:
    """One chromium page that records every request and aborts those off loopback."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.requested: list[str] = []
        self.blocked: list[str] = []
        self.failed: dict[str, str] = {}
        self.console: list[str] = []


@pytest.fixture()
def browser() -> Iterator[_Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        context = chromium.new_context()
        page = context.new_page()
        session = _Browser(page)

        def route(route: Route) -> None:
            url = route.request.url
            if urlsplit(url).hostname == "127.0.0.1":
                route.continue_()
            else:
                session.blocked.append(url)
                route.abort()

        context.route("**/*", route)
        context.on("request", lambda request: session.requested.append(request.url))
        context.on(
            "requestfailed",
            lambda request: session.failed.update({request.url: request.failure or "failed"}),
        )
        page.on("console", lambda m: session.console.append(f"{m.type}: {m.text}"))
        try:
            yield session
        finally:
            chromium.close()


def _left_loopback(browser: _Browser) -> dict[str, str]:
    """Requests that went (or were about to go) beyond 127.0.0.1, with their fate.

    data: and blob: URLs never leave the page; a request the page's
    Content-Security-Policy refused never reached the network.
    """
    off = [
        u
        for u in browser.requested
        if urlsplit(u).scheme in ("http", "https", "ws", "wss")
        and urlsplit(u).hostname != "127.0.0.1"
    ]
    fate = {u: browser.failed.get(u, "sent") for u in off + browser.blocked}
    return {u: f for u, f in fate.items() if f not in CSP_REFUSED}


@needs_chromium
def test_swagger_ui_renders_every_operation_offline(
    base_url: str, browser: _Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    page = browser.page
    page.goto(f"{base_url}/docs")
    page.wait_for_selector(".opblock", timeout=20_000)
    spec = httpx.get(f"{base_url}/openapi.json").json()
    operations = sum(len(methods) for methods in spec["paths"].values())
    shot = tmp_path_factory.mktemp("docs-screenshots") / "swagger-ui.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"Swagger UI screenshot: {shot}")

    assert page.locator(".opblock").count() == operations
    assert "/v1/prices/{symbol}" in page.inner_text(".swagger-ui")
    assert _left_loopback(browser) == {} and browser.failed == {}, browser.console
    assert f"{base_url}/openapi.json" in browser.requested


@needs_chromium
def test_redoc_renders_the_operations_offline(base_url: str, browser: _Browser) -> None:
    page = browser.page
    page.goto(f"{base_url}/redoc")
    # ReDoc gives each operation a section "tag/<tag>/operation/<operationId>".
    sections = "[data-section-id*='/operation/']"
    page.wait_for_selector(sections, timeout=20_000)
    spec = httpx.get(f"{base_url}/openapi.json").json()
    operations = sum(len(methods) for methods in spec["paths"].values())

    assert page.locator(sections).count() == operations
    assert "Finks read API" in page.inner_text("body")
    assert _left_loopback(browser) == {}, browser.console
    # ReDoc's sidebar logo (cdn.redoc.ly) is the one thing it asks for; the policy refuses it.
    assert set(browser.failed.values()) <= CSP_REFUSED, browser.failed
