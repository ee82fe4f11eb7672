"""The real broker: an acks=all idempotent round trip, and the idempotent topic bootstrap."""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from core.settings import KafkaSettings
from core.topics import ensure_topics, read_topic_configs, topic_specs


async def test_produce_consume_round_trip_with_acks_all_and_idempotence(
    kafka_settings: KafkaSettings,
) -> None:
    topic = kafka_settings.snapshots_topic
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_settings.bootstrap_servers, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        sent = [await producer.send_and_wait(topic, f"value-{i}".encode(), key=b"k") for i in range(5)]
    finally:
        await producer.stop()
    assert [m.offset for m in sent] == list(range(sent[0].offset, sent[0].offset + 5))

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_settings.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=f"test-{uuid.uuid4().hex}",
    )
    await consumer.start()
    received: list[bytes] = []
    try:
        while len(received) < 5:
            batches = await consumer.getmany(timeout_ms=10_000)
            assert batches, "no message within 10 s"
            received += [m.value for messages in batches.values() for m in messages if m.value is not None]
    finally:
        await consumer.stop()
    assert received == [f"value-{i}".encode() for i in range(5)]


async def test_bootstrap_creates_a_compacted_orders_topic_and_a_rerun_changes_nothing(
    kafka_bootstrap: str,
) -> None:
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap).prefixed(f"b{uuid.uuid4().hex[:8]}")
    specs = topic_specs(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        first = await ensure_topics(admin, specs, 1)
        assert sorted(first.created) == sorted(s.name for s in specs)

        orders = await read_topic_configs(admin, settings.orders_topic)
        assert orders["cleanup.policy"] == "compact"
        assert orders["retention.ms"] == "-1"
        snapshots = await read_topic_configs(admin, settings.snapshots_topic)
        assert snapshots["cleanup.policy"] == "delete"
        assert int(snapshots["retention.ms"]) >= 30 * 86_400_000
        described = await admin.describe_topics([settings.snapshots_topic])
        assert len(described[0]["partitions"]) >= 6

        second = await ensure_topics(admin, specs, 1)
        assert second.created == []
        assert second.differing == {}
        assert sorted(second.unchanged) == sorted(s.name for s in specs)
    finally:
        await admin.close()


async def test_bootstrap_reports_an_existing_topic_whose_config_differs(kafka_bootstrap: str) -> None:
    name = f"d{uuid.uuid4().hex[:8]}.orders"
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, orders_topic=name)
    spec = next(s for s in topic_specs(settings) if s.name == name)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        wrong = type(spec)(name, spec.partitions, {**spec.configs, "cleanup.policy": "delete"})
        await ensure_topics(admin, [wrong], 1)
        report = await ensure_topics(admin, [spec], 1)
    finally:
        await admin.close()
    assert report.created == []
    assert any("cleanup.policy" in d for d in report.differing[name])
