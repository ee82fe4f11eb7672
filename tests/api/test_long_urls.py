"""Requests uvicorn refuses before the app sees them (an absurdly long query parameter, a malformed
request) answer problem JSON like every other bad input; served over real HTTP with the protocol that
`python -m api` selects."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from api.app import create_app
from api.http_protocol import MAX_URL_BYTES, PROTOCOL
from simulator.app import create_app as create_simulator
from simulator.config import SimulatorConfig
from tests.allegro_api.harness import serve_over_http
from tests.api.conftest import API_KEY, api_settings

ABSURD = "a" * 100_000


@pytest.fixture
def base_url(database_url: str, kafka_bootstrap: str) -> Iterator[str]:
    """The API under uvicorn with `api.http_protocol` on a free loopback port."""
    simulator = create_simulator(SimulatorConfig(seed=5, device_poll_interval=0))
    app = create_app(
        api_settings(database_url, kafka_bootstrap), allegro_transport=httpx.ASGITransport(app=simulator)
    )
    with serve_over_http(app, http=PROTOCOL) as url:
        yield url


async def get(base_url: str, path: str, **params: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        return await client.get(path, params=params)


async def send_raw(base_url: str, request: bytes) -> httpx.Response:
    """Send bytes over one connection and read the answer up to the server's close (httpx itself refuses
    URLs as long as these)."""
    address = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    writer.write(request)
    answer = await reader.read()
    writer.close()
    head, _, content = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = [(name, value) for name, _, value in (line.partition(": ") for line in header_lines)]
    return httpx.Response(int(status_line.split()[1]), headers=headers, content=content)


async def get_raw(base_url: str, target: str) -> httpx.Response:
    request = f"GET {target} HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer {API_KEY}\r\n\r\n"
    return await send_raw(base_url, request.encode())


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem document of a response that must be one, with `status`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["type"].startswith("urn:allegro-orders-backup:problem:")
    assert ABSURD[:100] not in response.text  # the value is never echoed
    return body


@pytest.mark.parametrize(
    ("target", "parameter"),
    [
        (f"/v1/users/u-1/orders?cursor={ABSURD}", "cursor"),
        (f"/v1/users/u-1/sync-history?limit=5&cursor={ABSURD}", "cursor"),
        (f"/v1/users/u-1/orders/export?format=csv&buyer_login={ABSURD}", "buyer_login"),
        (f"/v1/users/u-1/tokens?anything={ABSURD}", "anything"),
    ],
)
async def test_an_absurdly_long_query_parameter_is_414_problem_json_naming_it(
    base_url: str, target: str, parameter: str
) -> None:
    body = problem(await get_raw(base_url, target), 414)
    assert body["errors"] == [{"loc": ["query", parameter], "msg": body["detail"], "type": "string_too_long"}]
    assert parameter in body["detail"] and str(MAX_URL_BYTES) in body["detail"]


async def test_an_absurdly_long_path_is_414_problem_json_without_a_parameter(base_url: str) -> None:
    body = problem(await get_raw(base_url, f"/v1/users/{ABSURD}/orders"), 414)
    assert "errors" not in body


async def test_a_long_cursor_within_the_url_limit_is_the_apps_422(base_url: str) -> None:
    for path in ("/v1/users/u-1/orders", "/v1/users/u-1/sync-history"):
        body = problem(await get(base_url, path, cursor="a" * (MAX_URL_BYTES - 100)), 422)
        assert body["errors"][0]["loc"] == ["query", "cursor"]


async def test_a_malformed_request_is_400_problem_json(base_url: str) -> None:
    # A header line without its colon.
    body = problem(await send_raw(base_url, b"GET /health HTTP/1.1\r\nHost api\r\n\r\n"), 400)
    assert body["type"].endswith(":invalid-http-request")
