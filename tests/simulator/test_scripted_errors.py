"""Scripted errors of the control API: matched by path prefix (and grant), counted down, with Allegro's
body shapes, HTML pages, and echoes of the request's credentials."""

from typing import Any

import pytest

from tests.simulator.conftest import Sim

pytestmark = pytest.mark.asyncio


async def _linked(sim: Sim) -> tuple[str, dict[str, Any]]:
    seller_id = await sim.seller(orders=1)
    return seller_id, await sim.link(seller_id)


async def test_a_counted_401_echoes_the_token_then_the_real_answer_returns(sim: Sim) -> None:
    _, tokens = await _linked(sim)
    rule = {"path": "/order/events", "status": 401, "echo": True, "count": 1}
    await sim.control("PUT", "/faults", {"errors": [rule]})
    first = await sim.api("/order/events", tokens["access_token"])
    assert first.status_code == 401
    assert first.json() == {
        "error": "invalid_token",
        "error_description": f"Access token expired: {tokens['access_token']}",
    }
    assert (await sim.api("/order/events", tokens["access_token"])).status_code == 200
    assert (await sim.control("GET", "/faults"))["errors"] == []


async def test_an_html_page_and_a_lasting_403_by_path_prefix(sim: Sim) -> None:
    _, tokens = await _linked(sim)
    rules = [
        {"path": "/order/checkout-forms", "status": 408, "html": True, "count": 1},
        {"path": "/order/", "status": 403},
    ]
    await sim.control("PUT", "/faults", {"errors": rules})
    page = await sim.api("/order/checkout-forms", tokens["access_token"])
    assert page.status_code == 408
    assert page.headers["content-type"].startswith("text/html")
    assert "<h1>408 Request Timeout</h1>" in page.text
    for path in ("/order/checkout-forms", "/order/events", "/order/event-stats"):
        denied = await sim.api(path, tokens["access_token"])
        assert denied.status_code == 403
        assert denied.json()["errors"][0]["code"] == "AccessDenied"
    assert [r["count"] for r in (await sim.control("GET", "/faults"))["errors"]] == [None]


async def test_token_endpoint_errors_echo_the_grant_credential_and_client_secret(sim: Sim) -> None:
    _, tokens = await _linked(sim)
    device = await sim.start_device()
    rules = [
        {"path": "/auth/oauth/token", "grant_type": "refresh_token", "status": 500, "echo": True, "count": 1},
        {"path": "/auth/oauth/token", "grant_type": "device_code", "status": 400, "echo": True, "count": 1},
    ]
    await sim.control("PUT", "/faults", {"errors": rules})
    refreshed = await sim.refresh(tokens["refresh_token"])
    polled = await sim.poll(device["device_code"])
    assert refreshed.status_code == 500
    assert tokens["refresh_token"] in refreshed.json()["error_description"]
    assert "demo-secret" in refreshed.json()["error_description"]
    assert polled.status_code == 400
    assert device["device_code"] in polled.json()["error_description"]
    # Used up: the real answers again (the refresh token was never spent by the scripted answer).
    assert (await sim.refresh(tokens["refresh_token"])).status_code == 200
    assert (await sim.poll(device["device_code"])).json()["error"] == "authorization_pending"
