"""Fixtures: the API app in process (lifespan run), the simulator as Allegro, committed rows per test user.

Rows are committed (the app reads through its own pool) and isolated by a fresh user id per test:
every query of the API is scoped by user id, so tests cannot see each other's data.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from api.app import create_app
from core.settings import Settings
from simulator.app import create_app as create_simulator
from simulator.config import SimulatorConfig
from tests.api.rows import Rows

API_KEY = "test-key-one"
SECOND_API_KEY = "test-key-two"
SIM_URL = "http://allegro.sim"


def api_settings(database_url: str, kafka_bootstrap: str, **allegro: Any) -> Settings:
    """Settings for the app under test; groups given as dicts so environment fallbacks do not apply."""
    return Settings.model_validate(
        {
            "database": {"url": database_url, "pool_size": 3},
            "kafka": {"bootstrap_servers": kafka_bootstrap},
            "allegro": {"auth_url": SIM_URL, "api_url": SIM_URL, **allegro},
            "api": {"keys": f"{API_KEY}, {SECOND_API_KEY}", "cursor_secret": "test-cursor-secret"},
        }
    )


@pytest.fixture
def user_id() -> str:
    """A user of this test only."""
    return f"user-{uuid.uuid4().hex[:12]}"


@pytest_asyncio.fixture
async def simulator() -> AsyncIterator[FastAPI]:
    """An in-process Allegro simulator (device polls allowed at any pace)."""
    app = create_simulator(SimulatorConfig(seed=11, device_poll_interval=0))
    async with app.router.lifespan_context(app):
        yield app


@pytest_asyncio.fixture
async def sim(simulator: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the simulator (its control API and OAuth endpoints)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator), base_url=SIM_URL) as client:
        yield client


AppFactory = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest_asyncio.fixture
async def make_client(
    database_url: str, kafka_bootstrap: str, simulator: FastAPI
) -> AsyncIterator[AppFactory]:
    """Build an API app (settings overridable) with the simulator as Allegro and return a keyed client."""
    async with contextlib.AsyncExitStack() as stack:

        async def factory(
            *, settings: Settings | None = None, transport: httpx.AsyncBaseTransport | None = None
        ) -> httpx.AsyncClient:
            chosen = settings or api_settings(database_url, kafka_bootstrap)
            app = create_app(chosen, allegro_transport=transport or httpx.ASGITransport(app=simulator))
            await stack.enter_async_context(app.router.lifespan_context(app))
            return await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app),
                    base_url="http://api",
                    headers={"Authorization": f"Bearer {API_KEY}"},
                )
            )

        yield factory


@pytest_asyncio.fixture
async def client(make_client: AppFactory) -> httpx.AsyncClient:
    """A client of the API with a valid key."""
    return await make_client()


@pytest_asyncio.fixture
async def rows(engine: Any, user_id: str) -> Rows:
    """Committed test rows for this test's user."""
    return Rows(engine, user_id)
