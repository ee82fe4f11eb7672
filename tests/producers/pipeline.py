"""The real path for poller tests that check what ends in PostgreSQL: a processor worker subprocess next
to the in-process poller, on the test's topics and the poller database, and readers of what it stored."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from core.settings import KafkaSettings
from db.engine import asyncpg_dsn
from tests.processors.worker import Worker, worker_env


@pytest.fixture
async def worker(
    kafka_settings: KafkaSettings, poller_database_url: str, tmp_path: Path
) -> AsyncIterator[Worker]:
    """A processor worker storing this test's snapshots into the poller database."""
    env = worker_env(kafka_settings, poller_database_url, f"w{uuid.uuid4().hex[:8]}", tmp_path / "faust")
    running = Worker(env, tmp_path / "worker.log").start()
    try:
        yield running
    finally:
        running.stop()


async def stored_orders(database_url: str, token_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    """The token's stored orders by form id, each with its marks and the revisions in its history."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await conn.fetch(
            "SELECT o.checkout_form_id, o.revision, o.fulfillment_status, o.superseded_at, o.superseded_by,"
            " o.missing_upstream_since, ARRAY(SELECT r.revision FROM order_revisions r"
            "  WHERE r.token_id = o.token_id AND r.checkout_form_id = o.checkout_form_id) AS revisions"
            " FROM orders o WHERE o.token_id = $1",
            token_id,
        )
    finally:
        await conn.close()
    return {row["checkout_form_id"]: dict(row) for row in rows}
