"""`python -m bench.load_orders --orders N`: bulk-load realistic orders for one bench user, by COPY.

Forms are the Allegro sandbox samples (`reference/allegro/samples`) with
fresh ids, buyers, statuses and times, rendered from a pre-serialised template (serialising a 2.7 KB
dict a million times would dominate the run). The next chunk is rendered in a thread while the
current one is copied, so Python and PostgreSQL work at the same time. Only the bench user's rows are
touched; refuse `_test` databases so the test suite is never affected.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import orjson

import reference
from core.settings import get_settings
from db.engine import asyncpg_dsn

BENCH_USER = "bench-user"
STATUSES = ("READY_FOR_PROCESSING", "READY_FOR_PROCESSING", "READY_FOR_PROCESSING", "BOUGHT", "CANCELLED")
FULFILLMENT_STATUSES = ("NEW", "PROCESSING", "READY_FOR_SHIPMENT", "SENT", "PICKED_UP", "CANCELLED")
COLUMNS = (
    "token_id",
    "user_id",
    "checkout_form_id",
    "revision",
    "status",
    "fulfillment_status",
    "buyer_login",
    "bought_at",
    "updated_at",
    "total_amount",
    "currency",
    "line_item_ids",
    "order_data",
    "source",
    "first_seen_at",
    "last_synced_at",
)
_SLOT = re.compile(rb'"@@(\w+)@@"')
Record = tuple[Any, ...]


@dataclass(frozen=True)
class FormTemplate:
    """A serialised sample form split around its variable fields (`"@@NAME@@"` slots)."""

    pieces: tuple[bytes, ...]
    slots: tuple[str, ...]

    @classmethod
    def from_form(cls, form: dict[str, Any]) -> FormTemplate:
        """Replace the fields that vary per order by slots and serialise once."""
        form = orjson.loads(orjson.dumps(form))
        form.update(id="@@ID@@", status="@@STATUS@@", updatedAt="@@UPDATED@@", revision="@@REVISION@@")
        form["messageToSeller"] = "@@MESSAGE@@"
        form["buyer"]["login"] = "@@LOGIN@@"
        form["fulfillment"]["status"] = "@@FULFILLMENT@@"
        for item in form["lineItems"]:
            item.update(id="@@LINE_ITEM@@", boughtAt="@@BOUGHT@@")
        form["summary"]["totalToPay"]["amount"] = "@@TOTAL@@"
        parts = _SLOT.split(orjson.dumps(form))
        return cls(pieces=tuple(parts[0::2]), slots=tuple(p.decode() for p in parts[1::2]))

    def render(self, values: dict[str, bytes]) -> bytes:
        """The form with every slot replaced by its JSON-encoded value."""
        out = [self.pieces[0]]
        for slot, piece in zip(self.slots, self.pieces[1:], strict=True):
            out += (values[slot], piece)
        return b"".join(out)


def load_templates(samples: Path) -> list[FormTemplate]:
    """One template per sample form."""
    forms = [
        form
        for path in sorted(samples.glob("checkout-forms-*.json"))
        for form in orjson.loads(path.read_bytes())["checkoutForms"]
    ]
    if not forms:
        raise SystemExit(f"no checkout-form samples in {samples}")
    return [FormTemplate.from_form(form) for form in forms]


def _quoted(text: str) -> bytes:
    return orjson.dumps(text)


def _allegro_time(value: datetime) -> bytes:
    return _quoted(value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z")


def render_chunk(
    templates: list[FormTemplate], token_ids: list[uuid.UUID], seed: int, count: int, now: datetime
) -> list[Record]:
    """`count` order rows, deterministic for a seed."""
    rng = random.Random(seed)
    filler = "Prosze o szybka wysylke, dziekuje! " * 14
    rows: list[Record] = []
    for _ in range(count):
        form_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        line_item = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        bought = now - timedelta(seconds=rng.uniform(0, 365 * 86_400))
        updated = min(now, bought + timedelta(seconds=rng.uniform(0, 20 * 86_400)))
        status, fulfillment = rng.choice(STATUSES), rng.choice(FULFILLMENT_STATUSES)
        login = f"buyer_{rng.randrange(50_000)}"
        revision = f"{rng.getrandbits(32):08x}"
        total = Decimal(rng.randrange(500, 500_000)) / 100
        form = rng.choice(templates).render(
            {
                "ID": _quoted(form_id),
                "STATUS": _quoted(status),
                "UPDATED": _allegro_time(updated),
                "REVISION": _quoted(revision),
                "MESSAGE": _quoted(filler[: rng.randrange(len(filler))]),
                "LOGIN": _quoted(login),
                "FULFILLMENT": _quoted(fulfillment),
                "LINE_ITEM": _quoted(line_item),
                "BOUGHT": _allegro_time(bought),
                "TOTAL": _quoted(str(total)),
            }
        )
        rows.append(
            (
                rng.choice(token_ids),
                BENCH_USER,
                form_id,
                revision,
                status,
                fulfillment,
                login,
                bought,
                updated,
                total,
                "PLN",
                [line_item],
                form.decode(),
                "backfill",
                now,
                now,
            )
        )
    return rows


async def create_bench_tokens(conn: asyncpg.Connection, count: int, now: datetime) -> list[uuid.UUID]:
    """Active token rows (no secrets) for the bench user, one per simulated seller."""
    ids = [uuid.uuid4() for _ in range(count)]
    await conn.executemany(
        "INSERT INTO user_tokens (id, user_id, seller_id, login, status, last_sync_at, last_success_at,"
        " last_event_at) VALUES ($1, $2, $3, $4, 'active', $5, $5, $5)",
        [
            (token_id, BENCH_USER, f"bench-seller-{i}", f"bench_seller_{i}", now)
            for i, token_id in enumerate(ids)
        ],
    )
    return ids


async def load(dsn: str, *, orders: int, tokens: int, chunk: int, seed: int, reset: bool) -> dict[str, Any]:
    """Load the orders and return the figures."""
    templates = load_templates(reference.ALLEGRO_SAMPLES)
    now = datetime.now(UTC)
    conn = await asyncpg.connect(dsn)
    try:
        if reset:
            print(f"removing earlier rows of {BENCH_USER}", file=sys.stderr)
            await conn.execute(
                "DELETE FROM order_line_items"
                " WHERE token_id IN (SELECT id FROM user_tokens WHERE user_id = $1)",
                BENCH_USER,
            )
            await conn.execute("DELETE FROM orders WHERE user_id = $1", BENCH_USER)
            await conn.execute("DELETE FROM user_tokens WHERE user_id = $1", BENCH_USER)
        token_ids = await create_bench_tokens(conn, tokens, now)
        started = time.perf_counter()
        loaded, form_bytes = 0, 0
        next_rows = asyncio.create_task(
            asyncio.to_thread(render_chunk, templates, token_ids, seed, min(chunk, orders), now)
        )
        while loaded < orders:
            rows = await next_rows
            remaining = orders - loaded - len(rows)
            if remaining > 0:
                size = min(chunk, remaining)
                seed_n = seed + loaded + len(rows)
                next_rows = asyncio.create_task(
                    asyncio.to_thread(render_chunk, templates, token_ids, seed_n, size, now)
                )
            await conn.copy_records_to_table("orders", records=rows, columns=COLUMNS)
            # The merge check's lookup table, as the processor fills it for every stored order.
            await conn.copy_records_to_table(
                "order_line_items",
                records=[(row[0], item, row[2]) for row in rows for item in row[11]],
                columns=("token_id", "line_item_id", "checkout_form_id"),
            )
            loaded += len(rows)
            form_bytes += sum(len(row[12]) for row in rows)
            elapsed = time.perf_counter() - started
            print(f"{loaded:>9} orders  {loaded / elapsed:8.0f}/s", file=sys.stderr)
        elapsed = time.perf_counter() - started
        print("analyzing orders", file=sys.stderr)
        await conn.execute("ANALYZE orders")
        await conn.execute("ANALYZE order_line_items")
        total = await conn.fetchval("SELECT count(*) FROM orders WHERE user_id = $1", BENCH_USER)
    finally:
        await conn.close()
    return {
        "user_id": BENCH_USER,
        "orders_loaded": loaded,
        "orders_of_user": total,
        "tokens": tokens,
        "seconds": round(elapsed, 1),
        "orders_per_s": round(loaded / elapsed) if elapsed else None,
        "avg_form_bytes": round(form_bytes / loaded) if loaded else 0,
    }


def main() -> None:
    """Parse options, load, print the figures as the last stdout line."""
    parser = argparse.ArgumentParser(prog="python -m bench.load_orders", description=__doc__)
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--tokens", type=int, default=10, help="bench seller accounts to spread orders over")
    parser.add_argument("--chunk", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--append", action="store_true", help="keep the bench user's earlier rows")
    args = parser.parse_args()
    dsn = asyncpg_dsn(get_settings().database.url.get_secret_value())
    if dsn.rsplit("/", 1)[-1].split("?")[0].endswith("_test"):
        raise SystemExit("refusing to load bench data into a test database")
    figures = asyncio.run(
        load(
            dsn,
            orders=args.orders,
            tokens=args.tokens,
            chunk=args.chunk,
            seed=args.seed,
            reset=not args.append,
        )
    )
    print(orjson.dumps(figures).decode())


if __name__ == "__main__":
    main()
