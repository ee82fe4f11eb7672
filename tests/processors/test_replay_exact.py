"""A rebuild from Kafka is exact: what the handler stores and what it publishes are the same copies, so
`replay` into emptied tables gives back every column (real PostgreSQL, real Kafka)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from allegro_api import FormSnapshot
from cli.replay import replay
from core.contract import SnapshotSource
from core.sending import create_producer
from core.settings import KafkaSettings
from db.queries.replay import delete_token_orders, token_checksum
from processors.handler import Topics, handle_snapshot_batch
from processors.messages import RawMessage
from processors.publishing import KafkaRecordPublisher
from producers.snapshots import TokenIdentity, form_envelope, gone_envelope
from tests.environments import kafka_env

FIELD_CASES = Path(__file__).resolve().parents[2] / "reference" / "field-cases"
NEWER = (FIELD_CASES / "E05b.newer.json").read_bytes().strip()
OLDER = (FIELD_CASES / "E05b.older.json").read_bytes().strip()
F03B = (FIELD_CASES / "F03b.json").read_bytes().strip()
AT = datetime(2026, 11, 30, 4, 20, tzinfo=UTC)


@pytest.fixture
async def publisher(kafka_settings: KafkaSettings) -> AsyncIterator[KafkaRecordPublisher]:
    producer = create_producer(kafka_settings, role="test", max_request_size=1 << 20)
    await producer.start()
    yield KafkaRecordPublisher(producer)
    await producer.stop()


async def test_a_batch_with_copies_of_one_revision_replays_into_identical_rows(
    pool: asyncpg.Pool,
    engine: AsyncEngine,
    kafka_settings: KafkaSettings,
    publisher: KafkaRecordPublisher,
    database_url: str,
) -> None:
    token_id = uuid.uuid4()
    identity = TokenIdentity(token_id=token_id, user_id="user-replay", seller_id="90011223")
    run = uuid.uuid4()

    def form(body: bytes, minutes: float, source: SnapshotSource = "journal") -> bytes:
        snapshot = FormSnapshot.from_json(body)
        at = AT + timedelta(minutes=minutes)
        return form_envelope(identity, snapshot, source=source, sync_run_id=run, fetched_at=at).encode()

    # A journal snapshot that waited while the worker was down and a reconcile snapshot of the same
    # revision, in one batch; the field cases' forms around them; then later copies and a purge.
    f03b_id = FormSnapshot.from_json(F03B).id
    # A form whose text jsonb refuses altogether: stored, and rebuilt, without its query copy.
    huge = OLDER.replace(b'"calculatedNumberOfPackages":1', b'"calculatedNumberOfPackages":1e1000000')
    huge = huge.replace(b"49595412-ec76-11f1-8898-02fc00000001", b"49595412-ec76-11f1-8898-02fc0000000f")
    batches = [
        [
            form(NEWER, 0),
            form(F03B, 0),
            form(NEWER, 9, "reconcile"),
            form(F03B, 9, "reconcile"),
            form(huge, 1),
        ],
        [form(OLDER, -0.5), form(NEWER, 20, "reconcile")],
        [
            gone_envelope(
                identity,
                f03b_id,
                reason="purged",
                bought_at=AT - timedelta(days=400),
                source="reconcile",
                sync_run_id=run,
                fetched_at=AT + timedelta(minutes=30),
            ).encode()
        ],
    ]
    topics = Topics(kafka_settings.orders_topic, kafka_settings.revisions_topic, kafka_settings.dlq_topic)
    offset = 0
    for batch in batches:
        messages = [RawMessage("snapshots", 0, offset + i, b"k", value) for i, value in enumerate(batch)]
        offset += len(batch)
        await handle_snapshot_batch(pool, publisher, messages, topics=topics, max_message_bytes=1 << 20)
    rows = await pool.fetch(
        "SELECT revision, captured_at, source FROM order_revisions WHERE token_id = $1 ORDER BY 1, 2",
        token_id,
    )
    assert [tuple(r) for r in rows] == [
        ("a1b2c3d4", AT, "journal"),
        ("e5100001", AT - timedelta(minutes=0.5), "journal"),
        ("e5100001", AT + timedelta(minutes=1), "journal"),
        ("e5100002", AT, "journal"),
    ]
    nulls = "SELECT count(*) FROM orders WHERE token_id = $1 AND order_data IS NULL"
    assert await pool.fetchval(nulls, token_id) == 1

    async with engine.connect() as connection:
        before = await token_checksum(connection, token_id)
    async with engine.begin() as connection:
        assert await delete_token_orders(connection, token_id) == (3, 4)
        emptied = await token_checksum(connection, token_id)
    report = await replay(engine, kafka_settings, token_id=token_id)
    async with engine.connect() as connection:
        after = await token_checksum(connection, token_id)
    assert report.skipped_invalid == 0
    assert emptied != before
    assert after == before, (before, after)
    assert "/3 order_revisions=" in before and before.endswith("/4")  # rows: 3 orders, 4 revisions
    assert await pool.fetchval(nulls, token_id) == 1

    # The operator's proof: `allegro-backup replay --token` prints the checksums before and after.
    async with engine.begin() as connection:
        await delete_token_orders(connection, token_id)
    env = {**os.environ, **kafka_env(kafka_settings), "DATABASE__URL": database_url}
    command = [sys.executable, "-m", "cli", "replay", "--token", str(token_id)]
    done = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = " ".join(done.stdout.split())  # the console wraps long lines
    assert f"checksum before: {emptied}" in lines and f"checksum after: {before}" in lines, done.stdout
