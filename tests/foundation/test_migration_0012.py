"""Migration 0012 adds `orders.delivery_method_name` and fills it for the orders stored before it."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import orjson

from db.engine import asyncpg_dsn
from db.migrate import downgrade, upgrade

ORDERS = {
    "named": {"delivery": {"method": {"id": "m1", "name": "Allegro Paczkomaty InPost"}}},
    "not-a-text": {"delivery": {"method": {"name": 7}}},
    "no-delivery": {"status": "READY_FOR_PROCESSING"},
}


async def _recreate(database_url: str) -> str:
    base, _, name = database_url.rpartition("/")
    scratch = f"{name}_0012"
    conn = await asyncpg.connect(f"{asyncpg_dsn(base)}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{scratch}"')
    finally:
        await conn.close()
    return f"{base}/{scratch}"


async def _execute(url: str, statement: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return list(await conn.fetch(statement, *args))
    finally:
        await conn.close()


def test_stored_orders_get_their_delivery_method_name(database_url: str) -> None:
    url = asyncio.run(_recreate(database_url))
    upgrade(url, "0010")
    token_id = uuid.uuid4()
    for form_id, form in ORDERS.items():
        text = orjson.dumps(form).decode()
        asyncio.run(
            _execute(
                url,
                "INSERT INTO orders (token_id, user_id, checkout_form_id, revision, source, order_json,"
                " order_data) VALUES ($1, 'user-1', $2, 'r1', 'journal', $3::text, $3::text::jsonb)",
                token_id,
                form_id,
                text,
            )
        )
    # Stored without a query copy (jsonb refused its text): nothing to read it from.
    asyncio.run(
        _execute(
            url,
            "INSERT INTO orders (token_id, user_id, checkout_form_id, revision, source, order_json)"
            " VALUES ($1, 'user-1', 'no-copy', 'r1', 'journal', '{}')",
            token_id,
        )
    )
    upgrade(url, "0012")
    rows = asyncio.run(_execute(url, "SELECT checkout_form_id, delivery_method_name FROM orders"))
    assert {r["checkout_form_id"]: r["delivery_method_name"] for r in rows} == {
        "named": "Allegro Paczkomaty InPost",
        "not-a-text": None,
        "no-delivery": None,
        "no-copy": None,
    }
    downgrade(url, "0010")
    columns = asyncio.run(
        _execute(url, "SELECT column_name FROM information_schema.columns WHERE table_name = 'orders'")
    )
    assert "delivery_method_name" not in {c["column_name"] for c in columns}
