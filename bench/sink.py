"""Sink benchmark: the orders agent against the raw database ceiling, the seed's ORM way, re-delivery and a
plain aiokafka consumer, all in one run on fresh topics, fresh tokens and a database of its own.

Phases (N = --orders snapshots of ~2.7 KB forms built from the Allegro samples):
- ceiling: asyncpg bulk upsert (orders + order_revisions, one transaction per --batch) of the same rows,
  measured first and last (the better run is the baseline);
- agent:   `python -m processors worker` consuming a pre-filled topic (rate from first to last row);
- plain:   a plain aiokafka consumer calling the same handler, on another pre-filled topic;
- orm:     one SQLAlchemy ORM upsert + commit per order, on --orm-orders of them (the seed design);
- redelivery: the handler fed the agent's already stored snapshots again, against its first load.

Usage: python -m bench.sink [--orders 20000] [--orm-orders 2000] [--batch 4000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import create_async_engine

from bench._common import ROOT, bench_database, fill_topic, fresh_topics, progress, snapshot_values
from core.contract import decode_snapshot
from core.runtime import freeze_start_up_objects, use_uvloop
from core.sending import create_producer
from core.settings import KafkaSettings, ProcessorSettings
from db.engine import async_url, create_session_factory
from db.models import Order
from db.queries import sink
from processors.handler import Topics, _row, handle_snapshot_batch
from processors.messages import RawMessage
from processors.publishing import KafkaRecordPublisher
from tests.environments import worker_env

# The worker's defaults, so the plain consumer and the handler phases run the handler as the agent does.
LANES = ProcessorSettings().store_lanes
LANE_MIN_MESSAGES = ProcessorSettings().store_lane_min_messages


def topics_of(kafka: KafkaSettings) -> Topics:
    """The handler's output topics."""
    return Topics(orders=kafka.orders_topic, revisions=kafka.revisions_topic, dlq=kafka.dlq_topic)


async def ceiling(pool: asyncpg.Pool, values: list[bytes], batch: int) -> float:
    """Orders/s of the bare set-based upsert, rows prepared beforehand."""
    rows = [_row(decode_snapshot(v)) for v in values]
    started = time.perf_counter()
    for i in range(0, len(rows), batch):
        chunk = rows[i : i + batch]
        async with pool.acquire() as conn, conn.transaction():
            # The same statement the handler sends: orders upserted, their revisions added in passing.
            await sink.upsert_orders(conn, chunk, {})
    return len(rows) / (time.perf_counter() - started)


async def orm_per_order(database_url: str, values: list[bytes]) -> float:
    """Orders/s of the seed design: one ORM upsert statement and one commit per order."""
    engine = create_async_engine(async_url(database_url), pool_size=2)
    sessions = create_session_factory(engine)
    # Connected and introspected before the clock starts, as the agent's start-up is not timed either.
    async with sessions() as session:
        await session.execute(text("SELECT 1"))
    started = time.perf_counter()
    for value in values:
        envelope = decode_snapshot(value)
        row = {
            "token_id": envelope.token_id,
            "user_id": envelope.user_id,
            "checkout_form_id": envelope.checkout_form_id,
            "revision": envelope.revision,
            "status": envelope.status,
            "updated_at": envelope.updated_at,
            "bought_at": envelope.bought_at,
            "order_data": json.loads(envelope.checkout_form or "{}"),
            "source": envelope.source,
            "line_item_ids": envelope.line_item_ids,
        }
        statement = insert(Order).values(**row)
        statement = statement.on_conflict_do_update(
            constraint="uq_orders_token_id_checkout_form_id", set_={k: statement.excluded[k] for k in row}
        )
        async with sessions() as session:
            await session.execute(statement)
            await session.commit()
    rate = len(values) / (time.perf_counter() - started)
    await engine.dispose()
    return rate


async def count(pool: asyncpg.Pool, token_id: uuid.UUID) -> int:
    value: int = await pool.fetchval("SELECT count(*) FROM orders WHERE token_id = $1", token_id)
    return value


async def rate_of_rows(
    pool: asyncpg.Pool, token_id: uuid.UUID, total: int, alive: Callable[[], bool]
) -> float:
    """Orders/s from the first commit to the last (start-up and group join excluded), read from the rows'
    commit timestamps once all are stored. Waiting polls twice a second: counting rows every 50 ms had
    cost PostgreSQL a sixth of a core, taken from the consumer under test."""
    while await count(pool, token_id) < total:
        if not alive():
            raise SystemExit("the consumer under test died")
        await asyncio.sleep(0.5)
    first, last, in_first = await pool.fetchrow(
        """WITH c AS (SELECT pg_xact_commit_timestamp(xmin) AS at FROM orders WHERE token_id = $1)
        SELECT min(at), max(at), count(*) FILTER (WHERE at = (SELECT min(at) FROM c)) FROM c""",
        token_id,
    )
    if first is None:
        raise SystemExit("PostgreSQL does not track commit timestamps: set track_commit_timestamp = on")
    seconds = float((last - first).total_seconds())
    return (total - int(in_first)) / max(seconds, 1e-6)


async def agent(
    kafka: KafkaSettings, database_url: str, pool: asyncpg.Pool, token: uuid.UUID, n: int
) -> float:
    """Orders/s of the Faust worker on a pre-filled topic."""
    env = {
        **os.environ,
        **worker_env(kafka, database_url, Path(tempfile.mkdtemp(prefix="bench-faust-"))),
        "LOG_LEVEL": "WARNING",
    }
    # Popen only forks; the wait below is bounded and happens once the phase is over.
    worker = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-m", "processors", "worker", "-l", "warn", "--without-web"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        return await rate_of_rows(pool, token, n, lambda: worker.poll() is None)
    finally:
        worker.terminate()
        worker.wait(30)


async def plain_consumer(
    kafka: KafkaSettings, pool: asyncpg.Pool, token: uuid.UUID, n: int, batch: int
) -> float:
    """Orders/s of a plain aiokafka consumer calling the same handler, committing after each batch."""
    consumer = AIOKafkaConsumer(
        kafka.snapshots_topic,
        bootstrap_servers=kafka.bootstrap_servers,
        group_id=f"plain-{uuid.uuid4().hex}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 << 20,
    )
    # The worker's own producer settings, so the handler is measured as the worker runs it.
    producer = create_producer(kafka, role="bench", max_request_size=16 << 20)
    await consumer.start()
    await producer.start()
    publisher = KafkaRecordPublisher(producer)

    async def consume() -> None:
        while True:
            polled = await consumer.getmany(timeout_ms=200, max_records=batch)
            messages = [
                RawMessage(
                    r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers or ()), r.timestamp / 1000
                )
                for records in polled.values()
                for r in records
            ]
            if messages:
                await handle_snapshot_batch(
                    pool,
                    publisher,
                    messages,
                    topics=topics_of(kafka),
                    max_message_bytes=kafka.max_message_bytes,
                    lanes=LANES,
                    lane_min_messages=LANE_MIN_MESSAGES,
                )
                await consumer.commit()

    task = asyncio.create_task(consume())
    try:
        return await rate_of_rows(pool, token, n, lambda: not task.done())
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await consumer.stop()
        await producer.stop()


async def handler_rate(pool: asyncpg.Pool, kafka: KafkaSettings, values: list[bytes], batch: int) -> float:
    """Orders/s of the handler alone (Kafka publishing included) fed `values` in batches."""
    # The worker's own producer settings, so the handler is measured as the worker runs it.
    producer = create_producer(kafka, role="bench", max_request_size=16 << 20)
    await producer.start()
    messages = [RawMessage(kafka.snapshots_topic, 0, i, None, v, ()) for i, v in enumerate(values)]
    started = time.perf_counter()
    for i in range(0, len(messages), batch):
        await handle_snapshot_batch(
            pool,
            KafkaRecordPublisher(producer),
            messages[i : i + batch],
            topics=topics_of(kafka),
            max_message_bytes=kafka.max_message_bytes,
            lanes=LANES,
            lane_min_messages=LANE_MIN_MESSAGES,
        )
    rate = len(messages) / (time.perf_counter() - started)
    await producer.stop()
    return rate


async def timed(label: str, action: Awaitable[float]) -> float:
    progress(f"{label} ...")
    rate = await action
    progress(f"{label}: {rate:,.0f} orders/s")
    return rate


async def run(args: argparse.Namespace, database_url: str, bootstrap: str) -> dict[str, object]:
    n, batch = args.orders, args.batch
    tokens = {name: uuid.uuid4() for name in ("ceiling", "agent", "plain", "orm", "handler", "ceiling-again")}
    progress(f"building {n:,} snapshots per phase")
    values = {
        name: snapshot_values(t, n if name != "orm" else args.orm_orders, seed=i)
        for i, (name, t) in enumerate(tokens.items())
    }
    async with (
        fresh_topics(bootstrap) as agent_topics,
        fresh_topics(bootstrap) as plain_topics,
        await sink.create_pool(database_url, min_size=1, max_size=4) as pool,
    ):
        await fill_topic(bootstrap, agent_topics.snapshots_topic, values["agent"])
        await fill_topic(bootstrap, plain_topics.snapshots_topic, values["plain"])
        ceiling_rate = await timed("ceiling (asyncpg bulk upsert)", ceiling(pool, values["ceiling"], batch))
        agent_rate = await timed("faust agent", agent(agent_topics, database_url, pool, tokens["agent"], n))
        plain_rate = await timed(
            "plain aiokafka consumer", plain_consumer(plain_topics, pool, tokens["plain"], n, batch)
        )
        orm_rate = await timed("seed ORM per order", orm_per_order(database_url, values["orm"]))
        first_rate = await timed(
            "handler first load", handler_rate(pool, agent_topics, values["handler"], batch)
        )
        again_rate = await timed(
            "handler re-delivery", handler_rate(pool, agent_topics, values["handler"], batch)
        )
        # The ceiling once more, on the fuller tables at the end: the better of the two is the baseline.
        ceiling_again = await timed(
            "ceiling again (asyncpg bulk upsert)", ceiling(pool, values["ceiling-again"], batch)
        )
    return {
        "orders": n,
        "orm_orders": args.orm_orders,
        "batch": batch,
        "form_bytes": len(values["agent"][0]),
        "agent_orders_per_s": round(agent_rate),
        "ceiling_orders_per_s": round(max(ceiling_rate, ceiling_again)),
        "ceiling_runs_orders_per_s": [round(ceiling_rate), round(ceiling_again)],
        "agent_vs_ceiling": round(agent_rate / max(ceiling_rate, ceiling_again), 3),
        "orm_orders_per_s": round(orm_rate),
        "agent_vs_orm": round(agent_rate / orm_rate, 1),
        "plain_consumer_orders_per_s": round(plain_rate),
        "agent_vs_plain_consumer": round(agent_rate / plain_rate, 3),
        "first_load_orders_per_s": round(first_rate),
        "redelivery_orders_per_s": round(again_rate),
        "redelivery_vs_first_load": round(again_rate / first_rate, 2),
        "targets": {
            "agent_vs_ceiling": 0.6,
            "agent_vs_orm": 10,
            "redelivery_vs_first_load": 3,
            "agent_vs_plain_consumer": 0.6,
        },
    }


def main() -> None:
    """Run every phase and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--orm-orders", type=int, default=2_000)
    parser.add_argument(
        "--batch",
        type=int,
        default=ProcessorSettings().batch_size,
        help="snapshots per transaction of the ceiling, plain-consumer and handler phases (the worker's)",
    )
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "postgresql+asyncpg://backup:backup@127.0.0.1:5432/backup")
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    database_url = bench_database(async_url(url), empty=True)
    # As the worker does, so the plain consumer and the handler phases run under the same runtime.
    freeze_start_up_objects()
    use_uvloop()
    print(json.dumps(asyncio.run(run(args, database_url, bootstrap))))


if __name__ == "__main__":
    main()
