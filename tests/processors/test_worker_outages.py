"""The worker process started while its Kafka node (one of the test's own) is down: it waits, then
creates the topics and stores what arrives once the broker is up."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import KafkaSettings
from tests.private_services import PrivateService
from tests.processors.factory import snapshot
from tests.processors.test_worker import metric, scrape
from tests.processors.worker import Worker, count_orders, produce, wait_until, worker_env

pytestmark = pytest.mark.slow


@pytest.fixture
def kafka_node(tmp_path: Path) -> Iterator[PrivateService]:
    """A Kafka node on free ports, not started yet."""
    node = PrivateService(tmp_path, "kafka")
    try:
        yield node
    finally:
        node.remove()


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


async def test_a_killed_workers_partitions_move_to_the_other_within_seconds(
    kafka_settings: KafkaSettings, database_url: str, tmp_path: Path
) -> None:
    app_id = f"a{uuid.uuid4().hex}"
    workers = [
        Worker(
            worker_env(kafka_settings, database_url, app_id, tmp_path / f"faust-{n}"), tmp_path / f"w{n}.log"
        )
        for n in range(2)
    ]
    topic = kafka_settings.snapshots_topic
    try:
        for worker in workers:
            worker.start()
        warm_up = uuid.uuid4()
        # Both members own a partition once each has stored a batch (one form per partition is likely
        # among 40; asserted below).
        await produce(
            kafka_settings.bootstrap_servers, topic, [snapshot(warm_up, f"f{n}", 1) for n in range(40)]
        )

        async def both_storing() -> bool:
            try:
                counts = [metric(await scrape(w), "processor_batch_size_count", topic=topic) for w in workers]
            except OSError:  # a metrics endpoint not serving yet
                return False
            return all(count > 0 for count in counts)

        await wait_until(both_storing, within=60, what="both workers storing", workers=workers)
        killed, survivor = workers
        killed.kill()
        started = time.monotonic()
        token_id = uuid.uuid4()
        messages = [snapshot(token_id, f"form-{n}", 1) for n in range(40)]
        await produce(kafka_settings.bootstrap_servers, topic, messages)

        async def stored() -> bool:
            return await count_orders(database_url, token_id) == len(messages)

        await wait_until(stored, within=60, what="the killed worker's partition stored", workers=[survivor])
        took = time.monotonic() - started
        # The session timeout (10 s) plus a rebalance; Faust's default session of 60 s took over a minute.
        assert took < 25, f"failover took {took:.1f} s"
        print(f"failover took {took:.1f} s")  # noqa: T201 - the measured figure, shown with -s
    finally:
        for worker in workers:
            worker.kill()
