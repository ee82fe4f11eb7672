"""API keys: every /v1 route needs one; health, metrics and docs do not."""

from __future__ import annotations

import httpx
import pytest

from api.security import ApiKeys
from tests.api.conftest import SECOND_API_KEY

V1_ROUTES = [
    ("GET", "/v1/users/u1/tokens"),
    ("POST", "/v1/users/u1/tokens"),
    ("GET", "/v1/users/u1/tokens/00000000-0000-0000-0000-000000000001"),
    ("DELETE", "/v1/users/u1/tokens/00000000-0000-0000-0000-000000000001"),
    ("POST", "/v1/users/u1/tokens/00000000-0000-0000-0000-000000000001/sync"),
    ("POST", "/v1/users/u1/tokens/00000000-0000-0000-0000-000000000001/resync"),
    ("GET", "/v1/users/u1/orders"),
    ("GET", "/v1/users/u1/orders/export"),
    ("GET", "/v1/users/u1/orders/abc"),
    ("GET", "/v1/users/u1/orders/abc/revisions"),
    ("GET", "/v1/users/u1/sync-history"),
]


@pytest.mark.parametrize(("method", "path"), V1_ROUTES)
async def test_v1_route_without_key_is_401_problem_with_challenge(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, path, headers={"Authorization": ""})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["status"] == 401


async def test_wrong_key_is_401_with_invalid_token_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/users/u1/tokens", headers={"Authorization": "Bearer not-a-key"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.json()["detail"] == "unknown API key"


async def test_key_with_other_scheme_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/users/u1/tokens", headers={"Authorization": "Basic dGVzdDp0ZXN0"})
    assert response.status_code == 401


async def test_every_configured_key_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/users/u1/tokens", headers={"Authorization": f"Bearer {SECOND_API_KEY}"})
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/metrics", "/openapi.json", "/docs"])
async def test_health_metrics_and_docs_need_no_key(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, headers={"Authorization": ""})
    assert response.status_code == 200


def test_key_list_ignores_blanks_and_refuses_empty() -> None:
    keys = ApiKeys.parse(" a , ,b ")
    assert keys.keys == (b"a", b"b")
    assert keys.accepts("b") and not keys.accepts("ab") and not keys.accepts("")
    with pytest.raises(ValueError, match="at least one key"):
        ApiKeys.parse(" , ")


def test_key_prefix_or_extension_is_rejected() -> None:
    keys = ApiKeys.parse("secret-key")
    assert not keys.accepts("secret-ke")
    assert not keys.accepts("secret-key2")
    assert not keys.accepts("sécret-key")
