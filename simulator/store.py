"""Sellers and their orders, kept as pre-serialised bytes plus the few fields the list filters need."""

from dataclasses import dataclass, field
from typing import Any

import orjson

from simulator.clock import parse_iso_us
from simulator.forms import Form
from simulator.journal import EventJournal


def dump_compact(value: Any) -> bytes:
    """orjson bytes in an exact-size buffer: orjson keeps its larger working buffer, ~5x for a form."""
    return bytes(memoryview(orjson.dumps(value)))


@dataclass(slots=True)
class OrderRecord:
    """One checkout form: its current bytes, every revision, and filter keys."""

    id: str
    seller_id: str
    body: bytes = b""
    revision: str = ""
    revisions: list[tuple[str, bytes]] = field(default_factory=list)
    merged_into: str | None = None
    purged: bool = False
    status: str = ""
    fulfillment_status: str = ""
    provider_id: str = ""
    items_sent: str = ""
    bought_us: int = 0
    updated_us: int = 0
    payment_id: str | None = None
    surcharge_ids: tuple[str, ...] = ()
    method_id: str | None = None
    buyer_login: str = ""
    marketplace_id: str = ""
    # The `order` part of events, serialised once per revision.
    event_order: bytes = b""
    event_order_revision: str = ""

    def form(self) -> Form:
        """A fresh, mutable copy of the current form."""
        parsed: Form = orjson.loads(self.body)
        return parsed

    def store(self, form: Form) -> None:
        """Make `form` the current revision (the caller already set revision and updatedAt)."""
        self.body = dump_compact(form)
        self.revision = form["revision"]
        self.revisions.append((self.revision, self.body))
        fulfillment = form.get("fulfillment") or {}
        self.status = form["status"]
        self.fulfillment_status = fulfillment.get("status") or ""
        self.provider_id = (fulfillment.get("provider") or {}).get("id") or ""
        self.items_sent = (fulfillment.get("shipmentSummary") or {}).get("lineItemsSent") or ""
        self.bought_us = max(parse_iso_us(item["boughtAt"]) for item in form["lineItems"])
        self.updated_us = parse_iso_us(form["updatedAt"])
        self.payment_id = (form.get("payment") or {}).get("id")
        self.surcharge_ids = tuple(s["id"] for s in form["surcharges"])
        self.method_id = ((form.get("delivery") or {}).get("method") or {}).get("id")
        self.buyer_login = form["buyer"]["login"]
        self.marketplace_id = form["marketplace"]["id"]


@dataclass(slots=True)
class Seller:
    """One Allegro seller account: orders, event journal, a pool of returning buyers."""

    seller_id: str
    login: str
    orders: dict[str, OrderRecord] = field(default_factory=dict)
    # Insertion-ordered ids, for cheap random picks among many orders.
    order_ids: list[str] = field(default_factory=list)
    journal: EventJournal = field(default_factory=EventJournal)
    buyers: list[dict[str, Any]] = field(default_factory=list)
    version: int = 0
    list_cache: dict[tuple[Any, ...], tuple[float, list[OrderRecord]]] = field(default_factory=dict)

    def add(self, record: OrderRecord) -> None:
        """Register a new order."""
        self.orders[record.id] = record
        self.order_ids.append(record.id)

    def touch(self) -> None:
        """Invalidate cached list results after any change."""
        self.version += 1
        self.list_cache.clear()
