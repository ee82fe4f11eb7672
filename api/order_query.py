"""The filters and sort shared by the order list and the export, validated as one dependency."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from fastapi import Depends, Query

from api.deps import TokenFilter, UserId
from api.problems import FieldError, ProblemError
from api.schemas.common import PRINTABLE_PATTERN, CheckoutFormStatus, FulfillmentStatus, Instant
from db.queries.orders import OrderFilters, SortKey

SortParam = Literal["-updated_at", "-bought_at"]
_SORT_KEYS: dict[SortParam, SortKey] = {"-updated_at": "updated_at", "-bought_at": "bought_at"}


@dataclass(frozen=True, slots=True)
class OrderQuery:
    """Whose orders, which ones, in which order."""

    user_id: str
    filters: OrderFilters
    sort: SortKey


def _check_range(name: str, gte: datetime | None, lte: datetime | None) -> FieldError | None:
    if gte is not None and lte is not None and gte > lte:
        return FieldError(
            loc=["query", f"{name}_gte"], msg=f"{name}_gte must not be after {name}_lte", type="range_order"
        )
    return None


async def order_query(
    user_id: UserId,
    token_id: TokenFilter = None,
    status: Annotated[CheckoutFormStatus | None, Query(description="Allegro checkout form status.")] = None,
    fulfillment_status: Annotated[FulfillmentStatus | None, Query(description="Seller's status.")] = None,
    bought_at_gte: Annotated[Instant | None, Query(description="Bought at or after (RFC 3339).")] = None,
    bought_at_lte: Annotated[Instant | None, Query(description="Bought at or before (RFC 3339).")] = None,
    updated_at_gte: Annotated[Instant | None, Query(description="Updated at or after (RFC 3339).")] = None,
    updated_at_lte: Annotated[Instant | None, Query(description="Updated at or before (RFC 3339).")] = None,
    buyer_login: Annotated[str | None, Query(min_length=1, max_length=256, pattern=PRINTABLE_PATTERN)] = None,
    sort: Annotated[SortParam, Query(description="Newest first by update or by purchase.")] = "-updated_at",
    undelivered_after_days: Annotated[
        int | None,
        Query(
            ge=0,
            le=3650,
            description="Only orders shipped (a shipment created) at least this many days ago of which some "
            "parcel has no DELIVERED tracking status stored.",
        ),
    ] = None,
) -> OrderQuery:
    """Validate the filters as a whole (ranges must not be inverted)."""
    errors = [
        error
        for error in (
            _check_range("bought_at", bought_at_gte, bought_at_lte),
            _check_range("updated_at", updated_at_gte, updated_at_lte),
        )
        if error is not None
    ]
    if errors:
        raise ProblemError(
            422, "a range's lower bound is after its upper bound", slug="validation-failed", errors=errors
        )
    filters = OrderFilters(
        token_id=token_id,
        status=status,
        fulfillment_status=fulfillment_status,
        bought_at_gte=bought_at_gte,
        bought_at_lte=bought_at_lte,
        updated_at_gte=updated_at_gte,
        updated_at_lte=updated_at_lte,
        buyer_login=buyer_login,
        undelivered_after_days=undelivered_after_days,
    )
    return OrderQuery(user_id=user_id, filters=filters, sort=_SORT_KEYS[sort])


OrderQueryDep = Annotated[OrderQuery, Depends(order_query)]
