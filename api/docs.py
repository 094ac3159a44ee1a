"""Swagger UI (``/docs``) and ReDoc (``/redoc``) served by the API itself.

FastAPI's own pages load their JavaScript and CSS from a CDN and a favicon
from fastapi.tiangolo.com, so offline (or behind a firewall that blocks
them) they stay blank. The assets come from the ``fastapi-offline`` package,
which ships current Swagger UI and ReDoc builds; only its files are used.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs-assets"
ASSETS_PACKAGE = ("fastapi_offline", "static")
# Swagger UI would send the spec to validator.swagger.io for a badge.
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}
# The pages may load and call nothing but this API: ReDoc's sidebar always
# shows a logo from cdn.redoc.ly (hidden when it fails to load), and the
# policy keeps the browser from asking for it. Both UIs style themselves
# inline and FastAPI's Swagger page starts with an inline script.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'self'"
)


def add_docs(app: FastAPI) -> None:
    """Mount the assets and the two pages; build the app with docs_url=redoc_url=None."""
    app.mount(ASSETS_URL, StaticFiles(packages=[ASSETS_PACKAGE]), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    def assets(request: Request) -> str:
        # Behind a proxy that strips a prefix (an API Gateway stage) the
        # browser needs it back on every URL.
        return f"{request.scope.get('root_path', '')}{ASSETS_URL}"

    @app.get(DOCS_URL, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        base = assets(request)
        page = get_swagger_ui_html(
            openapi_url=f"{request.scope.get('root_path', '')}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{base}/swagger-ui-bundle.js",
            swagger_css_url=f"{base}/swagger-ui.css",
            swagger_favicon_url=f"{base}/favicon.png",
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )
        page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return page

    @app.get(REDOC_URL, include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        base = assets(request)
        page = get_redoc_html(
            openapi_url=f"{request.scope.get('root_path', '')}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{base}/redoc.standalone.js",
            redoc_favicon_url=f"{base}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return page
