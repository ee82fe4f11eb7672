"""Liveness, readiness against the real PostgreSQL and Kafka, and request metrics."""

from __future__ import annotations

import httpx
from sqlalchemy import make_url

from tests.api.conftest import AppFactory, api_settings


async def test_healthz_says_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_is_ready_when_postgresql_and_kafka_answer(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["postgresql"]["ok"] and body["checks"]["kafka"]["ok"]


async def test_readyz_is_503_naming_kafka_when_the_broker_is_unreachable(
    make_client: AppFactory, database_url: str
) -> None:
    client = await make_client(settings=api_settings(database_url, "127.0.0.1:1"))
    response = await client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["postgresql"] == {"ok": True, "error": None}
    assert checks["kafka"]["ok"] is False and checks["kafka"]["error"]


async def test_readyz_is_503_naming_postgresql_when_the_database_refuses(
    make_client: AppFactory, database_url: str, kafka_bootstrap: str
) -> None:
    url = (
        make_url(database_url).set(username="nobody", password="wrong").render_as_string(hide_password=False)
    )
    client = await make_client(settings=api_settings(url, kafka_bootstrap))
    response = await client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["postgresql"]["ok"] is False and checks["kafka"]["ok"] is True


async def test_metrics_count_requests_by_route_template_and_status(client: httpx.AsyncClient) -> None:
    await client.get("/v1/users/someone/orders/abc")
    await client.get("/v1/users/someone/tokens", headers={"Authorization": "Bearer wrong"})
    text = (await client.get("/metrics")).text
    order_route = "/v1/users/{user_id}/orders/{checkout_form_id}"
    assert f'api_requests_total{{method="GET",route="{order_route}",status="404"}} 1.0' in text
    assert 'route="/v1/users/{user_id}/tokens",status="401"' in text
    assert "api_request_duration_seconds_bucket" in text


async def test_unknown_path_is_a_problem_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v2/nothing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
