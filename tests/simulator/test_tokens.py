"""Token shape, refresh rotation with its grace period, revocation and expiry."""

import asyncio
import base64

import orjson
import pytest

from tests.simulator.conftest import Sim, SimFactory

pytestmark = pytest.mark.asyncio


def _payload(token: str) -> dict[str, object]:
    part = token.split(".")[1]
    decoded: dict[str, object] = orjson.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


async def test_access_token_is_jwt_shaped_with_seller_and_client(sim: Sim) -> None:
    seller_id = await sim.seller()
    token = await sim.link(seller_id)
    claims = _payload(token["access_token"])
    assert claims["user_name"] == seller_id
    assert claims["client_id"] == "demo-client"
    assert "allegro:api:orders:read" in claims["scope"]  # type: ignore[operator]
    assert {"exp", "jti"} <= claims.keys()


async def test_refresh_rotates_pair_and_revokes_old_access_token(sim: Sim) -> None:
    token = await sim.link(await sim.seller())
    refreshed = await sim.refresh(token["refresh_token"])
    assert refreshed.status_code == 200
    new = refreshed.json()
    assert new["refresh_token"] != token["refresh_token"]
    old_use = await sim.api("/order/event-stats", token["access_token"])
    assert old_use.status_code == 401
    assert old_use.json()["error"] == "invalid_token"
    assert old_use.json()["error_description"] == f"Access token expired: {token['access_token']}"
    assert "invalid_token" in old_use.headers["www-authenticate"]
    assert (await sim.api("/order/event-stats", new["access_token"])).status_code == 200


async def test_old_refresh_token_works_within_grace_then_dies(make_sim: SimFactory) -> None:
    sim = await make_sim(refresh_grace_seconds=0.5)
    token = await sim.link(await sim.seller())
    assert (await sim.refresh(token["refresh_token"])).status_code == 200
    assert (await sim.refresh(token["refresh_token"])).status_code == 200
    await asyncio.sleep(0.6)
    late = await sim.refresh(token["refresh_token"])
    assert late.status_code == 400
    assert late.json() == {
        "error": "invalid_grant",
        "error_description": f"Invalid refresh token: {token['refresh_token']}",
    }


async def test_malformed_token_cannot_be_converted(sim: Sim) -> None:
    response = await sim.api("/order/event-stats", "not-a-jwt")
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_token",
        "error_description": "Cannot convert access token to JSON",
    }


async def test_short_lived_access_token_expires(make_sim: SimFactory) -> None:
    sim = await make_sim(access_token_expires_in=1)
    token = await sim.link(await sim.seller())
    assert (await sim.api("/order/event-stats", token["access_token"])).status_code == 200
    await asyncio.sleep(1.05)
    assert (await sim.api("/order/event-stats", token["access_token"])).status_code == 401


async def test_expire_hook_kills_access_but_refresh_works(sim: Sim) -> None:
    seller_id = await sim.seller()
    token = await sim.link(seller_id)
    await sim.control("POST", "/tokens/expire", {"seller_id": seller_id})
    assert (await sim.api("/order/event-stats", token["access_token"])).status_code == 401
    assert (await sim.refresh(token["refresh_token"])).status_code == 200


async def test_revoke_hook_kills_access_and_refresh(sim: Sim) -> None:
    seller_id = await sim.seller()
    token = await sim.link(seller_id)
    await sim.control("POST", "/tokens/revoke", {"seller_id": seller_id})
    assert (await sim.api("/order/event-stats", token["access_token"])).status_code == 401
    refused = await sim.refresh(token["refresh_token"])
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")
