"""`GET /v1/users/{user_id}/orders/export`: every matching order, streamed in constant memory.

The stream reads through a server-side cursor on its own connection, opened by the handler (the
request's session ends when the handler returns, before the body is sent) and yields one chunk per
batch, so memory holds one batch whatever the export's size; the server's flow control slows the
query to the client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Literal

import asyncpg
from fastapi import Query
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.background import BackgroundTask

from api.deps import ResourcesDep, v1_router
from api.order_query import OrderQuery, OrderQueryDep
from api.problems import problem_responses
from api.record_views import IncludeParam, parse_include
from api.rendering import csv_header, csv_lines, ndjson_lines
from api.routes.export_records import export_with_records
from core.order_records import RecordKind
from db.queries.orders import stream_orders

router = v1_router("orders")

EXPORT_BATCH_ROWS = 500
MEDIA_TYPES = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


async def _export_chunks(
    connection: AsyncConnection,
    query: OrderQuery,
    export_format: str,
    include: tuple[RecordKind, ...] = (),
    reads: asyncpg.Pool | None = None,
) -> AsyncIterator[bytes]:
    if include and reads is not None:
        async for chunk in export_with_records(connection, reads, query, export_format, include):
            yield chunk
        return
    try:
        if export_format == "csv":
            yield csv_header()
        render = csv_lines if export_format == "csv" else ndjson_lines
        batches = stream_orders(
            connection,
            user_id=query.user_id,
            filters=query.filters,
            sort=query.sort,
            batch_size=EXPORT_BATCH_ROWS,
        )
        async for batch in batches:
            yield render(batch)
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
    export_format: Annotated[Literal["ndjson", "csv"], Query(alias="format")] = "ndjson",
    include: IncludeParam = None,
) -> StreamingResponse:
    """Same filters and order as the list, without pages; `include` adds the orders' records (NDJSON:
    members as in `GET …/orders/{id}`; CSV: a JSON column per kind)."""
    kinds = parse_include(include)
    filename = f"orders-{query.user_id}.{export_format}"
    # Connected before the 200 goes out: a database that is away answers 503 (api.outages), not a
    # stream cut after its headers. The stream closes the connection; the background task closes it
    # too (a no-op then) when the stream never started (the client went away first).
    connection = await resources.engine.connect()
    return StreamingResponse(
        _export_chunks(connection, query, export_format, kinds, resources.reads),
        media_type=MEDIA_TYPES[export_format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        background=BackgroundTask(connection.close),
    )
