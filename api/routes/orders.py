"""Stored orders: keyset-paged list, one order, its revisions (`/v1/users/{user_id}/orders[...]`).

Responses are assembled as bytes around the stored JSON text; `response_model` still declares the
shapes for the OpenAPI document.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from api.cursors import InvalidCursor, query_hash
from api.deps import CheckoutFormId, ConfigDep, Limit, ReadPoolDep, SessionDep, TokenFilter, UserId, v1_router
from api.order_query import OrderQueryDep
from api.problems import FieldError, ProblemError, problem_responses
from api.record_views import IncludeParam, parse_include, records_members, with_records
from api.rendering import RawJSONResponse, json_bytes, order_document, revision_document
from api.schemas.orders import RevisionList
from api.schemas.records import OrderWithRecordsOut, OrderWithRecordsPage
from db.queries.order_records import records_of_orders
from db.queries.orders import Keyset, OrderView, get_order, list_orders_page, list_revisions

router = v1_router("orders")

Cursor = Annotated[
    str | None,
    Query(
        max_length=512, description="`next_cursor` of the previous page; only valid with the same filters."
    ),
]


@router.get(
    "/orders",
    response_model=OrderWithRecordsPage,
    response_class=RawJSONResponse,
    summary="List orders (keyset pagination)",
    responses=problem_responses(400, 401, 422),
)
async def list_orders(
    query: OrderQueryDep,
    config: ConfigDep,
    session: SessionDep,
    reads: ReadPoolDep,
    cursor: Cursor = None,
    limit: Limit = 50,
    include: IncludeParam = None,
) -> RawJSONResponse:
    """Newest first by `sort`; rows inserted while paging never shift or repeat the following pages.
    `include` adds each order's records, as on `GET …/orders/{id}`."""
    kinds = parse_include(include)
    scope = query_hash(user_id=query.user_id, sort=query.sort, filters=query.filters)
    after = None
    if cursor is not None:
        try:
            after = config.cursors.decode(cursor, query=scope)
        except InvalidCursor as exc:
            errors = [FieldError(loc=["query", "cursor"], msg=str(exc), type="invalid_cursor")]
            raise ProblemError(400, str(exc), slug="invalid-cursor", errors=errors) from exc
    # One row more than asked tells whether another page exists, so the last page has no cursor.
    rows = await list_orders_page(
        session, user_id=query.user_id, filters=query.filters, sort=query.sort, after=after, limit=limit + 1
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = config.cursors.encode(Keyset(last.sort_value(query.sort), last.id), query=scope)
    items = [order_document(row) for row in rows]
    if kinds:
        items = await with_records(reads, rows, items, kinds)
    body = {"items": items, "next_cursor": next_cursor}
    return RawJSONResponse(json_bytes(body))


async def _find_order(
    reads: ReadPoolDep, user_id: str, checkout_form_id: str, token_id: TokenFilter
) -> OrderView:
    order = await get_order(reads, user_id=user_id, checkout_form_id=checkout_form_id, token_id=token_id)
    if order is None:
        raise ProblemError(404, f"no order {checkout_form_id} for user {user_id}")
    return order


@router.get(
    "/orders/{checkout_form_id}",
    response_model=OrderWithRecordsOut,
    response_class=RawJSONResponse,
    summary="One order",
    responses=problem_responses(401, 404, 422),
)
async def get_one_order(
    user_id: UserId,
    checkout_form_id: CheckoutFormId,
    reads: ReadPoolDep,
    token_id: TokenFilter = None,
    include: IncludeParam = None,
) -> RawJSONResponse:
    """The order with this checkout form id.

    When several of the user's tokens hold the same id (the same seller linked twice), the most
    recently updated copy is returned; pass `token_id` to choose one. `include` adds the order's
    stored records: `shipments`, `invoices` (each the current record or null) and `tracking` (one per
    waybill), exactly as Allegro sent them, kept after Allegro purged the order.
    """
    kinds = parse_include(include)
    order = await _find_order(reads, user_id, checkout_form_id, token_id)
    document = order_document(order)
    if kinds:
        records = await records_of_orders(reads, [(order.token_id, checkout_form_id)], kinds)
        document |= records_members(records, kinds)
    return RawJSONResponse(json_bytes(document))


@router.get(
    "/orders/{checkout_form_id}/revisions",
    response_model=RevisionList,
    response_class=RawJSONResponse,
    summary="Revision history of one order",
    responses=problem_responses(401, 404, 422),
)
async def get_order_revisions(
    user_id: UserId,
    checkout_form_id: CheckoutFormId,
    reads: ReadPoolDep,
    session: SessionDep,
    token_id: TokenFilter = None,
    limit: Limit = 100,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> RawJSONResponse:
    """Every captured revision of the order (of the copy chosen as for `GET …/orders/{id}`)."""
    order = await _find_order(reads, user_id, checkout_form_id, token_id)
    revisions = await list_revisions(
        session, token_id=order.token_id, checkout_form_id=checkout_form_id, limit=limit, offset=offset
    )
    body = {
        "token_id": str(order.token_id),
        "checkout_form_id": checkout_form_id,
        "items": [revision_document(revision) for revision in revisions],
    }
    return RawJSONResponse(json_bytes(body))
