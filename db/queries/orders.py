"""Read queries over orders and order_revisions: keyset pages, one order, its revisions, export stream.

Ordering is `sort_column DESC, id DESC`, exactly the order of the indexes (user_id, updated_at DESC,
id DESC) and (user_id, bought_at DESC, id DESC). PostgreSQL puts NULLs first in a DESC order, and so
do those indexes, so rows without the sort time come first and the keyset condition names them
explicitly. The stored form is its text of record (`order_json`, the JSON text exactly as fetched; rows
stored before migration 0006 have only `order_data`, whose text stands in), which the API splices into
its response without decoding it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

import asyncpg
from sqlalchemy import ColumnElement, Select, Text, and_, cast, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from core.order_fields import KEY, SHOWN_NAMES, STORED, VERSION
from db.models import Order, OrderRevision
from db.queries.order_records import undelivered_condition

SortKey = Literal["updated_at", "bought_at"]


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFilters:
    """Optional filters of the order list and export; None means "any"."""

    token_id: UUID | None = None
    bought_at_gte: datetime | None = None
    bought_at_lte: datetime | None = None
    updated_at_gte: datetime | None = None
    updated_at_lte: datetime | None = None
    # (order field name, value) pairs an order must equal (`core.order_fields.FILTERS`).
    equal: tuple[tuple[str, str], ...] = ()
    # Shipped at least this many days ago and not delivered (db.queries.order_records.undelivered_condition).
    # Days, not an instant, so that the filter (and a page cursor bound to it) stays the same across pages.
    undelivered_after_days: int | None = None


@dataclass(frozen=True, slots=True)
class Keyset:
    """Position after a row: its sort value (None when that row had none) and its id."""

    value: datetime | None
    id: int


_BOUGHT_AT = SHOWN_NAMES.index("bought_at")


@dataclass(frozen=True, slots=True)
class OrderView:
    """One stored order with its form as JSON text; `fields` holds the order's fields the API shows, in
    `core.order_fields.SHOWN` order."""

    fields: tuple[Any, ...]
    id: int
    token_id: UUID
    checkout_form_id: str
    revision: str
    updated_at: datetime | None
    source: str
    first_seen_at: datetime
    last_synced_at: datetime
    superseded_at: datetime | None
    superseded_by: str | None
    missing_upstream_since: datetime | None
    order_data: str

    def sort_value(self, sort: SortKey) -> datetime | None:
        """The value of the sort column, for the next page's keyset."""
        bought_at: datetime | None = self.fields[_BOUGHT_AT]
        return self.updated_at if sort == "updated_at" else bought_at


@dataclass(frozen=True, slots=True)
class RevisionRow:
    """One captured revision of an order, form as JSON text."""

    revision: str
    updated_at: datetime | None
    captured_at: datetime
    source: str
    order_data: str


_COLUMNS = Order.__table__.c
_BOUGHT_AT_COLUMN = _COLUMNS.bought_at
# The columns of `OrderView` but its fields, in its order; the order's shown fields follow them.
_HEAD = ("id", *KEY, *VERSION, *STORED)
_ORDER_COLUMNS = (
    *(_COLUMNS[name] for name in _HEAD),
    func.coalesce(Order.order_json, cast(Order.order_data, Text)),
    *(_COLUMNS[name] for name in SHOWN_NAMES),
)


def _order_row(row: Sequence[Any]) -> OrderView:
    split = len(_HEAD) + 1  # the head's columns and the form's text
    return OrderView(tuple(row[split:]), *row[:split])


def _filter_conditions(user_id: str, filters: OrderFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Order.user_id == user_id]
    if filters.token_id is not None:
        conditions.append(Order.token_id == filters.token_id)
    conditions += [_COLUMNS[name] == value for name, value in filters.equal]
    ranges: tuple[tuple[Any, datetime | None, datetime | None], ...] = (
        (_BOUGHT_AT_COLUMN, filters.bought_at_gte, filters.bought_at_lte),
        (Order.updated_at, filters.updated_at_gte, filters.updated_at_lte),
    )
    for column, gte, lte in ranges:
        if gte is not None:
            conditions.append(column >= gte)
        if lte is not None:
            conditions.append(column <= lte)
    if filters.undelivered_after_days is not None:
        cutoff = datetime.now(UTC) - timedelta(days=filters.undelivered_after_days)
        conditions.append(undelivered_condition(Order.token_id, Order.checkout_form_id, cutoff))
    return conditions


def _after(sort_column: Any, after: Keyset) -> ColumnElement[bool]:
    """Rows strictly after the keyset in `sort_column DESC NULLS FIRST, id DESC` order."""
    if after.value is None:
        # Still inside the leading NULL block: the rest of it, then every row with a value.
        return or_(and_(sort_column.is_(None), Order.id < after.id), sort_column.is_not(None))
    # A row comparison is NULL for rows without a value, which correctly excludes the NULL block.
    return tuple_(sort_column, Order.id) < tuple_(after.value, after.id)


def _ordered_orders(user_id: str, filters: OrderFilters, sort: SortKey) -> Select[*tuple[Any, ...]]:
    sort_column = Order.updated_at if sort == "updated_at" else _BOUGHT_AT_COLUMN
    return (
        select(*_ORDER_COLUMNS)
        .where(*_filter_conditions(user_id, filters))
        .order_by(sort_column.desc(), Order.id.desc())
    )


def order_page_statement(
    *, user_id: str, filters: OrderFilters, sort: SortKey, after: Keyset | None, limit: int
) -> Select[*tuple[Any, ...]]:
    """The keyset page query (exposed so its plan can be checked)."""
    statement = _ordered_orders(user_id, filters, sort).limit(limit)
    if after is not None:
        sort_column = Order.updated_at if sort == "updated_at" else _BOUGHT_AT_COLUMN
        statement = statement.where(_after(sort_column, after))
    return statement


async def list_orders_page(
    session: AsyncSession,
    *,
    user_id: str,
    filters: OrderFilters,
    sort: SortKey,
    after: Keyset | None,
    limit: int,
) -> list[OrderView]:
    """Up to `limit` orders of the user after the keyset, newest first."""
    statement = order_page_statement(user_id=user_id, filters=filters, sort=sort, after=after, limit=limit)
    result = await session.execute(statement)
    return [_order_row(row) for row in result]


# The single-order lookup is the hottest read: it runs as one prepared statement on a plain asyncpg
# connection, about twenty times cheaper than an ORM session with its BEGIN/ROLLBACK (docs/PERFORMANCE.md).
# It goes through the user's token ids so the (token_id, checkout_form_id) unique index answers it;
# orders whose token row is gone (restored from Kafka without it) are reachable only by listing.
_ORDER_SELECT_LIST = ", ".join((*_HEAD, "coalesce(order_json, order_data::text)", *SHOWN_NAMES))
GET_ORDER_SQL = (
    f"SELECT {_ORDER_SELECT_LIST} FROM orders"  # noqa: S608 - constant column names, values are parameters
    # One probe of ix_orders_user_id_checkout_form_id; orders carry their user, so an order restored
    # from Kafka without its token row is found too.
    " WHERE user_id = $1 AND checkout_form_id = $2"
    " AND ($3::uuid IS NULL OR token_id = $3::uuid)"
    " ORDER BY updated_at DESC NULLS LAST, id DESC LIMIT 1"
)


async def get_order(
    connection: asyncpg.Connection | asyncpg.Pool,
    *,
    user_id: str,
    checkout_form_id: str,
    token_id: UUID | None = None,
) -> OrderView | None:
    """One order of the user; with several tokens holding the id, the most recently updated one."""
    row = await connection.fetchrow(GET_ORDER_SQL, user_id, checkout_form_id, token_id)
    return _order_row(tuple(row)) if row is not None else None


async def list_revisions(
    session: AsyncSession, *, token_id: UUID, checkout_form_id: str, limit: int, offset: int
) -> list[RevisionRow]:
    """Captured revisions of one order, newest capture first."""
    statement = (
        select(
            OrderRevision.revision,
            OrderRevision.updated_at,
            OrderRevision.captured_at,
            OrderRevision.source,
            func.coalesce(OrderRevision.order_json, cast(OrderRevision.order_data, Text)),
        )
        .where(OrderRevision.token_id == token_id, OrderRevision.checkout_form_id == checkout_form_id)
        .order_by(OrderRevision.captured_at.desc(), OrderRevision.id.desc())
        .limit(limit)
        .offset(offset)
    )
    result = await session.execute(statement)
    return [RevisionRow(*row) for row in result]


async def stream_orders(
    connection: AsyncConnection, *, user_id: str, filters: OrderFilters, sort: SortKey, batch_size: int
) -> AsyncIterator[Sequence[OrderView]]:
    """Every matching order in list order, in batches, through a server-side cursor (constant memory)."""
    statement = _ordered_orders(user_id, filters, sort).execution_options(yield_per=batch_size)
    result = await connection.stream(statement)
    async for partition in result.partitions(batch_size):
        yield [_order_row(row) for row in partition]
