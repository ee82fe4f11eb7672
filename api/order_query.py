"""The filters and sort shared by the order list and the export, validated as one dependency."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Query

from api.deps import TokenFilter, UserId
from api.problems import FieldError, ProblemError
from api.schemas.common import (
    PRINTABLE_PATTERN,
    CheckoutFormStatus,
    FulfillmentStatus,
    InstantFrom,
    InstantUntil,
)
from core.order_fields import FILTERS, OrderField
from db.queries.orders import OrderFilters, SortKey

SortParam = Literal["-updated_at", "-bought_at"]
_SORT_KEYS: dict[SortParam, SortKey] = {"-updated_at": "updated_at", "-bought_at": "bought_at"}


@dataclass(frozen=True, slots=True)
class OrderQuery:
    """Whose orders, which ones, in which order."""

    user_id: str
    filters: OrderFilters
    sort: SortKey


# Filters whose values Allegro enumerates; every other order field filter takes printable text.
FILTER_VALUES: dict[str, Any] = {"status": CheckoutFormStatus, "fulfillment_status": FulfillmentStatus}


def _filter_parameter(order_field: OrderField) -> inspect.Parameter:
    assert order_field.filter is not None  # noqa: S101 - FILTERS holds filterable fields only
    values = FILTER_VALUES.get(order_field.filter)
    query = (
        Query(description=order_field.description)
        if values is not None
        else Query(
            min_length=1, max_length=256, pattern=PRINTABLE_PATTERN, description=order_field.description
        )
    )
    return inspect.Parameter(
        order_field.filter,
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[(values or str) | None, query],
    )


def field_filters(**values: str | None) -> tuple[tuple[str, str], ...]:
    """The order field filters given (`core.order_fields.FILTERS`): (field name, value) pairs."""
    return tuple((f.name, value) for f in FILTERS if (value := values.get(str(f.filter))) is not None)


# FastAPI reads the query parameters off the signature: one per filterable order field.
setattr(field_filters, "__signature__", inspect.Signature([_filter_parameter(f) for f in FILTERS]))  # noqa: B010


# How the range filters read their values (`api.schemas.common.InstantFrom`, `InstantUntil`).
_FROM = "(RFC 3339 with an offset, or a plain `YYYY-MM-DD`: that day's 00:00 UTC)"
_UNTIL = (
    "(RFC 3339 with an offset, or a plain `YYYY-MM-DD`: up to that day's end in UTC, the whole day included)"
)


def _check_range(name: str, gte: datetime | None, lte: datetime | None) -> FieldError | None:
    if gte is not None and lte is not None and gte > lte:
        return FieldError(
            loc=["query", f"{name}_gte"], msg=f"{name}_gte must not be after {name}_lte", type="range_order"
        )
    return None


async def order_query(
    user_id: UserId,
    equal: Annotated[tuple[tuple[str, str], ...], Depends(field_filters)],
    token_id: TokenFilter = None,
    bought_at_gte: Annotated[InstantFrom | None, Query(description=f"Bought at or after {_FROM}.")] = None,
    bought_at_lte: Annotated[InstantUntil | None, Query(description=f"Bought at or before {_UNTIL}.")] = None,
    updated_at_gte: Annotated[InstantFrom | None, Query(description=f"Updated at or after {_FROM}.")] = None,
    updated_at_lte: Annotated[
        InstantUntil | None, Query(description=f"Updated at or before {_UNTIL}.")
    ] = None,
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
        bought_at_gte=bought_at_gte,
        bought_at_lte=bought_at_lte,
        updated_at_gte=updated_at_gte,
        updated_at_lte=updated_at_lte,
        equal=equal,
        undelivered_after_days=undelivered_after_days,
    )
    return OrderQuery(user_id=user_id, filters=filters, sort=_SORT_KEYS[sort])


OrderQueryDep = Annotated[OrderQuery, Depends(order_query)]
