"""Swagger UI at `/docs` and ReDoc at `/redoc`, served from assets on this host.

FastAPI's own pages load their scripts, styles, favicon and fonts from CDNs, so they stay blank where the
API runs without internet. The assets here are the ones the `fastapi-offline` distribution ships
(Swagger UI's bundle and CSS, ReDoc's standalone bundle, FastAPI's favicon), mounted as static files.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import HTMLResponse

ASSETS_PATH = "/docs-assets"


def install_local_docs(app: FastAPI, *, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Serve the documentation pages of an app built with `docs_url=None, redoc_url=None`."""
    openapi_url = app.openapi_url
    if openapi_url is None:
        raise ValueError("the app has no OpenAPI document to show")
    app.mount(ASSETS_PATH, StaticFiles(packages=[("fastapi_offline", "static")]), name="docs-assets")

    def asset(request: Request, name: str) -> str:
        # Behind a proxy that strips a prefix, every URL the page loads needs that prefix back.
        return f"{request.scope.get('root_path', '')}{ASSETS_PATH}/{name}"

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=f"{request.scope.get('root_path', '')}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=asset(request, "swagger-ui-bundle.js"),
            swagger_css_url=asset(request, "swagger-ui.css"),
            swagger_favicon_url=asset(request, "favicon.png"),
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    @app.get(redoc_url, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=f"{request.scope.get('root_path', '')}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=asset(request, "redoc.standalone.js"),
            redoc_favicon_url=asset(request, "favicon.png"),
            with_google_fonts=False,
        )
