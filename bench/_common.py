"""Shared bench helpers: realistic snapshots from the Allegro samples, a bench database, fresh topics."""

from __future__ import annotations

import random
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka.admin import AIOKafkaAdminClient

import reference
from core.contract import order_key
from core.sending import Record, create_producer, send_all
from core.settings import KafkaSettings
from core.topics import ensure_topics, topic_specs
from db.migrate import create_database, drop_database, sibling_database_url, upgrade

ROOT = Path(__file__).resolve().parent.parent


def progress(message: str) -> None:
    """A progress line on stderr (stdout is for the result)."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def sample_forms() -> list[dict[str, Any]]:
    """The checkout forms of the Allegro sandbox samples (`reference/allegro/samples`)."""
    samples = reference.ALLEGRO_SAMPLES
    forms: list[dict[str, Any]] = []
    for path in sorted(samples.glob("checkout-forms-*.json")):
        forms += orjson.loads(path.read_bytes())["checkoutForms"]
    if not forms:
        raise SystemExit(f"no checkout form samples under {samples}")
    return forms


def snapshot_values(token_id: uuid.UUID, orders: int, *, revisions: int = 1, seed: int = 0) -> list[bytes]:
    """Encoded snapshots of `orders` forms (~2.7 KB each), `revisions` per form, in revision order."""
    # Seeded by the token too: ids (line item ids included) must be unique across runs and tokens, as
    # Allegro's are, or the merge check would find every earlier run's orders sharing line items.
    rng = random.Random(token_id.int ^ seed)
    samples = sample_forms()
    base = datetime(2026, 1, 1, tzinfo=UTC)
    values = []
    for index in range(orders):
        form = dict(rng.choice(samples))
        form_id = str(uuid.UUID(int=rng.getrandbits(128)))
        items = [{**item, "id": str(uuid.UUID(int=rng.getrandbits(128)))} for item in form["lineItems"]]
        for version in range(1, revisions + 1):
            updated = base + timedelta(seconds=index, minutes=version)
            form |= {
                "id": form_id,
                "lineItems": items,
                "revision": f"{version:04d}{index:08x}",
                "updatedAt": updated.isoformat(),
            }
            values.append(
                orjson.dumps(
                    {
                        "schema_version": 1,
                        "token_id": str(token_id),
                        "user_id": "bench-user",
                        "seller_id": "bench-seller",
                        "checkout_form_id": form_id,
                        "revision": form["revision"],
                        "updated_at": updated,
                        "bought_at": base,
                        "status": form["status"],
                        "fulfillment_status": form["fulfillment"]["status"],
                        "buyer_login": form["buyer"]["login"],
                        "total_amount": form["summary"]["totalToPay"]["amount"],
                        "currency": form["summary"]["totalToPay"]["currency"],
                        "line_item_ids": [item["id"] for item in items],
                        "fetched_at": updated,
                        "source": "backfill",
                        "sync_run_id": str(token_id),
                        "checkout_form": orjson.dumps(form).decode(),
                    }
                )
            )
    return values


def bench_database(url: str, suffix: str = "sinkbench", *, empty: bool = False) -> str:
    """A migrated database of the bench's own (`<name>_<suffix>`), so tests and colleagues are untouched;
    `empty` drops what earlier runs left, so every run measures the same table sizes."""
    bench_url = sibling_database_url(url, suffix)
    if empty:
        drop_database(bench_url)
    create_database(bench_url)
    upgrade(bench_url, "head")
    return bench_url


@asynccontextmanager
async def fresh_topics(bootstrap: str, partitions: int = 6) -> AsyncIterator[KafkaSettings]:
    """Kafka settings with topic names of this run's own, created with the contract's configs and deleted
    when the run ends: a pipeline run at 1M orders leaves about 10 GB in them, and a development broker
    that kept every run's topics filled its disk."""
    settings = KafkaSettings(bootstrap_servers=bootstrap).prefixed(
        f"bench{uuid.uuid4().hex[:8]}", partitions=partitions
    )
    specs = topic_specs(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await ensure_topics(admin, specs, 1)
        yield settings
    finally:
        try:
            await admin.delete_topics([spec.name for spec in specs])
        finally:
            await admin.close()


async def fill_topic(bootstrap: str, topic: str, values: list[bytes]) -> None:
    """Publish the snapshots keyed by order, as the poller does."""
    producer = create_producer(
        KafkaSettings(bootstrap_servers=bootstrap), role="bench", max_request_size=16 << 20
    )
    await producer.start()
    try:
        records = []
        for value in values:
            envelope = orjson.loads(value)
            records.append(
                Record(order_key(envelope["token_id"], envelope["checkout_form_id"]).encode(), value)
            )
        await send_all(producer, topic, records)
    finally:
        await producer.stop()
