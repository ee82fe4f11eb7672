"""A simulator reached in process (ASGI) or over real HTTP (uvicorn on a loopback port), plus our client."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from allegro_api import AllegroAuth, AllegroClient, Granted, RateGovernor, TokenPair

CLIENT_ID = "demo-client"
CLIENT_SECRET = "demo-secret"
USER_AGENT = "Allegro-Orders-Backup/0.1.0 (+https://example.com/allegro-orders-backup)"


@contextmanager
def serve_over_http(app: FastAPI, **config: Any) -> Iterator[str]:
    """Run `app` under uvicorn in a thread on a free 127.0.0.1 port; yields the base URL. `config`: more
    `uvicorn.Config` arguments (`http=...`)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@dataclass
class Harness:
    """One simulator, an httpx client that records what it sends, and our auth and API clients."""

    http: httpx.AsyncClient
    base_url: str
    transport_kind: str
    sent: list[httpx.Request] = field(default_factory=list)

    def auth(self, *, client_secret: str = CLIENT_SECRET) -> AllegroAuth:
        """Our OAuth client against the simulator."""
        return AllegroAuth(
            self.http, auth_url=self.base_url, client_id=CLIENT_ID, client_secret=client_secret
        )

    def client(
        self,
        *,
        max_retries: int = 3,
        backoff_base: float = 0.001,
        governor: RateGovernor | None = None,
        user_agent: str = USER_AGENT,
    ) -> AllegroClient:
        """Our REST client against the simulator, with short backoff for fast tests."""
        return AllegroClient(
            self.http,
            api_url=self.base_url,
            user_agent=user_agent,
            max_retries=max_retries,
            backoff_base=backoff_base,
            governor=governor,
        )

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        """Call the simulator's control API, failing on anything but 200."""
        response = await self.http.request(method, f"{self.base_url}/_sim{path}", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    async def seller(self, orders: int = 0, *, days_back: float = 30, with_events: bool = True) -> str:
        """A new seller, optionally with orders."""
        seller_id: str = (await self.control("POST", "/sellers", {}))["seller_id"]
        if orders:
            body = {"count": orders, "days_back": days_back, "with_events": with_events}
            await self.control("POST", f"/sellers/{seller_id}/orders", body)
        return seller_id

    async def link(self, seller_id: str, scope: str | None = None) -> TokenPair:
        """Run the device flow with our auth client and the simulator's approval hook."""
        auth = self.auth()
        device = await auth.start_device_flow(scope)
        await self.control("POST", "/device/approve", {"user_code": device.user_code, "seller_id": seller_id})
        outcome = await auth.poll_device_token(device.device_code)
        assert isinstance(outcome, Granted), outcome
        return outcome.tokens

    async def faults(self, **settings: Any) -> None:
        """Change the simulator's fault settings."""
        await self.control("PUT", "/faults", settings)

    async def requests_made(self) -> dict[str, int]:
        """The simulator's per-route request counters."""
        counters: dict[str, int] = (await self.control("GET", "/stats"))["requests"]
        return counters
