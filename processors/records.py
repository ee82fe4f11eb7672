"""The order-records batch handler: `allegro.order-records` into `order_records` and
`order_record_versions` (`db.queries.order_records`).

Same delivery rules as the other handlers (`processors.batch_store`): messages that are not a valid record
are dead-lettered (source topic in the headers), valid ones are stored in one transaction, and the caller
acks only after this returned. Storing is idempotent and order-independent, so redelivery changes nothing.
"""

from __future__ import annotations

from core.order_records import decode_order_record
from db.queries.order_records import store_records
from processors.batch_store import batch_handler

handle_record_batch = batch_handler(decode_order_record, store_records, what="order record")
"""`(pool, publisher, messages, *, dlq_topic) -> int`: store the batch's valid records, dead-letter the
rest; returns how many were dead-lettered."""
