"""`python -m simulator` over real HTTP on a free loopback port: link a seller and read its orders."""

import base64
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
VENDOR = "application/vnd.allegro.public.v1+json"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def served_simulator() -> Iterator[str]:
    """A simulator subprocess; yields its base URL and stops it afterwards."""
    port = _free_port()
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


def test_device_flow_and_listing_over_http(served_simulator: str) -> None:
    basic = {"Authorization": "Basic " + base64.b64encode(b"app:pw").decode()}
    with httpx.Client(base_url=served_simulator, timeout=10) as client:
        seller_id = client.post("/_sim/sellers", json={"login": "shop"}).json()["seller_id"]
        assert client.post(f"/_sim/sellers/{seller_id}/orders", json={"count": 120}).status_code == 200
        device = client.post("/auth/oauth/device", data={"client_id": "app"}, headers=basic).json()
        assert device["verification_uri"] == f"{served_simulator}/skojarz-aplikacje"
        client.post("/_sim/device/approve", json={"user_code": device["user_code"], "seller_id": seller_id})
        grant = {
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": device["device_code"],
        }
        token = client.post("/auth/oauth/token", data=grant, headers=basic).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Accept": VENDOR, "User-Agent": "Backup/1.0"}
        page = client.get("/order/checkout-forms", params={"offset": 100}, headers=headers)
        assert page.status_code == 200
        assert page.headers["content-type"] == VENDOR
        assert (page.json()["count"], page.json()["totalCount"]) == (20, 120)
        stats = client.get("/_sim/stats").json()
        assert stats["requests"]["GET /order/checkout-forms 200"] == 1
