"""Gone marks without a successor go when the form answers again (new content, or the same content
fetched after the mark); a merge linked to its successor keeps its mark (real PostgreSQL)."""

from __future__ import annotations

import uuid

import asyncpg

from processors.handler import Topics, handle_snapshot_batch
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
