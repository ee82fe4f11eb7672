"""The worker process started while its Kafka node (one of the test's own) is down: it waits, then
creates the topics and stores what arrives once the broker is up."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import KafkaSettings
from tests.private_services import PrivateService
from tests.processors.factory import snapshot
from tests.processors.worker import Worker, count_orders, produce, wait_until, worker_env

pytestmark = pytest.mark.slow


@pytest.fixture
def kafka_node(tmp_path: Path) -> Iterator[PrivateService]:
    """A Kafka node on free ports, not started yet."""
    node = PrivateService(tmp_path, "kafka")
    try:
        yield node
    finally:
        node.stop()


async def test_a_worker_started_while_kafka_is_down_stores_snapshots_once_the_broker_starts(
    kafka_node: PrivateService, database_url: str, tmp_path: Path
) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_node.bootstrap).prefixed(
        f"w{uuid.uuid4().hex[:8]}", partitions=2
    )
    env = worker_env(kafka, database_url, f"a{uuid.uuid4().hex}", tmp_path / "faust")
    worker = Worker(env, tmp_path / "worker.log").start()
    try:
        for _ in range(6):  # it exited within about a second before
            await asyncio.sleep(1)
            assert worker.alive(), worker.log_path.read_text()[-3000:]
        await asyncio.to_thread(kafka_node.start)
        token_id = uuid.uuid4()
        messages = [snapshot(token_id, f"form-{n}", 1) for n in range(20)]

        async def produced() -> bool:
            # The worker creates the topics once it reaches the broker; until then there is nowhere to send.
            try:
                await produce(kafka.bootstrap_servers, kafka.snapshots_topic, messages)
            except Exception:  # noqa: BLE001 - the topic may not exist yet: try again
                return False
            return True

        await wait_until(produced, within=60, what="the snapshots topic", workers=[worker])

        async def stored() -> bool:
            return await count_orders(database_url, token_id) == len(messages)

        await wait_until(stored, within=90, what="every snapshot stored", workers=[worker])
    finally:
        worker.stop()
