"""Running `python -m processors worker` as a real subprocess, feeding it and reading what it wrote."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from core.settings import KafkaSettings
from tests.environments import worker_env as service_worker_env

ROOT = Path(__file__).resolve().parents[2]


def worker_env(kafka: KafkaSettings, database_url: str, app_id: str, data_dir: Path) -> dict[str, str]:
    """Environment for a worker on this test's topics, with its own Faust app id and data dir."""
    return {
        **os.environ,
        **service_worker_env(kafka, database_url, data_dir),
        "PROCESSOR__APP_ID": app_id,
        "LOG_LEVEL": "WARNING",
    }


class Worker:
    """One worker process; `kill()` is kill -9, `stop()` a graceful SIGTERM."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def metrics_port(self) -> int:
        """Where this worker serves /metrics."""
        return int(self.env["PROCESSOR__METRICS_PORT"])

    def start(self) -> Worker:
        """Start the process, appending its output to the log file."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "processors", "worker", "-l", "warn", "--without-web"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs at all."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.process is not None and self.process.poll() is None


async def produce(bootstrap: str, topic: str, values: Sequence[dict[str, Any] | bytes]) -> None:
    """Publish envelopes (keyed by order) or raw bytes (keyed `raw`), acks=all, in order."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    try:
        futures = []
        for value in values:
            if isinstance(value, bytes):
                key, data = b"raw", value
            else:
                key = f"{value['token_id']}:{value['checkout_form_id']}".encode()
                data = orjson.dumps(value)
            futures.append(await producer.send(topic, data, key=key))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def consume_all(bootstrap: str, topic: str, partitions: int) -> list[Any]:
    """Every record currently in the topic (from the beginning to the end offsets)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        records: list[Any] = []
        while [tp for tp in assigned if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for messages in batch.values():
                records.extend(messages)
        return records
    finally:
        await consumer.stop()


async def wait_until(condition: Any, *, within: float, what: str, workers: Sequence[Worker] = ()) -> None:
    """Poll an async condition until it holds; fail with `what` on timeout or a dead worker."""
    deadline = time.monotonic() + within
    while not await condition():
        for worker in workers:
            if not worker.alive():
                raise AssertionError(f"worker exited while waiting for {what}: see {worker.log_path}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.25)


async def count_orders(database_url: str, token_id: uuid.UUID, revision_like: str = "%") -> int:
    """How many orders of the token are stored."""
    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM orders WHERE token_id = $1 AND revision LIKE $2", token_id, revision_like
        )
        return count
    finally:
        await conn.close()


async def outbox_empty(database_url: str) -> bool:
    """Whether every committed batch's changes were published (its outbox row deleted after the acks)."""
    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        return bool(await conn.fetchval("SELECT NOT EXISTS (SELECT 1 FROM publish_outbox)"))
    finally:
        await conn.close()


async def stable_group_members(bootstrap: str, group_id: str) -> int:
    """How many members the consumer group has once its rebalance settled (0 while it rebalances)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group_id])
    finally:
        await admin.close()
    # groups: (error_code, group_id, state, protocol_type, protocol, members[, authorized_operations])
    group = response.groups[0]
    return len(group[5]) if group[2] == "Stable" else 0
