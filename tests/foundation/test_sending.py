"""Batch sending on the real broker: every record acknowledged once, where the default partitioner puts
its key (or its route), in order within a partition, across several batches when one is full."""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2 as reference_murmur2

from core.sending import Record, murmur2, partition_of, send_all
from core.settings import KafkaSettings


async def read_all(bootstrap: str, topic: str, count: int) -> list[tuple[int, bytes | None, bytes | None]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=f"test-{uuid.uuid4().hex}",
    )
    await consumer.start()
    received: list[tuple[int, bytes | None, bytes | None]] = []
    try:
        while len(received) < count:
            batches = await consumer.getmany(timeout_ms=10_000)
            assert batches, f"only {len(received)} of {count} records within 10 s"
            received += [(m.partition, m.key, m.value) for records in batches.values() for m in records]
    finally:
        await consumer.stop()
    return received


async def test_send_all_puts_each_record_on_its_keys_partition_in_order_over_several_batches(
    kafka_settings: KafkaSettings,
) -> None:
    topic = kafka_settings.dlq_topic  # not compacted: it takes records without a key
    # A 16 KB batch limit with 3 KB values: ~200 records per partition take many batches.
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_settings.bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        max_batch_size=16 * 1024,
    )
    await producer.start()
    orders = [f"token:form-{i}".encode() for i in range(200)]
    records = [Record(key, f"{i:04d}".encode() * 750) for i, key in enumerate(orders)]
    # Revisions of form-7 routed by the order's key, and records without a key.
    records += [Record(b"token:form-7:r%d" % r, b"revision", route=orders[7]) for r in range(3)]
    records += [Record(None, b"unkeyed", (("reason", b"x"),))] * 2
    try:
        await send_all(producer, topic, records)
    finally:
        await producer.stop()

    received = await read_all(kafka_settings.bootstrap_servers, topic, len(records))
    assert len(received) == len(records)
    partitions = kafka_settings.partitions
    for partition, key, _ in received:
        if key is not None:
            route = key.rsplit(b":", 1)[0] if key.count(b":") == 2 else key
            assert partition == partition_of(route, partitions)
    # Within a partition the records keep the order they were given in.
    for partition in range(partitions):
        keyed = [k for p, k, v in received if p == partition and k is not None and v != b"revision"]
        assert keyed == [k for k in orders if partition_of(k, partitions) == partition]
    form_7 = [k for _, k, _ in received if k == orders[7] or (k or b"").startswith(b"token:form-7:")]
    assert form_7 == [orders[7], b"token:form-7:r0", b"token:form-7:r1", b"token:form-7:r2"]


def test_partition_of_matches_the_java_default_partitioner() -> None:
    # Partitions of these keys among 1,000 as Java's DefaultPartitioner computes them.
    keys = [b"", b"a", b"ab", b"abc", b"123456789", b"\x00 "]
    assert [partition_of(key, 1000) for key in keys] == [681, 524, 434, 107, 566, 742]


def test_murmur2_hashes_as_the_aiokafka_default_partitioner_does() -> None:
    rng = random.Random(7)
    for length in range(64):
        data = rng.randbytes(length)
        assert murmur2(data) & 0x7FFFFFFF == reference_murmur2(data) & 0x7FFFFFFF


async def test_send_all_raises_when_the_topic_does_not_exist(kafka_settings: KafkaSettings) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_settings.bootstrap_servers, request_timeout_ms=2_000, acks="all"
    )
    await producer.start()
    try:
        with pytest.raises(KafkaError):
            await send_all(producer, f"missing-{uuid.uuid4().hex}", [Record(b"k", b"v")])
    finally:
        await producer.stop()


@pytest.mark.parametrize("batched", [True, False])
async def test_many_concurrent_senders_on_one_producer_all_succeed(
    kafka_settings: KafkaSettings, batched: bool
) -> None:
    # A poller syncing many accounts publishes from many coroutines through one producer at once.
    topic = kafka_settings.dlq_topic
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_settings.bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        max_batch_size=64 * 1024,
        request_timeout_ms=3_000,
    )
    await producer.start()
    value = b"v" * 3000
    try:
        await asyncio.gather(
            *(
                send_all(
                    producer,
                    topic,
                    [Record(b"sender-%d:%d" % (s, i), value) for i in range(300)],
                    batched=batched,
                )
                for s in range(20)
            )
        )
    finally:
        await producer.stop()
    assert len(await read_all(kafka_settings.bootstrap_servers, topic, 6000)) == 6000
