"""A real broker outage: a Kafka node of this test's own, stopped while the poller has a page to publish."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy.ext.asyncio import AsyncEngine

from core.settings import KafkaSettings
from core.topics import ensure_topics, topic_specs
from tests.environments import free_port
from tests.producers.conftest import (
    Sim,
    make_settings,
    open_snapshot_reader,
    running_poller,
    token_row,
    wait_for,
)
from tests.producers.test_sync_faults import _cursor_moved_past, _field, _linked_and_synced

pytestmark = pytest.mark.slow

STACK = Path(__file__).resolve().parents[2] / "scripts" / "stack"


class Broker:
    """A second single-node Kafka started through the launcher, with a state folder of its own."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "STACK_DIR": str(workdir / "stack"),
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(free_port()),
        }

    @property
    def bootstrap(self) -> str:
        """Where clients connect."""
        return f"127.0.0.1:{self.port}"

    def run(self, command: str) -> None:
        """`scripts/stack up|down` for this node only (the shared PostgreSQL answers, so it is left alone)."""
        subprocess.run([str(STACK), command], env=self.env, check=True, capture_output=True, timeout=120)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    node = Broker(tmp_path)
    node.run("up")
    try:
        yield node
    finally:
        node.run("down")


async def test_cursor_stays_while_the_broker_is_down_and_nothing_is_skipped_after_it_returns(
    broker: Broker, sim: Sim, db: AsyncEngine, poller_database_url: str
) -> None:
    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap).prefixed(
        f"o{uuid.uuid4().hex[:8]}", partitions=2
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        await ensure_topics(admin, topic_specs(kafka), 1)
    finally:
        await admin.close()
    settings = make_settings(sim, kafka, poller_database_url)
    async with open_snapshot_reader(kafka) as snapshots:
        seller, token_id = await _linked_and_synced(sim, db, snapshots, settings)
        already = set(snapshots.revisions(token_id).items())
    cursor_before = await _field(db, token_id, "event_cursor")

    synced_before = await _field(db, token_id, "last_sync_at")
    async with running_poller(settings, kafka_request_timeout_ms=1500):
        # Stop the broker once this poller owns the token and polls its journal.
        await wait_for(lambda: _synced_since(db, token_id, synced_before), within=60, what="a journal run")
        broker.run("down")
        await sim.control("POST", f"/sellers/{seller}/orders", {"count": 12, "days_back": 0.0005})
        # Without a broker nothing is acknowledged (and group membership lapses), so for as long as the
        # outage lasts the cursor must stay where it was, new events or not.
        for _ in range(10):
            await asyncio.sleep(1)
            assert await _field(db, token_id, "event_cursor") == cursor_before
        broker.run("up")
        await wait_for(
            lambda: _cursor_moved_past(db, token_id, cursor_before),
            within=90,
            what="the cursor after recovery",
        )
    assert (await token_row(db, token_id))["last_error"] is None
    async with open_snapshot_reader(kafka) as recovered:
        truth = await sim.truth(seller)
        new = {form_id: rev for form_id, rev in truth.items() if (form_id, rev) not in already}
        assert len(new) >= 12
        await recovered.wait_matches(token_id, new, within=30)


async def _synced_since(db: AsyncEngine, token_id: uuid.UUID, before: object) -> bool:
    return bool((await _field(db, token_id, "last_sync_at")) != before)
