"""Fixtures: in-process simulators reached through httpx.ASGITransport, with helpers to link sellers;
and `served_simulator`, a `python -m simulator` process on a free loopback port."""

import base64
import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from simulator.app import create_app
from simulator.config import SimulatorConfig
from tests.environments import free_port

VENDOR = "application/vnd.allegro.public.v1+json"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
BASIC = {"Authorization": "Basic " + base64.b64encode(b"demo-client:demo-secret").decode()}
TEST_CONFIG = SimulatorConfig(seed=7, device_poll_interval=0)
REPO = Path(__file__).resolve().parents[2]
# Client credentials of `served_simulator`.
SERVED_BASIC = {"Authorization": "Basic " + base64.b64encode(b"app:pw").decode()}


@dataclass
class Sim:
    """One simulator app and a client bound to it."""

    app: FastAPI
    client: httpx.AsyncClient

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        """Call the control API and return its JSON, failing on any non-200."""
        response = await self.client.request(method, f"/_sim{path}", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    async def seller(self, orders: int = 0, days_back: float = 30, with_events: bool = True) -> str:
        """Create a seller, optionally with orders."""
        seller_id: str = (await self.control("POST", "/sellers", {}))["seller_id"]
        if orders:
            body = {"count": orders, "days_back": days_back, "with_events": with_events}
            await self.control("POST", f"/sellers/{seller_id}/orders", body)
        return seller_id

    async def start_device(self) -> dict[str, Any]:
        """POST /auth/oauth/device."""
        response = await self.client.post(
            "/auth/oauth/device", data={"client_id": "demo-client"}, headers=BASIC
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def poll(self, device_code: str) -> httpx.Response:
        """One poll of the token endpoint with the device-code grant."""
        data = {"grant_type": DEVICE_GRANT, "device_code": device_code}
        return await self.client.post("/auth/oauth/token", data=data, headers=BASIC)

    async def refresh(self, refresh_token: str) -> httpx.Response:
        """One refresh-token grant."""
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return await self.client.post("/auth/oauth/token", data=data, headers=BASIC)

    async def link(self, seller_id: str) -> dict[str, Any]:
        """Run the whole device flow for a seller and return the token response."""
        device = await self.start_device()
        await self.control(
            "POST", "/device/approve", {"user_code": device["user_code"], "seller_id": seller_id}
        )
        response = await self.poll(device["device_code"])
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def api(self, path: str, token: str, params: Any = None, **headers: str) -> httpx.Response:
        """A REST GET with the vendor Accept header and a bearer token."""
        sent = {"Accept": VENDOR, "Authorization": f"Bearer {token}", "User-Agent": "Backup/1.0", **headers}
        return await self.client.get(path, params=params, headers=sent)


SimFactory = Callable[..., Awaitable[Sim]]


@pytest_asyncio.fixture
async def make_sim() -> AsyncIterator[SimFactory]:
    """A factory of simulators (config fields as keyword overrides); all are shut down afterwards."""
    async with contextlib.AsyncExitStack() as stack:

        async def factory(**overrides: Any) -> Sim:
            app = create_app(replace(TEST_CONFIG, **overrides))
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app)
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://sim")
            )
            return Sim(app, client)

        yield factory


@pytest_asyncio.fixture
async def sim(make_sim: SimFactory) -> Sim:
    """A simulator with the test defaults (seed 7, device interval 0)."""
    return await make_sim()


@pytest.fixture
def served_simulator() -> Iterator[str]:
    """A simulator subprocess (client `app`/`pw`, device interval 0); yields its base URL, then stops it."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "simulator",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--seed",
        "5",
        "--device-interval",
        "0",
        "--client-id",
        "app",
        "--client-secret",
        "pw",
    ]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"{base}/_sim/stats", timeout=0.5)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"simulator did not start on port {port}") from None
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)
