"""Gone marks without a successor go when the form answers again (new content, or the same content
fetched after the mark); a merge linked to its successor keeps its mark (real PostgreSQL)."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from db.queries import sink
from db.queries.sink import Fetched, OrderKey, OrderRow
from processors.handler import Topics, handle_snapshot_batch
from processors.newness import disproved_marks
from tests.processors.conftest import RecordingPublisher
from tests.processors.factory import raw, snapshot

TOPICS = Topics(orders="orders", revisions="revisions", dlq="dlq")


async def _marks(pool: asyncpg.Pool, token_id: uuid.UUID, form_id: str) -> tuple[object, object, object]:
    row = await pool.fetchrow(
        "SELECT superseded_at, superseded_by, missing_upstream_since FROM orders"
        " WHERE token_id = $1 AND checkout_form_id = $2",
        token_id,
        form_id,
    )
    assert row is not None
    return row["superseded_at"], row["superseded_by"], row["missing_upstream_since"]


async def _handle(pool: asyncpg.Pool, publisher: RecordingPublisher, values: list[dict[str, object]]) -> None:
    await handle_snapshot_batch(pool, publisher, raw(values), topics=TOPICS, max_message_bytes=64 * 1024)


async def test_a_new_revision_clears_a_missing_or_merged_mark_without_successor(
    pool: asyncpg.Pool, publisher: RecordingPublisher, token_id: uuid.UUID
) -> None:
    await _handle(pool, publisher, [snapshot(token_id, "a", 1), snapshot(token_id, "b", 1)])
    await _handle(
        pool,
        publisher,
        [snapshot(token_id, "a", 2, gone="purged"), snapshot(token_id, "b", 2, gone="merged")],
    )
    assert (await _marks(pool, token_id, "a"))[2] is not None
    assert (await _marks(pool, token_id, "b"))[0] is not None
    await _handle(pool, publisher, [snapshot(token_id, "a", 3), snapshot(token_id, "b", 3)])
    assert await _marks(pool, token_id, "a") == (None, None, None)
    assert await _marks(pool, token_id, "b") == (None, None, None)


async def test_a_merge_linked_to_its_successor_keeps_its_mark(
    pool: asyncpg.Pool, publisher: RecordingPublisher, token_id: uuid.UUID
) -> None:
    await _handle(pool, publisher, [snapshot(token_id, "old", 1, line_items=["x"])])
    await _handle(pool, publisher, [snapshot(token_id, "new", 1, line_items=["x", "y"])])
    superseded_at, superseded_by, _ = await _marks(pool, token_id, "old")
    assert superseded_by == "new" and superseded_at is not None
    await _handle(pool, publisher, [snapshot(token_id, "old", 2, line_items=["x"])])
    assert (await _marks(pool, token_id, "old"))[:2] == (superseded_at, "new")


async def test_the_same_content_fetched_after_the_mark_clears_it_and_a_redelivery_does_not(
    pool: asyncpg.Pool, publisher: RecordingPublisher, token_id: uuid.UUID
) -> None:
    await _handle(pool, publisher, [snapshot(token_id, "a", 1), snapshot(token_id, "b", 1)])
    # decided gone two minutes after the first fetch (BASE_TIME + 2 min)
    await _handle(
        pool,
        publisher,
        [snapshot(token_id, "a", 2, gone="purged"), snapshot(token_id, "b", 2, gone="merged")],
    )
    # a re-delivery of the snapshots fetched before the marks: the forms did not answer since
    await _handle(pool, publisher, [snapshot(token_id, "a", 1), snapshot(token_id, "b", 1)])
    assert (await _marks(pool, token_id, "a"))[2] is not None
    assert (await _marks(pool, token_id, "b"))[0] is not None
    announced = len(publisher.sent.get(TOPICS.orders, []))
    # the forms answer again, unchanged (same revision, same text), fetched after the marks
    await _handle(
        pool,
        publisher,
        [snapshot(token_id, "a", 1, fetched_offset=600), snapshot(token_id, "b", 1, fetched_offset=600)],
    )
    assert await _marks(pool, token_id, "a") == (None, None, None)
    assert await _marks(pool, token_id, "b") == (None, None, None)
    # the change is announced like any other (the marks are part of the order's published state)
    assert len(publisher.sent.get(TOPICS.orders, [])) == announced + 2


async def test_the_rule_and_the_statement_agree_on_which_marks_a_fetch_disproves(
    pool: asyncpg.Pool, token_id: uuid.UUID
) -> None:
    """`processors.newness.disproved_marks` decides which orders to send; `sink.clear_disproved_marks`
    clears only marks its own condition says are disproved: over every combination of marks and fetch
    times, both name the same orders."""
    at = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    times = (None, at - timedelta(minutes=1), at, at + timedelta(minutes=1))
    cases = list(itertools.product(times, times, (None, "successor")))
    forms = [f"case-{number}" for number in range(len(cases))]
    await pool.executemany(
        "INSERT INTO orders (token_id, user_id, checkout_form_id, revision, source, missing_upstream_since,"
        " superseded_at, superseded_by, order_json, order_data)"
        " VALUES ($1, 'user-marks', $2, 'r1', 'journal', $3, $4, $5, '{}', '{}')",
        [(token_id, form, *case) for form, case in zip(forms, cases, strict=True)],
    )
    async with pool.acquire() as conn:
        keys = [OrderKey(token_id, form) for form in forms]
        stored = await sink.fetch_stored_state(conn, keys)
        rows = [_row(key, fetched_at=at) for key in keys]
        decided = {(f.token_id, f.checkout_form_id) for f in disproved_marks(rows, stored, set())}
        transaction = conn.transaction()
        await transaction.start()
        try:
            cleared = await sink.clear_disproved_marks(
                conn, [Fetched(k.token_id, k.checkout_form_id, at) for k in keys]
            )
        finally:
            await transaction.rollback()
    assert decided == {(c.token_id, c.checkout_form_id) for c in cleared}
    # Not a vacuous agreement: some fetches disprove a mark, some do not.
    assert 0 < len(decided) < len(keys)


def _row(key: OrderKey, *, fetched_at: datetime) -> OrderRow:
    return OrderRow(
        token_id=key.token_id,
        user_id="user-marks",
        seller_id="seller",
        checkout_form_id=key.checkout_form_id,
        revision="r1",
        updated_at=None,
        fields=(),
        order_json="{}",
        source="journal",
        fetched_at=fetched_at,
        content_hash=b"",
    )
