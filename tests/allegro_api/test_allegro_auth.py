"""The device flow and refresh against the simulator: every outcome is a value, dead tokens are errors."""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import parse_qs

import pytest

from allegro_api import (
    AccessTokenExpired,
    ClientAuthFailed,
    Denied,
    Granted,
    InvalidCode,
    InvalidGrant,
    Pending,
    SlowDown,
)
from allegro_api.retrying import Disposition, classify
from tests.allegro_api.conftest import HarnessFactory
from tests.allegro_api.harness import CLIENT_ID, CLIENT_SECRET, Harness


async def test_device_flow_start_sends_basic_auth_and_a_form_body(harness: Harness) -> None:
    device = await harness.auth().start_device_flow(["allegro:api:orders:read", "allegro:api:profile:read"])
    assert len(device.device_code) == 32
    assert len(device.user_code) == 9
    assert device.verification_uri.endswith("/skojarz-aplikacje")
    assert device.verification_uri_complete == f"{device.verification_uri}?code={device.user_code}"
    assert device.expires_in == 3600
    request = harness.sent[-1]
    assert request.url.path == "/auth/oauth/device"
    assert request.url.query == b""  # parameters travel in the body only
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    body = parse_qs(request.content.decode())
    assert body == {"client_id": [CLIENT_ID], "scope": ["allegro:api:orders:read allegro:api:profile:read"]}
    assert device.device_code not in repr(device)


async def test_poll_before_approval_is_pending(harness: Harness) -> None:
    auth = harness.auth()
    device = await auth.start_device_flow()
    assert await auth.poll_device_token(device.device_code) == Pending()
    assert harness.sent[-1].url.query == b""


async def test_polling_faster_than_the_interval_is_slow_down(make_harness: HarnessFactory) -> None:
    harness = await make_harness(device_poll_interval=5)
    auth = harness.auth()
    device = await auth.start_device_flow()
    assert await auth.poll_device_token(device.device_code) == Pending()
    outcome = await auth.poll_device_token(device.device_code)
    assert isinstance(outcome, SlowDown)
    assert outcome.increment_seconds == 5


async def test_denied_by_the_user(harness: Harness) -> None:
    auth = harness.auth()
    device = await auth.start_device_flow()
    await harness.control("POST", "/device/deny", {"user_code": device.user_code})
    assert await auth.poll_device_token(device.device_code) == Denied()


async def test_approval_grants_tokens_once_then_the_code_is_invalid(harness: Harness) -> None:
    seller_id = await harness.seller()
    auth = harness.auth()
    device = await auth.start_device_flow("allegro:api:orders:read")
    await harness.control("POST", "/device/approve", {"user_code": device.user_code, "seller_id": seller_id})
    outcome = await auth.poll_device_token(device.device_code)
    assert isinstance(outcome, Granted)
    tokens = outcome.tokens
    assert tokens.seller_id == seller_id
    assert tokens.scopes == ["allegro:api:orders:read"]
    assert tokens.expires_in == 43199
    assert tokens.access_token not in repr(tokens) and tokens.refresh_token not in repr(tokens)
    again = await auth.poll_device_token(device.device_code)
    assert isinstance(again, InvalidCode)
    assert again.description == "Invalid device code"


async def test_unknown_device_code_is_invalid(harness: Harness) -> None:
    outcome = await harness.auth().poll_device_token("x" * 32)
    assert outcome == InvalidCode(error="invalid_request", description="Invalid device code")


async def test_expired_device_code_is_invalid(make_harness: HarnessFactory) -> None:
    harness = await make_harness(device_code_expires_in=0)
    auth = harness.auth()
    device = await auth.start_device_flow()
    assert isinstance(await auth.poll_device_token(device.device_code), InvalidCode)


async def test_wrong_client_secret_is_client_auth_failed(harness: Harness) -> None:
    with pytest.raises(ClientAuthFailed) as caught:
        await harness.auth(client_secret="wrong").start_device_flow()
    assert caught.value.status == 401
    assert classify(caught.value) is Disposition.FAILED


async def test_refresh_rotates_the_pair_and_revokes_the_old_access_token(harness: Harness) -> None:
    seller_id = await harness.seller(orders=1)
    first = await harness.link(seller_id)
    client = harness.client()
    await client.event_stats(access_token=first.access_token)
    second = await harness.auth().refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    request = harness.sent[-1]
    assert request.url.query == b""
    assert parse_qs(request.content.decode())["grant_type"] == ["refresh_token"]
    with pytest.raises(AccessTokenExpired) as caught:
        await client.event_stats(access_token=first.access_token)
    assert classify(caught.value) is Disposition.REFRESH and caught.value.status == 401
    assert caught.value.code == "invalid_token"
    stats = await client.event_stats(access_token=second.access_token)
    assert stats.latest_event is not None


async def test_old_refresh_token_works_within_the_grace_then_is_invalid_grant(
    make_harness: HarnessFactory,
) -> None:
    harness = await make_harness(refresh_grace_seconds=0.3)
    first = await harness.link(await harness.seller())
    auth = harness.auth()
    await auth.refresh(first.refresh_token)
    # A lost answer can be recovered by reusing the old refresh token inside the grace period.
    retried = await auth.refresh(first.refresh_token)
    assert retried.access_token
    await asyncio.sleep(0.35)
    with pytest.raises(InvalidGrant) as caught:
        await auth.refresh(first.refresh_token)
    assert classify(caught.value) is Disposition.REAUTH
    assert first.refresh_token not in str(caught.value)
    # The newest refresh token still works.
    assert (await auth.refresh(retried.refresh_token)).access_token


async def test_revoked_seller_needs_reauth(harness: Harness) -> None:
    seller_id = await harness.seller()
    tokens = await harness.link(seller_id)
    await harness.control("POST", "/tokens/revoke", {"seller_id": seller_id})
    with pytest.raises(AccessTokenExpired):
        await harness.client().event_stats(access_token=tokens.access_token)
    with pytest.raises(InvalidGrant):
        await harness.auth().refresh(tokens.refresh_token)


async def test_expired_access_token_is_401_and_a_refresh_recovers(harness: Harness) -> None:
    seller_id = await harness.seller(orders=2)
    tokens = await harness.link(seller_id)
    await harness.control("POST", "/tokens/expire", {"seller_id": seller_id})
    client = harness.client()
    with pytest.raises(AccessTokenExpired):
        await client.checkout_forms(access_token=tokens.access_token)
    fresh = await harness.auth().refresh(tokens.refresh_token)
    page = await client.checkout_forms(access_token=fresh.access_token)
    assert page.total_count == 2
