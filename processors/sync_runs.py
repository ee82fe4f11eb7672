"""The sync-runs batch handler: lifecycle records from `allegro.sync-runs` into `sync_history`.

Same delivery rules as the other handlers (`processors.batch_store`): invalid records are dead-lettered
(source topic in the headers), valid ones are upserted in one transaction in Kafka order, and the caller
acks only after this returned. The upsert is order-safe (`db.queries.sync_history`), so redelivery
changes nothing.
"""

from __future__ import annotations

from core.contract import decode_sync_run
from db.queries.sync_history import upsert_sync_runs
from processors.batch_store import batch_handler

handle_sync_run_batch = batch_handler(decode_sync_run, upsert_sync_runs, what="sync-run record")
"""`(pool, publisher, messages, *, dlq_topic) -> int`: store the batch's valid records, dead-letter the
rest; returns how many were dead-lettered."""
