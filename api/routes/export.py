"""`GET /v1/users/{user_id}/orders/export`: every matching order, streamed in constant memory.

The stream reads through a server-side cursor on its own connection, opened by the handler (the
request's session ends when the handler returns, before the body is sent) and yields one chunk per
batch, so memory holds one batch whatever the export's size; the server's flow control slows the
query to the client. With `include`, each batch's records are read in one lookup on the read pool (the
export's own connection is busy with its server-side cursor) before the batch is rendered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

import asyncpg
from fastapi import Query
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.background import BackgroundTask

from api.deps import ResourcesDep, v1_router
from api.order_query import OrderQuery, OrderQueryDep
from api.problems import problem_responses
from api.record_views import (
    IncludeParam,
    csv_header_with_records,
    csv_with_records,
    ndjson_with_records,
    parse_include,
)
from api.rendering import csv_header, csv_lines, ndjson_lines
from core.order_records import RecordKind
from db.queries.order_records import StoredRecord, records_of_orders
from db.queries.orders import OrderView, stream_orders

router = v1_router("orders")

EXPORT_BATCH_ROWS = 500
MEDIA_TYPES = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
ExportFormat = Literal["ndjson", "csv"]


@dataclass(frozen=True)
class ExportRenderer:
    """How an export turns out: `header` first (empty for NDJSON), then `render(batch, records)` per batch
    of orders, `records` being what `lookup(batch)` found (empty when there is no lookup)."""

    header: bytes
    render: Callable[[Sequence[OrderView], Sequence[StoredRecord]], bytes]
    lookup: Callable[[Sequence[OrderView]], Awaitable[Sequence[StoredRecord]]] | None = None


def export_renderer(
    export_format: ExportFormat, include: tuple[RecordKind, ...], reads: asyncpg.Pool
) -> ExportRenderer:
    """The renderer of `export_format`: the orders alone, or with the `include` records read on `reads`."""
    if not include:
        if export_format == "csv":
            return ExportRenderer(csv_header(), lambda rows, _: csv_lines(rows))
        return ExportRenderer(b"", lambda rows, _: ndjson_lines(rows))

    async def lookup(rows: Sequence[OrderView]) -> Sequence[StoredRecord]:
        return await records_of_orders(reads, [(row.token_id, row.checkout_form_id) for row in rows], include)

    if export_format == "csv":
        return ExportRenderer(
            csv_header_with_records(include),
            lambda rows, records: csv_with_records(rows, records, include),
            lookup,
        )
    return ExportRenderer(b"", lambda rows, records: ndjson_with_records(rows, records, include), lookup)


async def export_chunks(
    connection: AsyncConnection, query: OrderQuery, renderer: ExportRenderer
) -> AsyncIterator[bytes]:
    """The header, then one rendered chunk per batch of matching orders; closes `connection` at the end."""
    try:
        if renderer.header:
            yield renderer.header
        batches = stream_orders(
            connection,
            user_id=query.user_id,
            filters=query.filters,
            sort=query.sort,
            batch_size=EXPORT_BATCH_ROWS,
        )
        async for batch in batches:
            records = await renderer.lookup(batch) if renderer.lookup is not None else ()
            yield renderer.render(batch, records)
    finally:
        await connection.close()


@router.get(
    "/orders/export",
    response_class=StreamingResponse,
    summary="Export orders as NDJSON or CSV (streamed)",
    responses={
        200: {
            "description": "One order per line (NDJSON: the order document; CSV: columns, the form as JSON).",
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        },
        **problem_responses(401, 422),
    },
)
async def export_orders(
    query: OrderQueryDep,
    resources: ResourcesDep,
    export_format: Annotated[ExportFormat, Query(alias="format")] = "ndjson",
    include: IncludeParam = None,
) -> StreamingResponse:
    """Same filters and order as the list, without pages; `include` adds the orders' records (NDJSON:
    members as in `GET …/orders/{id}`; CSV: a JSON column per kind)."""
    renderer = export_renderer(export_format, parse_include(include), resources.reads)
    filename = f"orders-{query.user_id}.{export_format}"
    # Connected before the 200 goes out: a database that is away answers 503 (api.outages), not a
    # stream cut after its headers. The stream closes the connection; the background task closes it
    # too (a no-op then) when the stream never started (the client went away first).
    connection = await resources.engine.connect()
    return StreamingResponse(
        export_chunks(connection, query, renderer),
        media_type=MEDIA_TYPES[export_format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        background=BackgroundTask(connection.close),
    )
