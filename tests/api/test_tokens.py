"""Linking through the simulated Allegro device flow, token state, unlink, sync and resync requests."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from core.crypto import KeyRing
from core.settings import CryptoSettings
from tests.api.conftest import AppFactory, api_settings
from tests.api.rows import Rows

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SIM_CLIENT = {"Authorization": "Basic " + base64.b64encode(b"demo-client:demo-secret").decode()}


async def test_linking_starts_the_device_flow_and_stores_the_device_code_sealed(
    client: httpx.AsyncClient, sim: httpx.AsyncClient, rows: Rows, user_id: str
) -> None:
    response = await client.post(f"/v1/users/{user_id}/tokens")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "pending" and body["interval"] >= 0
    assert body["verification_uri_complete"].endswith(body["user_code"])
    assert response.headers["location"] == f"/v1/users/{user_id}/tokens/{body['token_id']}"
    assert datetime.fromisoformat(body["expires_at"]) > datetime.now(UTC)

    stored = await rows.token_row(uuid.UUID(body["token_id"]))
    assert stored["status"] == "pending" and stored["user_code"] == body["user_code"]
    assert stored["device_next_poll_at"] is not None and stored["device_interval"] == body["interval"]
    device_code = KeyRing.parse(CryptoSettings().keys.get_secret_value()).open(stored["device_code"])
    assert device_code not in stored["device_code"]
    # The sealed value is the simulator's real device code: approving it yields tokens.
    seller = (await sim.post("/_sim/sellers", json={})).json()["seller_id"]
    approved = await sim.post(
        "/_sim/device/approve", json={"user_code": body["user_code"], "seller_id": seller}
    )
    assert approved.status_code == 200
    granted = await sim.post(
        "/auth/oauth/token", data={"grant_type": DEVICE_GRANT, "device_code": device_code}, headers=SIM_CLIENT
    )
    assert granted.status_code == 200


async def test_pending_token_shows_its_link_and_never_the_device_code(
    client: httpx.AsyncClient, rows: Rows, user_id: str
) -> None:
    token_id = (await client.post(f"/v1/users/{user_id}/tokens")).json()["token_id"]
    stored = await rows.token_row(uuid.UUID(token_id))
    response = await client.get(f"/v1/users/{user_id}/tokens/{token_id}")
    assert response.status_code == 200
    assert response.json()["link"]["user_code"] == stored["user_code"]
    assert stored["device_code"] not in response.text
    assert "device_code" not in response.text


async def test_link_is_502_when_allegro_rejects_our_client(
    make_client: AppFactory, database_url: str, kafka_bootstrap: str, user_id: str
) -> None:
    settings = api_settings(database_url, kafka_bootstrap, client_secret="not-the-secret")
    client = await make_client(settings=settings)
    response = await client.post(f"/v1/users/{user_id}/tokens")
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("allegro-error")
    assert (await client.get(f"/v1/users/{user_id}/tokens")).json()["items"] == []


async def test_link_is_503_when_allegro_is_unreachable(
    make_client: AppFactory, database_url: str, kafka_bootstrap: str, user_id: str
) -> None:
    settings = api_settings(database_url, kafka_bootstrap, auth_url="http://127.0.0.1:1")
    client = await make_client(settings=settings, transport=httpx.AsyncHTTPTransport())
    response = await client.post(f"/v1/users/{user_id}/tokens")
    assert response.status_code == 503
    assert response.json()["type"].endswith("allegro-unavailable")


async def test_token_state_reports_sync_progress_lag_and_counts(
    client: httpx.AsyncClient, rows: Rows, user_id: str
) -> None:
    last_event = datetime.now(UTC) - timedelta(seconds=90)
    token_id = await rows.token(
        seller_id="123",
        login="seller_login",
        event_cursor="2026-03-01T00:00:00Z-1",
        last_event_at=last_event,
        last_sync_at=last_event,
        last_success_at=last_event,
        last_polled_at=last_event + timedelta(seconds=30),
        last_error="boom",
        backfill_progress={"windows_done": 3},
        access_token="sealed-access-token-value",
        refresh_token="sealed-refresh-token-value",
    )
    form_id = await rows.order(token_id)
    await rows.revision(token_id, form_id, "r1", minutes=1)
    response = await client.get(f"/v1/users/{user_id}/tokens/{token_id}")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["seller_id"], body["login"]) == ("active", "123", "seller_login")
    assert body["event_cursor"] == "2026-03-01T00:00:00Z-1"
    assert body["backfill"]["progress"] == {"windows_done": 3}
    assert body["last_error"] == "boom" and body["link"] is None
    assert datetime.fromisoformat(body["last_polled_at"]) == last_event + timedelta(seconds=30)
    assert 89 <= body["journal_lag_seconds"] < 150
    assert (body["orders_stored"], body["revisions_stored"]) == (1, 1)
    assert "sealed-access-token-value" not in response.text
    assert "sealed-refresh-token-value" not in response.text


async def test_token_list_holds_only_the_users_tokens_newest_first(
    client: httpx.AsyncClient, rows: Rows, user_id: str
) -> None:
    first = await rows.token(access_token="secret-a")
    second = await rows.token(status="unlinked")
    await rows.token(user_id=f"{user_id}-other")
    response = await client.get(f"/v1/users/{user_id}/tokens")
    assert response.status_code == 200
    ids = [item["id"] for item in response.json()["items"]]
    assert sorted(ids) == sorted([str(first), str(second)])
    assert "secret-a" not in response.text


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("DELETE", "", None),
        ("POST", "/sync", None),
        ("POST", "/reconcile", None),
        ("POST", "/resync", {"source": "kafka", "since": "2026-01-01T00:00:00Z"}),
    ],
)
async def test_another_users_token_is_404(
    client: httpx.AsyncClient, rows: Rows, user_id: str, method: str, suffix: str, body: object
) -> None:
    foreign = await rows.token(user_id=f"{user_id}-other", access_token="theirs")
    response = await client.request(method, f"/v1/users/{user_id}/tokens/{foreign}{suffix}", json=body)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert (await rows.token_row(foreign))["status"] == "active"


async def test_malformed_ids_are_422_listing_the_field(client: httpx.AsyncClient, user_id: str) -> None:
    response = await client.get(f"/v1/users/{user_id}/tokens/not-a-uuid")
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["path", "token_id"]
    response = await client.get("/v1/users/bad%20user/tokens")
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["path", "user_id"]
    assert (await client.get(f"/v1/users/{'u' * 129}/tokens")).status_code == 422


async def test_unlink_wipes_secrets_keeps_orders_and_is_idempotent(
    client: httpx.AsyncClient, rows: Rows, user_id: str
) -> None:
    token_id = await rows.token(access_token="a", refresh_token="r", device_code="d")
    await rows.order(token_id)
    response = await client.delete(f"/v1/users/{user_id}/tokens/{token_id}")
    assert (response.status_code, response.content) == (204, b"")
    stored = await rows.token_row(token_id)
    assert stored["status"] == "unlinked"
    assert (stored["access_token"], stored["refresh_token"], stored["device_code"]) == (None, None, None)
    assert await rows.count_orders(token_id) == 1
    assert (await client.delete(f"/v1/users/{user_id}/tokens/{token_id}")).status_code == 204
    assert (await client.get(f"/v1/users/{user_id}/orders")).json()["items"][0]["token_id"] == str(token_id)


async def test_sync_request_is_recorded_for_the_poller(
    client: httpx.AsyncClient, rows: Rows, user_id: str
) -> None:
    token_id = await rows.token()
    response = await client.post(f"/v1/users/{user_id}/tokens/{token_id}/sync")
    assert response.status_code == 202
    assert response.json()["kind"] == "sync"
    stored = await rows.token_row(token_id)
    assert stored["sync_requested_at"] == datetime.fromisoformat(response.json()["requested_at"])


async def test_reconcile_request_is_recorded_with_a_sync_request_that_wakes_the_token(
    client: httpx.AsyncClient, rows: Rows, user_id: str
) -> None:
    token_id = await rows.token()
    response = await client.post(f"/v1/users/{user_id}/tokens/{token_id}/reconcile")
    assert response.status_code == 202, response.text
    assert response.json()["kind"] == "reconcile"
    stored = await rows.token_row(token_id)
    requested_at = datetime.fromisoformat(response.json()["requested_at"])
    assert stored["reconcile_requested_at"] == requested_at
    assert stored["sync_requested_at"] == requested_at


async def test_reconcile_of_a_token_that_is_not_active_is_409(
    client: httpx.AsyncClient, rows: Rows, user_id: str
) -> None:
    token_id = await rows.token(status="needs_reauth")
    response = await client.post(f"/v1/users/{user_id}/tokens/{token_id}/reconcile")
    assert response.status_code == 409
    assert (await rows.token_row(token_id))["reconcile_requested_at"] is None


async def test_sync_of_a_token_that_is_not_active_is_409(
    client: httpx.AsyncClient, rows: Rows, user_id: str
) -> None:
    token_id = await rows.token(status="needs_reauth")
    response = await client.post(f"/v1/users/{user_id}/tokens/{token_id}/sync")
    assert response.status_code == 409
    assert (await rows.token_row(token_id))["sync_requested_at"] is None


async def test_resync_request_records_source_and_since(
    client: httpx.AsyncClient, rows: Rows, user_id: str
) -> None:
    token_id = await rows.token()
    body = {"source": "allegro", "since": "2026-01-05T10:00:00+02:00"}
    response = await client.post(f"/v1/users/{user_id}/tokens/{token_id}/resync", json=body)
    assert response.status_code == 202, response.text
    stored = await rows.token_row(token_id)
    assert stored["resync_source"] == "allegro"
    assert stored["resync_since"] == datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    assert stored["resync_requested_at"] is not None
    state = (await client.get(f"/v1/users/{user_id}/tokens/{token_id}")).json()
    assert state["resync"]["source"] == "allegro"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"source": "ftp", "since": "2026-01-01T00:00:00Z"}, "source"),
        ({"source": "kafka", "since": "2026-01-01T00:00:00"}, "since"),
        ({"source": "kafka", "since": "2999-01-01T00:00:00Z"}, "since"),
        ({"source": "kafka"}, "since"),
        ({"source": "kafka", "since": "2026-01-01T00:00:00Z", "extra": 1}, "extra"),
    ],
)
async def test_invalid_resync_body_is_422_naming_the_field(
    client: httpx.AsyncClient, rows: Rows, user_id: str, body: dict[str, object], field: str
) -> None:
    token_id = await rows.token()
    response = await client.post(f"/v1/users/{user_id}/tokens/{token_id}/resync", json=body)
    assert response.status_code == 422
    assert ["body", field] == response.json()["errors"][0]["loc"]
    assert (await rows.token_row(token_id))["resync_requested_at"] is None


@pytest.mark.parametrize("path", ["", "/sync", "/reconcile"])
async def test_requests_without_options_take_no_body_or_an_empty_object_and_refuse_any_option(
    client: httpx.AsyncClient, rows: Rows, user_id: str, path: str
) -> None:
    url = f"/v1/users/{user_id}/tokens" + (f"/{await rows.token()}{path}" if path else "")
    refused = await client.post(url, json={"scope": "allegro:api:orders:read"})
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["loc"] == ["body", "scope"]
    assert (await client.post(url, json={})).status_code in (201, 202)
    assert (await client.post(url)).status_code in (201, 202)
