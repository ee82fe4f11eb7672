"""Publishing to Kafka with acknowledgement: changes to `allegro.orders`, revisions to
`allegro.order-revisions`, dead letters to the DLQ."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from aiokafka import AIOKafkaProducer

from core.contract import RecordContent, encode_order_change, encode_revision_record, order_key, revision_key
from core.sending import Record, send_all
from db.queries.sink import ChangedOrder, NewRevision
from processors.messages import DeadLetter

__all__ = ["KafkaRecordPublisher", "Record", "RecordPublisher"]


class RecordPublisher(Protocol):
    """Sends records and returns only once the broker has acknowledged every one of them."""

    async def publish(self, topic: str, records: Sequence[Record]) -> None:
        """Send all records; raise if any of them is not acknowledged."""


class KafkaRecordPublisher:
    """A `RecordPublisher` over one shared aiokafka producer (acks=all, idempotent)."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer

    async def publish(self, topic: str, records: Sequence[Record]) -> None:
        """Send every record in per-partition batches, then wait for all acknowledgements."""
        await send_all(self._producer, topic, records)


def change_record(change: ChangedOrder) -> Record:
    """The `allegro.orders` record of a change, built around the stored form's JSON text."""
    content = RecordContent(
        change.token_id,
        change.checkout_form_id,
        change.revision,
        change.updated_at,
        change.captured_at,
        change.source,
    )
    value = encode_order_change(
        content,
        change=change.change,  # type: ignore[arg-type]
        user_id=change.user_id,
        seller_id=change.seller_id or "",
        order_json=change.order_json,
        superseded_at=change.superseded_at,
        superseded_by=change.superseded_by,
        missing_upstream_since=change.missing_upstream_since,
        first_seen_at=change.first_seen_at,
        fields=change.fields,
    )
    return Record(order_key(change.token_id, change.checkout_form_id).encode(), value)


def revision_record(revision: NewRevision) -> Record:
    """The `allegro.order-revisions` record of a revision that entered the history."""
    content = revision.content
    value = encode_revision_record(content, revision.order_json)
    key = revision_key(content.token_id, content.checkout_form_id, content.revision, revision.content_hash)
    # Routed by the order's key: an order's revisions share its partition, in the order they were stored.
    return Record(key.encode(), value, route=order_key(content.token_id, content.checkout_form_id).encode())


def dead_letter_records(dead_letters: Sequence[DeadLetter], *, now: datetime) -> list[Record]:
    """DLQ records: the original key and bytes untouched, the reason in headers."""
    return [Record(d.message.key, d.message.value, d.headers(now)) for d in dead_letters]
