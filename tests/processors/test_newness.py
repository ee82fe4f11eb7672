"""Stored state never goes back, and every distinct content enters the history once: the handler against
real PostgreSQL (a recording publisher stands in for Kafka), the E05b field case on a real worker."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from allegro_api import FormSnapshot
from core.contract import SnapshotSource, decode_order_change, decode_revision_record, split_document
from core.settings import KafkaSettings
from processors.handler import Topics, handle_snapshot_batch
from processors.messages import RawMessage
from producers.snapshots import TokenIdentity, form_envelope
from tests.processors.conftest import RecordingPublisher
from tests.processors.worker import Worker, consume_all, produce, wait_until, worker_env

FIELD_CASES = Path(__file__).resolve().parents[2] / "reference" / "field-cases"
NEWER = (FIELD_CASES / "E05b.newer.json").read_bytes().strip()  # e5100002, fulfillment SENT
OLDER = (FIELD_CASES / "E05b.older.json").read_bytes().strip()  # e5100001, NEW, same updatedAt
FORM_ID = "49595412-ec76-11f1-8898-02fc00000001"
FETCHED = datetime(2026, 11, 30, 4, 20, tzinfo=UTC)
SOURCES: list[SnapshotSource] = ["journal", "reconcile"]
TOPICS = Topics(orders="orders", revisions="revisions", dlq="dlq")


def envelope(
    token_id: uuid.UUID, body: bytes, *, fetched_at: datetime, source: SnapshotSource = "journal"
) -> bytes:
    """The poller's envelope of an Allegro body."""
    identity = TokenIdentity(token_id=token_id, user_id="user-e05b", seller_id="90011223")
    snapshot = FormSnapshot.from_json(body)
    return form_envelope(
        identity,
        snapshot,
        source=source,
        sync_run_id=uuid.UUID(int=5),
        fetched_at=fetched_at,
    ).encode()


def messages(values: Sequence[bytes], first_offset: int = 0) -> list[RawMessage]:
    return [RawMessage("snapshots", 0, first_offset + i, b"k", v) for i, v in enumerate(values)]


async def handle(pool: asyncpg.Pool, publisher: RecordingPublisher, values: Sequence[bytes]) -> None:
    await handle_snapshot_batch(pool, publisher, messages(values), topics=TOPICS, max_message_bytes=1 << 20)


async def current(pool: asyncpg.Pool, token_id: uuid.UUID) -> asyncpg.Record:
    return await pool.fetchrow(
        "SELECT revision, fulfillment_status, order_json, last_synced_at, source FROM orders"
        " WHERE token_id = $1",
        token_id,
    )


async def history(pool: asyncpg.Pool, token_id: uuid.UUID) -> list[tuple[str, str, datetime, str]]:
    rows = await pool.fetch(
        "SELECT revision, order_json, captured_at, source FROM order_revisions WHERE token_id = $1"
        " ORDER BY captured_at, revision",
        token_id,
    )
    return [tuple(r) for r in rows]


NEWER_AT, OLDER_AT = FETCHED, FETCHED - timedelta(seconds=30)
ARRIVALS = {
    "same batch, newer first": [["newer", "older"]],
    "same batch, older first": [["older", "newer"]],
    "two batches, newer first (E05b)": [["newer"], ["older"]],
    "two batches, older first": [["older"], ["newer"]],
}


@pytest.mark.parametrize("batches", ARRIVALS.values(), ids=ARRIVALS.keys())
async def test_an_older_snapshot_with_equal_updated_at_never_replaces_the_newer(
    pool: asyncpg.Pool, publisher: RecordingPublisher, batches: list[list[str]]
) -> None:
    token_id = uuid.uuid4()
    made = {
        "newer": envelope(token_id, NEWER, fetched_at=NEWER_AT),
        "older": envelope(token_id, OLDER, fetched_at=OLDER_AT),
    }
    for batch in batches:
        await handle(pool, publisher, [made[name] for name in batch])
    stored = await current(pool, token_id)
    assert (stored["revision"], stored["fulfillment_status"]) == ("e5100002", "SENT")
    assert stored["order_json"] == NEWER.decode()
    assert await history(pool, token_id) == [
        ("e5100001", OLDER.decode(), OLDER_AT, "journal"),
        ("e5100002", NEWER.decode(), NEWER_AT, "journal"),
    ]
    # allegro.orders ends on the newer form; allegro.order-revisions holds both.
    changes = [decode_order_change(r.value) for r in publisher.sent["orders"]]
    assert changes[-1].revision == "e5100002"
    assert sorted(decode_revision_record(r.value).revision for r in publisher.sent["revisions"]) == [
        "e5100001",
        "e5100002",
    ]


async def test_a_revision_label_with_other_content_is_kept_and_the_later_fetch_is_current(
    pool: asyncpg.Pool, publisher: RecordingPublisher
) -> None:
    token_id = uuid.uuid4()
    # Same label e5100002, same updatedAt, a note added: not the stored content, so not dropped.
    edited = NEWER.replace(b'"note":null', b'"note":"dzwonic przed"')
    await handle(pool, publisher, [envelope(token_id, NEWER, fetched_at=FETCHED)])
    await handle(pool, publisher, [envelope(token_id, edited, fetched_at=FETCHED + timedelta(seconds=5))])
    assert (await current(pool, token_id))["order_json"] == edited.decode()
    assert [(r[0], r[1]) for r in await history(pool, token_id)] == [
        ("e5100002", NEWER.decode()),
        ("e5100002", edited.decode()),
    ]
    keys = {r.key for r in publisher.sent["revisions"]}
    assert len(keys) == 2  # one key per content: compaction keeps both
    # and the edited content fetched earlier than the stored one goes to the history only
    other = uuid.uuid4()
    await handle(pool, publisher, [envelope(other, NEWER, fetched_at=FETCHED)])
    await handle(pool, publisher, [envelope(other, edited, fetched_at=FETCHED - timedelta(seconds=5))])
    assert (await current(pool, other))["order_json"] == NEWER.decode()
    assert len(await history(pool, other)) == 2


async def test_copies_of_one_content_store_and_publish_the_first_copy(
    pool: asyncpg.Pool, publisher: RecordingPublisher
) -> None:
    # A journal snapshot that waited while the worker was down, and a reconcile snapshot of the same
    # revision, in one batch: PostgreSQL and both topics hold the same copy (the first to arrive).
    token_id = uuid.uuid4()
    journal = envelope(token_id, NEWER, fetched_at=FETCHED, source="journal")
    reconcile = envelope(token_id, NEWER, fetched_at=FETCHED + timedelta(minutes=9), source="reconcile")
    await handle(pool, publisher, [journal, reconcile])
    assert await history(pool, token_id) == [("e5100002", NEWER.decode(), FETCHED, "journal")]
    stored = await current(pool, token_id)
    assert (stored["last_synced_at"], stored["source"]) == (FETCHED, "journal")
    [revision] = [decode_revision_record(r.value) for r in publisher.sent["revisions"]]
    [change] = [decode_order_change(r.value) for r in publisher.sent["orders"]]
    assert (
        (revision.captured_at, revision.source) == (change.captured_at, change.source) == (FETCHED, "journal")
    )
    # a later batch's copy changes and publishes nothing
    publisher.sent.clear()
    await handle(pool, publisher, [reconcile])
    assert publisher.sent == {}


def _random_snapshots(token_id: uuid.UUID, rng: random.Random) -> list[bytes]:
    """Snapshots of three orders: a few contents each, equal updatedAt often, fetch times shuffled,
    copies of one content fetched at several times."""
    values = []
    for n in range(3):
        form_id = f"4959541{n}-ec76-11f1-8898-02fc00000001"
        for _ in range(8):
            version = rng.randrange(4)
            body = NEWER.replace(FORM_ID.encode(), form_id.encode()).replace(
                b'"revision":"e5100002"', b'"revision":"e51%05d"' % version
            )
            if version % 2:
                body = body.replace(
                    b'"updatedAt":"2026-11-30T04:18:57.875Z"', b'"updatedAt":"2026-11-30T04:19:00Z"'
                )
            fetched = FETCHED + timedelta(seconds=rng.randrange(6) * 10)
            values.append(envelope(token_id, body, fetched_at=fetched, source=rng.choice(SOURCES)))
    rng.shuffle(values)
    return values


async def _tables(pool: asyncpg.Pool, token_id: uuid.UUID) -> tuple[list[Any], list[Any]]:
    orders = await pool.fetch(
        "SELECT checkout_form_id, revision, updated_at, order_json, content_hash, order_data, source,"
        " first_seen_at, last_synced_at FROM orders WHERE token_id = $1 ORDER BY 1",
        token_id,
    )
    revisions = await pool.fetch(
        "SELECT checkout_form_id, revision, updated_at, order_json, content_hash, order_data, captured_at,"
        " source FROM order_revisions WHERE token_id = $1 ORDER BY 1, 2, 5",
        token_id,
    )
    return [tuple(r) for r in orders], [tuple(r) for r in revisions]


@pytest.mark.parametrize("seed", range(5))
async def test_the_stored_state_does_not_depend_on_batch_boundaries(
    pool: asyncpg.Pool, publisher: RecordingPublisher, seed: int
) -> None:
    rng = random.Random(seed)
    one, split = uuid.uuid4(), uuid.uuid4()
    sequence = _random_snapshots(one, rng)
    await handle(pool, publisher, sequence)
    # The same messages (re-addressed to another token), cut into batches at random places.
    moved = [v.replace(str(one).encode(), str(split).encode()) for v in sequence]
    cuts = sorted(rng.sample(range(1, len(moved)), 5))
    for start, end in zip([0, *cuts], [*cuts, len(moved)], strict=True):
        await handle(pool, RecordingPublisher(), moved[start:end])
    assert await _tables(pool, split) == await _tables(pool, one)


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.kill()


async def test_e05b_on_a_real_worker_the_older_snapshot_delivered_later_does_not_replace_the_newer(
    kafka_settings: KafkaSettings,
    database_url: str,
    pool: asyncpg.Pool,
    tmp_path: Path,
    workers: list[Worker],
) -> None:
    token_id = uuid.uuid4()
    worker = Worker(
        worker_env(kafka_settings, database_url, f"a{uuid.uuid4().hex}", tmp_path / "faust"),
        tmp_path / "worker.log",
    )
    workers.append(worker)
    worker.start()
    topic, bootstrap = kafka_settings.snapshots_topic, kafka_settings.bootstrap_servers
    await produce(bootstrap, topic, [envelope(token_id, NEWER, fetched_at=NEWER_AT)])

    async def revisions_stored(count: int) -> bool:
        return len(await history(pool, token_id)) == count

    await wait_until(lambda: revisions_stored(1), within=60, what="the newer snapshot", workers=workers)
    await produce(bootstrap, topic, [envelope(token_id, OLDER, fetched_at=OLDER_AT)])
    await wait_until(lambda: revisions_stored(2), within=30, what="the older snapshot", workers=workers)
    stored = await current(pool, token_id)
    assert (stored["revision"], stored["fulfillment_status"]) == ("e5100002", "SENT")

    async def of_token(topic: str) -> list[Any]:
        # A starting worker also publishes what other tests' batches left in the shared outbox.
        records = await consume_all(bootstrap, topic, 2)
        return [r for r in records if r.key.startswith(str(token_id).encode())]

    async def both_revisions_published() -> bool:
        return len(await of_token(kafka_settings.revisions_topic)) == 2

    await wait_until(both_revisions_published, within=30, what="two revision records", workers=workers)
    changes = await of_token(kafka_settings.orders_topic)
    assert [split_document(r.value)[1] for r in changes] == [NEWER.decode()]
    assert orjson.loads(split_document(changes[0].value)[0])["revision"] == "e5100002"
