"""The FastAPI app factory: the API's composition root."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.docs import install_local_docs
from api.metrics import MetricsMiddleware
from api.outages import install_outage_handlers
from api.problems import PROBLEM_JSON, install_problem_handlers
from api.resources import AppConfig, open_resources
from api.routes import export, health, history, orders, records, tokens
from core.runtime import freeze_start_up_objects
from core.settings import Settings, get_settings
from core.version import VERSION

DESCRIPTION = """\
Links Allegro seller accounts (OAuth device flow) and serves the orders this service keeps forever, with
their shipments, parcel tracking and invoices (`?include=shipments,tracking,invoices`), which Allegro
purges with the order.

Every `/v1` call needs `Authorization: Bearer <API key>` and is scoped by the path's `user_id`: another
user's tokens and orders are answered with 404. Errors are `application/problem+json`.
"""


class BackupApi(FastAPI):
    """FastAPI whose OpenAPI document declares problem+json (not JSON) for every error response."""

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI document, built once."""
        if self.openapi_schema is None:
            schema = get_openapi(
                title=self.title,
                version=self.version,
                description=self.description,
                routes=self.routes,
                tags=self.openapi_tags,
            )
            _declare_problem_media_type(schema)
            self.openapi_schema = schema
        return self.openapi_schema


def _declare_problem_media_type(schema: dict[str, Any]) -> None:
    """Where a response declares problem+json, drop the `application/json` twin FastAPI adds."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                if PROBLEM_JSON in content and "application/json" in content:
                    json_schema = content.pop("application/json").get("schema")
                    content[PROBLEM_JSON].setdefault("schema", json_schema)


def create_app(settings: Settings, *, allegro_transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    """Build the app; the lifespan opens the database engine, the Allegro client and the Kafka probe.

    `allegro_transport` replaces the network under the Allegro client (the simulator in tests).
    """
    config = AppConfig.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_resources(settings, allegro_transport=allegro_transport) as resources:
            app.state.resources = resources
            # Everything built so far lives as long as the process: out of the collector's reach, so
            # collections stay short and do not show up in request tail latency.
            freeze_start_up_objects()
            yield

    app = BackupApi(
        title="Allegro Orders Backup",
        version=VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        # FastAPI's own pages load their assets from CDNs; install_local_docs serves them from here.
        docs_url=None,
        redoc_url=None,
        openapi_tags=[
            {"name": "tokens", "description": "Linked Allegro accounts and their sync."},
            {
                "name": "orders",
                "description": "Stored orders, revisions and exports; their shipments, parcel tracking and "
                "invoices, each with its history (`include`, `…/shipments`, `…/tracking`, `…/invoices`).",
            },
            {"name": "sync history", "description": "Sync runs."},
            {"name": "health", "description": "Liveness, readiness, metrics (no key needed)."},
        ],
    )
    app.state.config = config
    install_local_docs(app)
    install_problem_handlers(app)
    install_outage_handlers(app)
    app.add_middleware(MetricsMiddleware, metrics=config.metrics)
    app.include_router(health.router)
    app.include_router(tokens.router)
    # Before orders: `/orders/export` would otherwise match `/orders/{checkout_form_id}`.
    app.include_router(export.router)
    app.include_router(orders.router)
    app.include_router(records.router)
    app.include_router(history.router)
    return app


def create_app_from_environment() -> FastAPI:
    """The app with the process's settings (uvicorn's `--factory` entry)."""
    return create_app(get_settings())
