"""The simulator's FastAPI app factory: public Allegro paths and the `/_sim` control API on one app."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from simulator import (
    routes_auth,
    routes_control,
    routes_fleet,
    routes_inspect,
    routes_orders,
    routes_records,
    routes_verification,
)
from simulator.config import SimulatorConfig
from simulator.middleware import TraceAndStatsMiddleware
from simulator.responses import ApiError
from simulator.state import SimulatorState


async def _api_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)  # noqa: S101 - registered for ApiError only
    return error.response()


def create_app(config: SimulatorConfig) -> FastAPI:
    """Build one simulator instance; all its state lives on the FastAPI app, as app.state.sim."""
    state = SimulatorState(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await state.trickle.stop_all()

    app = FastAPI(
        title="Allegro API simulator",
        lifespan=lifespan,
        docs_url="/_sim/docs",
        redoc_url=None,
        openapi_url="/_sim/openapi.json",
    )
    app.state.sim = state
    app.add_exception_handler(ApiError, _api_error)
    app.add_middleware(TraceAndStatsMiddleware, stats=state.stats)
    for module in (routes_auth, routes_orders, routes_control, routes_inspect, routes_verification):
        app.include_router(module.router)
    app.include_router(routes_records.router)
    app.include_router(routes_fleet.router)
    return app
