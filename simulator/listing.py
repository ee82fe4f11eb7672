"""`GET /order/checkout-forms`: parameter checks, filters, sorting, the 10,000 offset cap, paging."""

import time
from collections.abc import Mapping
from dataclasses import dataclass

from simulator.clock import parse_iso_us
from simulator.lifecycle import FULFILLMENT_STATUSES, ORDER_STATUSES
from simulator.orders import OrderBook
from simulator.responses import rest_error
from simulator.store import OrderRecord, Seller

MAX_WINDOW = 10_000
SORTS = ("lineItems.boughtAt", "-lineItems.boughtAt", "updatedAt", "-updatedAt")
# query parameter -> (record attribute, allowed values or None for any)
_EQUALITY = {
    "status": ("status", ORDER_STATUSES),
    "fulfillment.status": ("fulfillment_status", FULFILLMENT_STATUSES),
    "fulfillment.provider.id": ("provider_id", ("SELLER", "ALLEGRO")),
    "fulfillment.shipmentSummary.lineItemsSent": ("items_sent", ("NONE", "SOME", "ALL")),
    "payment.id": ("payment_id", None),
    "delivery.method.id": ("method_id", None),
    "buyer.login": ("buyer_login", None),
    "marketplace.id": ("marketplace_id", None),
}
_RANGES = {
    "lineItems.boughtAt.gte": ("bought_us", True),
    "lineItems.boughtAt.lte": ("bought_us", False),
    "updatedAt.gte": ("updated_us", True),
    "updatedAt.lte": ("updated_us", False),
}
_CACHE_SECONDS = 5.0
_CACHE_ENTRIES = 64


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A validated list request."""

    offset: int
    limit: int
    equal: tuple[tuple[str, str], ...]
    ranges: tuple[tuple[str, bool, int], ...]
    surcharge_id: str | None
    sort: str


def _int_param(params: Mapping[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise rest_error(400, "VALIDATION_ERROR", f"Invalid value of parameter {name}: {raw}") from None


def parse_query(params: Mapping[str, str]) -> ListQuery:
    """Check the query string the way Allegro does: 400 for illegal values, 422 for out of range."""
    offset = _int_param(params, "offset", 0)
    limit = _int_param(params, "limit", 100)
    if not 1 <= limit <= 100:
        raise rest_error(422, "VALIDATION_ERROR", "limit must be between 1 and 100")
    if offset < 0:
        raise rest_error(422, "VALIDATION_ERROR", "offset must not be negative")
    if offset + limit > MAX_WINDOW:
        raise rest_error(422, "VALIDATION_ERROR", f"offset + limit must not exceed {MAX_WINDOW}")
    equal = []
    for name, (attribute, allowed) in _EQUALITY.items():
        value = params.get(name)
        if value is None:
            continue
        if allowed is not None and value not in allowed:
            raise rest_error(400, "VALIDATION_ERROR", f"Invalid value of parameter {name}: {value}")
        equal.append((attribute, value))
    ranges = []
    for name, (attribute, lower) in _RANGES.items():
        value = params.get(name)
        if value is None:
            continue
        try:
            ranges.append((attribute, lower, parse_iso_us(value)))
        except ValueError:
            raise rest_error(
                400, "VALIDATION_ERROR", f"Invalid date-time in parameter {name}: {value}"
            ) from None
    sort = params.get("sort", "-lineItems.boughtAt")
    if sort not in SORTS:
        raise rest_error(400, "VALIDATION_ERROR", f"Invalid value of parameter sort: {sort}")
    return ListQuery(offset, limit, tuple(equal), tuple(ranges), params.get("surcharges.id"), sort)


def _matches(record: OrderRecord, query: ListQuery) -> bool:
    for attribute, value in query.equal:
        if getattr(record, attribute) != value:
            return False
    for attribute, lower, bound in query.ranges:
        actual: int = getattr(record, attribute)
        if (actual < bound) if lower else (actual > bound):
            return False
    return query.surcharge_id is None or query.surcharge_id in record.surcharge_ids


def matching_forms(book: OrderBook, seller: Seller, query: ListQuery) -> list[OrderRecord]:
    """Every visible form matching the filters, sorted; cached per seller until the next change."""
    key = (query.equal, query.ranges, query.surcharge_id, query.sort)
    cached = seller.list_cache.get(key)
    now = time.monotonic()
    if cached is not None and now - cached[0] < _CACHE_SECONDS:
        return cached[1]
    cutoff = book.visible_since_us()
    found = [r for r in seller.orders.values() if book.is_visible(r, cutoff) and _matches(r, query)]
    field = "updated_us" if query.sort.endswith("updatedAt") else "bought_us"
    found.sort(key=lambda r: (getattr(r, field), r.id), reverse=query.sort.startswith("-"))
    if len(seller.list_cache) >= _CACHE_ENTRIES:
        seller.list_cache.clear()
    seller.list_cache[key] = (now, found)
    return found


def render_page(page: list[OrderRecord], total_count: int) -> bytes:
    """The response body of one page, joined from each form's pre-serialised bytes."""
    return b"".join(
        (
            b'{"checkoutForms":[',
            b",".join(record.body for record in page),
            b'],"count":%d,"totalCount":%d}' % (len(page), total_count),
        )
    )
