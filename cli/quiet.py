"""`allegro-backup quiet`: is the pipeline quiet? Every active token caught up with its journal and idle,
no sync run in flight, no order-record read due, and the worker's consumer group has read the snapshots,
sync-runs and order-records topics to their end (committed offsets at the end offsets), so nothing is on
its way into PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from core.settings import Settings
from core.topics import partition_ids
from db.engine import create_engine
from db.queries.quiet import busy_tokens, running_sync_runs
from db.queries.record_checks import due_reads

# A token counts as caught up when its journal was read successfully this recently: two journal
# intervals, plus slack for a slow Allegro answer.
FRESH_SLACK_SECONDS = 10.0


async def consumer_lag(settings: Settings, topics: list[str]) -> dict[str, int]:
    """Messages the worker's consumer group (`PROCESSOR__APP_ID`) has not committed yet, per topic."""
    kafka = settings.kafka
    partitions = [
        TopicPartition(t, p) for t in topics for p in await partition_ids(kafka.bootstrap_servers, t)
    ]
    admin = AIOKafkaAdminClient(
        bootstrap_servers=kafka.bootstrap_servers, client_id=f"{kafka.client_id}-quiet"
    )
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, enable_auto_commit=False)
    try:
        await admin.start()
        await consumer.start()
        committed = await admin.list_consumer_group_offsets(settings.processor.app_id)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
    finally:
        await consumer.stop()
        await admin.close()
    lag = dict.fromkeys(topics, 0)
    for tp in partitions:
        # No commit yet: everything still in the partition is unread.
        position = committed[tp].offset if tp in committed and committed[tp].offset >= 0 else starts[tp]
        lag[tp.topic] += max(0, ends[tp] - position)
    return lag


async def reasons_not_quiet(settings: Settings) -> list[str]:
    """Why the pipeline is not quiet; empty when it is."""
    reasons: list[str] = []
    # A quiet account is read at least every longest interval; its read times are written in batches.
    poller = settings.poller
    fresh_after = datetime.now(UTC) - timedelta(
        seconds=2 * poller.longest_journal_interval() + poller.poll_flush_seconds + FRESH_SLACK_SECONDS
    )
    engine = create_engine(settings.database)
    try:
        async with engine.connect() as connection:
            for token in await busy_tokens(connection, fresh_after=fresh_after):
                reasons.append(f"token {token.token_id}: {token.reason}")
            running = await running_sync_runs(connection)
            # Shipments, invoices and tracking the poller is about to read (producers.records).
            due = await due_reads(connection, now=datetime.now(UTC))
    finally:
        await engine.dispose()
    if running:
        reasons.append(f"{running} sync runs are running")
    if due:
        reasons.append(f"{due} order-record reads are due")
    kafka = settings.kafka
    for topic, lag in (
        await consumer_lag(settings, [kafka.snapshots_topic, kafka.sync_runs_topic, kafka.records_topic])
    ).items():
        if lag:
            reasons.append(f"{topic}: {lag} messages not yet stored by the worker")
    return reasons
