"""The snapshot batch handler against real PostgreSQL (no Kafka: a recording publisher stands in)."""

from __future__ import annotations

import asyncio
import uuid
import zlib
from datetime import UTC, datetime

import asyncpg
import orjson
import pytest

from core.contract import RevisionRecord, decode_order_change, decode_revision_record
from core.sending import Record
from processors.handler import (
    BatchReport,
    Topics,
    drain_outbox,
    handle_snapshot_batch,
    store_batch,
    store_isolating,
    validate,
)
from processors.messages import RawMessage
from tests.processors.conftest import RecordingPublisher
from tests.processors.factory import raw, snapshot
from tests.processors.worker import wait_until

ORDERS, REVISIONS, DLQ = "orders", "revisions", "dlq"
TOPICS = Topics(orders=ORDERS, revisions=REVISIONS, dlq=DLQ)


async def handle(
    pool: asyncpg.Pool, publisher: RecordingPublisher, messages: list[RawMessage]
) -> BatchReport:
    return await handle_snapshot_batch(pool, publisher, messages, topics=TOPICS, max_message_bytes=64 * 1024)


async def stored(pool: asyncpg.Pool, token_id: uuid.UUID) -> dict[str, asyncpg.Record]:
    rows = await pool.fetch("SELECT * FROM orders WHERE token_id = $1", token_id)
    return {r["checkout_form_id"]: r for r in rows}


async def revisions(pool: asyncpg.Pool, token_id: uuid.UUID) -> list[tuple[str, str]]:
    rows = await pool.fetch(
        "SELECT checkout_form_id, revision FROM order_revisions WHERE token_id = $1 ORDER BY 1, 2", token_id
    )
    return [(r[0], r[1]) for r in rows]


def published(publisher: RecordingPublisher, topic: str = ORDERS) -> list[tuple[str, str, str]]:
    changes = [decode_order_change(r.value) for r in publisher.sent.get(topic, [])]
    return [(c.checkout_form_id, c.revision, c.change) for c in changes]


async def test_batch_keeps_the_newest_revision_and_every_distinct_revision_once(
    pool: asyncpg.Pool, publisher: RecordingPublisher, token_id: uuid.UUID
) -> None:
    batch = [snapshot(token_id, "a", v) for v in (1, 3, 2, 3, 1)] + [snapshot(token_id, "b", 5)]
    report = await handle(pool, publisher, raw(batch))
    orders = await stored(pool, token_id)
    assert {k: r["revision"] for k, r in orders.items()} == {"a": "r3", "b": "r5"}
    assert await revisions(pool, token_id) == [("a", "r1"), ("a", "r2"), ("a", "r3"), ("b", "r5")]
    assert sorted(published(publisher)) == [("a", "r3", "created"), ("b", "r5", "created")]
    assert report.revisions_added == 4
    assert await pool.fetchval("SELECT count(*) FROM publish_outbox") == 0
    history = [decode_revision_record(r.value) for r in publisher.sent[REVISIONS]]
    assert sorted((r.checkout_form_id, r.revision) for r in history) == await revisions(pool, token_id)


async def test_newest_wins_by_updated_at_then_fetched_at(
    pool: asyncpg.Pool, publisher: RecordingPublisher, token_id: uuid.UUID
) -> None:
    early = snapshot(token_id, "a", 2, fetched_offset=0)
    late = snapshot(token_id, "a", 2, fetched_offset=30, revision="r2-late")
    await handle(pool, publisher, raw([late, early]))
    assert (await stored(pool, token_id))["a"]["revision"] == "r2-late"


async def test_an_older_revision_arriving_later_is_ignored_but_kept_in_history(
    pool: asyncpg.Pool, publisher: RecordingPublisher, token_id: uuid.UUID
) -> None:
    await handle(pool, publisher, raw([snapshot(token_id, "a", 5)]))
    report = await handle(pool, publisher, raw([snapshot(token_id, "a", 4)]))
    assert (await stored(pool, token_id))["a"]["revision"] == "r5"
    assert report.changes == []
    assert await revisions(pool, token_id) == [("a", "r4"), ("a", "r5")]
    assert published(publisher) == [("a", "r5", "created")]


async def test_redelivery_changes_nothing_and_reports_nothing(
    pool: asyncpg.Pool, publisher: RecordingPublisher, token_id: uuid.UUID
) -> None:
    batch = raw([snapshot(token_id, form, v) for form in "abc" for v in (1, 2)])
    await handle(pool, publisher, batch)
    before = await pool.fetch("SELECT * FROM orders WHERE token_id = $1 ORDER BY id", token_id)
    publisher.sent.clear()
    report = await handle(pool, publisher, batch)
    assert report.changes == []
    assert report.revisions_added == 0
    assert report.skipped == 6
    assert publisher.sent == {}
    assert await pool.fetch("SELECT * FROM orders WHERE token_id = $1 ORDER BY id", token_id) == before
    assert len(await revisions(pool, token_id)) == 6


async def test_a_new_revision_is_published_as_an_update(
    pool: asyncpg.Pool, publisher: RecordingPublisher, token_id: uuid.UUID
) -> None:
    await handle(pool, publisher, raw([snapshot(token_id, "a", 1)]))
    await handle(pool, publisher, raw([snapshot(token_id, "a", 2)]))
    assert published(publisher) == [("a", "r1", "created"), ("a", "r2", "updated")]


async def test_merged_form_is_superseded_and_linked_to_its_successor(
    pool: asyncpg.Pool, publisher: RecordingPublisher, token_id: uuid.UUID
) -> None:
    await handle(
        pool,
        publisher,
        raw(
            [snapshot(token_id, "old1", 1, line_items=["x"]), snapshot(token_id, "old2", 1, line_items=["y"])]
        ),
    )
    await handle(pool, publisher, raw([snapshot(token_id, "old1", 2, gone="merged")]))
    orders = await stored(pool, token_id)
    assert orders["old1"]["superseded_at"] is not None
    assert orders["old1"]["superseded_by"] is None
    assert orders["old1"]["order_data"] is not None
    await handle(pool, publisher, raw([snapshot(token_id, "new", 3, line_items=["x", "y"])]))
    orders = await stored(pool, token_id)
    assert (orders["old1"]["superseded_by"], orders["old2"]["superseded_by"]) == ("new", "new")
    assert orders["old2"]["superseded_at"] is not None
    assert orders["new"]["superseded_at"] is None
    changes = {(form, change) for form, _, change in published(publisher)}
    assert {("old1", "superseded"), ("old2", "superseded"), ("new", "created")} <= changes


async def test_successor_and_predecessor_in_one_batch_link_one_way(
    pool: asyncpg.Pool, publisher: RecordingPublisher, token_id: uuid.UUID
) -> None:
    await handle(
        pool,
        publisher,
        raw(
            [
                snapshot(token_id, "old", 1, line_items=["x"]),
                snapshot(token_id, "new", 2, line_items=["x", "y"]),
            ]
        ),
    )
    orders = await stored(pool, token_id)
    assert orders["old"]["superseded_by"] == "new"
    assert orders["new"]["superseded_by"] is None


async def test_a_predecessor_stored_after_its_successor_is_linked_to_it(
    pool: asyncpg.Pool, publisher: RecordingPublisher, token_id: uuid.UUID
) -> None:
    # A backfill may list the merged form before an older snapshot of a form it replaced arrives.
    await handle(pool, publisher, raw([snapshot(token_id, "new", 3, line_items=["x", "y"])]))
    await handle(pool, publisher, raw([snapshot(token_id, "old", 1, line_items=["x"])]))
    # A form sharing an item but not contained in the other is no part of a merge.
    await handle(pool, publisher, raw([snapshot(token_id, "other", 1, line_items=["y", "z"])]))
    orders = await stored(pool, token_id)
    assert orders["old"]["superseded_by"] == "new"
    assert orders["old"]["superseded_at"] is not None
    assert orders["new"]["superseded_by"] is None
    assert orders["other"]["superseded_by"] is None
    assert ("old", "r1", "superseded") in published(publisher)


async def test_purged_form_is_kept_and_marked_missing_upstream_once(
    pool: asyncpg.Pool, publisher: RecordingPublisher, token_id: uuid.UUID
) -> None:
    await handle(pool, publisher, raw([snapshot(token_id, "a", 1)]))
    await handle(pool, publisher, raw([snapshot(token_id, "a", 2, gone="purged")]))
    first = (await stored(pool, token_id))["a"]
    assert first["missing_upstream_since"] is not None and first["revision"] == "r1"
    report = await handle(pool, publisher, raw([snapshot(token_id, "a", 3, gone="purged")]))
    assert report.changes == []
    assert (await stored(pool, token_id))["a"]["missing_upstream_since"] == first["missing_upstream_since"]


async def test_gone_for_an_unknown_form_stores_nothing(
    pool: asyncpg.Pool, publisher: RecordingPublisher, token_id: uuid.UUID
) -> None:
    report = await handle(pool, publisher, raw([snapshot(token_id, "never", 1, gone="merged")]))
    assert report.changes == [] and await stored(pool, token_id) == {}


async def test_rows_postgresql_rejects_are_dead_lettered_alone_and_the_rest_commit(
    pool: asyncpg.Pool, publisher: RecordingPublisher, token_id: uuid.UUID
) -> None:
    poison = snapshot(token_id, "bad", 1, checkout_form='{"id": "bad", "broken": }')
    batch = [snapshot(token_id, f"ok{i}", 1) for i in range(7)]
    batch.insert(3, poison)
    report = await handle(pool, publisher, raw(batch))
    assert report.dead_letters == 1
    assert sorted(await stored(pool, token_id)) == sorted(f"ok{i}" for i in range(7))
    [(key, value, headers, _)] = publisher.sent[DLQ]
    assert value == orjson.dumps(poison) and key == f"{token_id}:bad".encode()
    assert dict(headers)["source_offset"] == b"3"
    assert dict(headers)["error_class"] == b"InvalidTextRepresentationError"


async def test_invalid_envelopes_are_dead_lettered_with_reasons(
    pool: asyncpg.Pool, publisher: RecordingPublisher, token_id: uuid.UUID
) -> None:
    good = snapshot(token_id, "a", 1)
    bad = [
        b"not json",
        orjson.dumps({"schema_version": 1}),
        orjson.dumps(good | {"schema_version": 9}),
        orjson.dumps(good | {"user_id": "u" * 70_000}),
    ]
    report = await handle(pool, publisher, raw([*bad, good]))
    assert report.dead_letters == 4
    reasons = [dict(r.headers)["error_class"] for r in publisher.sent[DLQ]]
    assert reasons == [b"ContractError"] * 3 + [b"MessageTooLarge"]
    assert list(await stored(pool, token_id)) == ["a"]


async def test_changes_of_a_crashed_publish_are_published_from_the_outbox(
    pool: asyncpg.Pool, publisher: RecordingPublisher, token_id: uuid.UUID
) -> None:
    failing = RecordingPublisher(fail_topics={ORDERS})
    with pytest.raises(RuntimeError):
        await handle(pool, failing, raw([snapshot(token_id, "a", 1)]))
    # committed, but allegro.orders never acknowledged the change: the outbox still says so
    assert await pool.fetchval("SELECT count(*) FROM publish_outbox") >= 1
    await drain_outbox(pool, publisher, TOPICS)
    assert ("a", "r1", "created") in published(publisher)
    assert ("a", "r1") in [
        (r.checkout_form_id, r.revision) for r in map(_revision, publisher.sent[REVISIONS])
    ]
    assert await pool.fetchval("SELECT count(*) FROM publish_outbox") == 0


def _revision(record: Record) -> RevisionRecord:
    return decode_revision_record(record.value)


def _lane_of(token_id: uuid.UUID, form_id: str, lanes: int) -> int:
    return zlib.crc32(f"{token_id}:{form_id}".encode()) % lanes


async def test_lanes_store_what_one_transaction_stores_merges_across_lanes_included(
    pool: asyncpg.Pool, publisher: RecordingPublisher
) -> None:
    one, two = uuid.uuid4(), uuid.uuid4()
    # A merged form and its successor that the two lanes store at the same time.
    old = next(f"old{i}" for i in range(100) if _lane_of(two, f"old{i}", 2) == 0)
    new = next(f"new{i}" for i in range(100) if _lane_of(two, f"new{i}", 2) == 1)

    def batch(token_id: uuid.UUID) -> list[RawMessage]:
        forms = [snapshot(token_id, f"f{i}", v) for i in range(20) for v in (1, 3, 2, 3)]
        forms += [
            snapshot(token_id, old, 1, line_items=["x"]),
            snapshot(token_id, new, 2, line_items=["x", "y"]),
        ]
        return raw(forms)

    await handle_snapshot_batch(
        pool, publisher, batch(one), topics=TOPICS, max_message_bytes=1 << 16, lanes=1
    )
    report = await handle_snapshot_batch(
        pool, publisher, batch(two), topics=TOPICS, max_message_bytes=1 << 16, lanes=2
    )
    assert report.revisions_added == 20 * 3 + 2
    single, laned = await stored(pool, one), await stored(pool, two)
    assert {k: r["revision"] for k, r in laned.items()} == {k: r["revision"] for k, r in single.items()}
    assert await revisions(pool, two) == await revisions(pool, one)
    assert laned[old]["superseded_by"] == new and laned[new]["superseded_by"] is None
    assert await pool.fetchval("SELECT count(*) FROM publish_outbox") == 0


async def test_a_failed_lane_leaves_the_committed_lane_published_and_the_retry_stores_the_rest(
    pool: asyncpg.Pool, publisher: RecordingPublisher, token_id: uuid.UUID
) -> None:
    # One lane's transaction fails (a serialization failure, as a concurrent writer can cause) while the
    # other commits: what committed is published, the failure surfaces so the batch is retried, and the
    # retry stores the rest with nothing stored or published twice.
    poison = next(f"p{i}" for i in range(100) if _lane_of(token_id, f"p{i}", 2) == 0)
    healthy = [f"h{i}" for i in range(100) if _lane_of(token_id, f"h{i}", 2) == 1][:5]
    messages = raw([snapshot(token_id, poison, 1)] + [snapshot(token_id, form, 1) for form in healthy])
    trigger = f"fail_lane_{token_id.hex}"
    await pool.execute(
        f"""CREATE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.token_id = '{token_id}' AND NEW.checkout_form_id = '{poison}' THEN
                RAISE EXCEPTION 'lane fails' USING ERRCODE = 'serialization_failure';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER {trigger} BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION {trigger}();"""
    )
    try:
        with pytest.raises(asyncpg.SerializationError):
            await handle_snapshot_batch(
                pool, publisher, messages, topics=TOPICS, max_message_bytes=1 << 16, lanes=2
            )
        assert set(await stored(pool, token_id)) == set(healthy)
        assert sorted(form for form, _, _ in published(publisher)) == sorted(healthy)
    finally:
        await pool.execute(f"DROP TRIGGER {trigger} ON orders; DROP FUNCTION {trigger}();")

    await handle_snapshot_batch(pool, publisher, messages, topics=TOPICS, max_message_bytes=1 << 16, lanes=2)
    assert set(await stored(pool, token_id)) == {poison, *healthy}
    assert sorted(published(publisher)) == sorted((form, "r1", "created") for form in [poison, *healthy])
    assert len(await revisions(pool, token_id)) == 6
    assert len(publisher.sent[REVISIONS]) == 6
    assert await pool.fetchval("SELECT count(*) FROM publish_outbox") == 0


async def test_a_merge_check_waits_for_a_concurrent_transaction_of_the_token_to_commit(
    pool: asyncpg.Pool, token_id: uuid.UUID
) -> None:
    # The predecessor is stored by a transaction still open (another lane or worker) when its successor's
    # transaction checks for merges: the check must wait and then see it, or the link is lost.
    [old], _ = validate(raw([snapshot(token_id, "old", 1, line_items=["x"])]), max_message_bytes=1 << 16)
    [new], _ = validate(raw([snapshot(token_id, "new", 2, line_items=["x", "y"])]), max_message_bytes=1 << 16)
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        other = conn.transaction()
        await other.start()
        await store_batch(conn, [old], now=now)  # a savepoint inside the open transaction
        successor = asyncio.create_task(store_isolating(pool, [new], now=now))
        waiting = (
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock')"
        )

        async def blocked() -> bool:
            return successor.done() or bool(await pool.fetchval(waiting))

        # The successor's transaction reaches the merge check and waits there for the open one.
        await wait_until(blocked, within=30, what="the merge check waiting on the open transaction")
        assert not successor.done(), "the merge check did not wait for the open transaction"
        await other.commit()
    await successor
    orders = await stored(pool, token_id)
    assert orders["old"]["superseded_by"] == "new"


async def test_a_batch_smaller_than_two_lanes_worth_is_one_transaction(
    pool: asyncpg.Pool, publisher: RecordingPublisher, token_id: uuid.UUID
) -> None:
    # Each lane's transaction writes its own outbox row: the ids drawn tell how many transactions ran.
    next_outbox_id = "SELECT nextval(pg_get_serial_sequence('publish_outbox', 'id'))"
    messages = raw([snapshot(token_id, f"f{i}", 1) for i in range(40)])
    before = await pool.fetchval(next_outbox_id)
    await handle_snapshot_batch(
        pool,
        publisher,
        messages[:20],
        topics=TOPICS,
        max_message_bytes=1 << 16,
        lanes=2,
        lane_min_messages=20,
    )
    one_lane = await pool.fetchval(next_outbox_id)
    await handle_snapshot_batch(
        pool,
        publisher,
        messages[20:],
        topics=TOPICS,
        max_message_bytes=1 << 16,
        lanes=2,
        lane_min_messages=10,
    )
    two_lanes = await pool.fetchval(next_outbox_id)
    # Each reading draws an id too: one row for 20 snapshots at 20 per lane, two at 10 per lane.
    assert (one_lane - before, two_lanes - one_lane) == (2, 3)
    assert len(await stored(pool, token_id)) == 40
