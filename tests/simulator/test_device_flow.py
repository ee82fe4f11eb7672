"""Device-code flow and token endpoint outcomes (reference/allegro/README.md §1.2)."""

import asyncio
import re

import pytest

from tests.simulator.conftest import BASIC, Sim, SimFactory

pytestmark = pytest.mark.asyncio


async def test_device_authorisation_has_allegro_shape(sim: Sim) -> None:
    device = await sim.start_device()
    assert re.fullmatch(r"[A-Za-z0-9]{32}", device["device_code"])
    assert re.fullmatch(r"[a-z0-9]{9}", device["user_code"])
    assert device["expires_in"] == 3600
    assert device["verification_uri_complete"] == f"{device['verification_uri']}?code={device['user_code']}"


async def test_device_endpoint_rejects_bad_client_credentials(sim: Sim) -> None:
    response = await sim.client.post(
        "/auth/oauth/device", data={"client_id": "x"}, headers={"Authorization": "Basic eDp5"}
    )
    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized", "error_description": "Unauthorized"}


async def test_pending_then_token_once_then_invalid(sim: Sim) -> None:
    seller_id = await sim.seller()
    device = await sim.start_device()
    pending = await sim.poll(device["device_code"])
    assert (pending.status_code, pending.json()["error"]) == (400, "authorization_pending")
    await sim.control("POST", "/device/approve", {"user_code": device["user_code"], "seller_id": seller_id})
    granted = await sim.poll(device["device_code"])
    assert granted.status_code == 200
    assert granted.json()["expires_in"] == 43199
    again = await sim.poll(device["device_code"])
    assert again.status_code == 400
    assert again.json() == {"error": "invalid_request", "error_description": "Invalid device code"}


async def test_denied_code_answers_access_denied(sim: Sim) -> None:
    device = await sim.start_device()
    await sim.control("POST", "/device/deny", {"user_code": device["user_code"]})
    response = await sim.poll(device["device_code"])
    assert (response.status_code, response.json()) == (400, {"error": "access_denied"})


async def test_polling_faster_than_interval_answers_slow_down(make_sim: SimFactory) -> None:
    sim = await make_sim(device_poll_interval=5)
    device = await sim.start_device()
    first = await sim.poll(device["device_code"])
    second = await sim.poll(device["device_code"])
    assert first.json()["error"] == "authorization_pending"
    assert (second.status_code, second.json()) == (400, {"error": "slow_down"})


async def test_expired_and_unknown_codes_are_invalid(make_sim: SimFactory) -> None:
    sim = await make_sim(device_code_expires_in=1)
    device = await sim.start_device()
    await asyncio.sleep(1.05)
    expired = await sim.poll(device["device_code"])
    unknown = await sim.poll("A" * 32)
    for response in (expired, unknown):
        assert response.json() == {"error": "invalid_request", "error_description": "Invalid device code"}
    approve = await sim.client.post(
        "/_sim/device/approve", json={"user_code": device["user_code"], "seller_id": "1"}
    )
    assert approve.status_code == 404


async def test_missing_grant_type_and_query_parameters_are_ignored(sim: Sim) -> None:
    response = await sim.client.post(
        "/auth/oauth/token", params={"grant_type": "refresh_token"}, data={}, headers=BASIC
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "OAuth 2.0 Parameter: grant_type",
    }


async def test_token_endpoint_accepts_post_only(sim: Sim) -> None:
    response = await sim.client.get("/auth/oauth/token", headers=BASIC)
    assert response.status_code == 405
