"""Fixtures: the simulator in process (httpx.ASGITransport) and over real HTTP, for every client test."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest
import pytest_asyncio

from simulator.app import create_app
from simulator.config import SimulatorConfig
from tests.allegro_api.harness import Harness, serve_over_http

# Short intervals keep the device-flow tests fast; the seed keeps fault injection repeatable.
BASE_CONFIG = SimulatorConfig(seed=11, device_poll_interval=0)

HarnessFactory = Callable[..., Awaitable[Harness]]


@contextlib.asynccontextmanager
async def harness_factory(kind: str) -> AsyncIterator[HarnessFactory]:
    """Build harnesses of one transport kind ("asgi" or "http"); everything stops on exit."""
    async with contextlib.AsyncExitStack() as stack:

        async def factory(*, http_timeout: float = 5.0, hooks: Any = None, **overrides: Any) -> Harness:
            app = create_app(replace(BASE_CONFIG, **overrides))
            sent: list[httpx.Request] = []

            async def record(outgoing: httpx.Request) -> None:
                sent.append(outgoing)

            event_hooks = {"request": [*(hooks or []), record]}
            if kind == "asgi":
                await stack.enter_async_context(app.router.lifespan_context(app))
                transport = httpx.ASGITransport(app=app)
                http = httpx.AsyncClient(transport=transport, timeout=http_timeout, event_hooks=event_hooks)
                base_url = "http://sim.test"
            else:
                base_url = stack.enter_context(serve_over_http(app))
                http = httpx.AsyncClient(timeout=http_timeout, event_hooks=event_hooks)
            await stack.enter_async_context(http)
            return Harness(http=http, base_url=base_url, transport_kind=kind, sent=sent)

        yield factory


@pytest_asyncio.fixture(params=["asgi", "http"])
async def make_harness(request: pytest.FixtureRequest) -> AsyncIterator[HarnessFactory]:
    """A factory of harnesses (simulator config overrides as keywords), in process and over HTTP."""
    async with harness_factory(request.param) as factory:
        yield factory


@pytest_asyncio.fixture
async def make_asgi_harness() -> AsyncIterator[HarnessFactory]:
    """In-process harnesses only, for tests whose subject does not depend on the transport."""
    async with harness_factory("asgi") as factory:
        yield factory


@pytest_asyncio.fixture
async def make_http_harness() -> AsyncIterator[HarnessFactory]:
    """Real-HTTP harnesses only, for timeouts and connection failures."""
    async with harness_factory("http") as factory:
        yield factory


@pytest_asyncio.fixture
async def harness(make_harness: HarnessFactory) -> Harness:
    """A harness with the default test config."""
    return await make_harness()
