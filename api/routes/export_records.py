"""The export with order records (`include`): each batch of orders, then their records, one lookup per
batch on the read pool (the export's own connection is busy with its server-side cursor)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from api.order_query import OrderQuery
from api.record_views import csv_header_with_records, csv_with_records, ndjson_with_records
from core.order_records import RecordKind
from db.queries.order_records import records_of_orders
from db.queries.orders import stream_orders

EXPORT_BATCH_ROWS = 500


async def export_with_records(
    connection: AsyncConnection,
    reads: asyncpg.Pool,
    query: OrderQuery,
    export_format: str,
    include: tuple[RecordKind, ...],
) -> AsyncIterator[bytes]:
    """NDJSON or CSV chunks of every matching order with its records; closes `connection` at the end."""
    try:
        if export_format == "csv":
            yield csv_header_with_records(include)
        render = csv_with_records if export_format == "csv" else ndjson_with_records
        batches = stream_orders(
            connection,
            user_id=query.user_id,
            filters=query.filters,
            sort=query.sort,
            batch_size=EXPORT_BATCH_ROWS,
        )
        async for batch in batches:
            pairs = [(row.token_id, row.checkout_form_id) for row in batch]
            records = await records_of_orders(reads, pairs, include)
            yield render(batch, records, include)
    finally:
        await connection.close()
