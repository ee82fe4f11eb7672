"""The API process while its PostgreSQL (one of the test's own) is stopped: 503 problem documents with
Retry-After, a not-ready /readyz, and normal answers again once the database is back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cli.processes import ProcessGroup, tail, wait_for_port
from tests.environments import free_port
from tests.private_services import PrivateService, migrated_postgres

pytestmark = pytest.mark.slow

KEY = "outage-test-key"


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[PrivateService]:
    with migrated_postgres(tmp_path) as service:
        yield service


@pytest.fixture
def api_url(postgres: PrivateService, kafka_bootstrap: str, tmp_path: Path) -> Iterator[str]:
    """`python -m api` on a free port, on the private database."""
    port = free_port()
    group = ProcessGroup(tmp_path / "logs")
    env = {
        "DATABASE__URL": postgres.database_url,
        "KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
        "API__KEYS": KEY,
        "LOG_LEVEL": "WARNING",
    }
    child = group.start("api", ["api", "--port", str(port), "--no-access-log"], env)
    try:
        wait_for_port("127.0.0.1", port, timeout=30, child=child)
        yield f"http://127.0.0.1:{port}"
    finally:
        log = tail(child.log_path, 40)
        group.stop_all(timeout=10)
        print(log)  # noqa: T201 - shown by pytest only when the test failed


PATHS = ("/tokens", "/orders", "/orders/form-1", "/orders/export", "/sync-history")


async def test_requests_answer_503_with_retry_after_while_the_database_is_stopped(
    postgres: PrivateService, api_url: str
) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=f"{api_url}/v1/users/u-1", headers=headers, timeout=30) as api:
        assert (await api.get("/tokens")).status_code == 200  # pooled connections exist before the stop
        await asyncio.to_thread(postgres.stop)
        for path in PATHS:
            response = await api.get(path)
            assert response.status_code == 503, (path, response.text)
            assert response.headers["retry-after"].isdigit()
            assert response.headers["content-type"] == "application/problem+json"
            problem = response.json()
            assert problem["status"] == 503
            assert problem["type"].endswith(":database-unavailable")
        readiness = await api.get(f"{api_url}/readyz")
        assert readiness.status_code == 503
        assert readiness.json()["checks"]["postgresql"]["ok"] is False

        await asyncio.to_thread(postgres.start)
        assert (await api.get("/tokens")).status_code == 200
        assert (await api.get("/orders/export")).status_code == 200
