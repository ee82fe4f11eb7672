"""The order book: sellers, order creation (historical and live), events, visibility and purge."""

import random
from collections.abc import Callable
from typing import Any

import orjson

from simulator import lifecycle
from simulator.catalog import Market
from simulator.clock import MICROS_PER_DAY, MICROS_PER_SECOND, iso_ms, now_us
from simulator.config import SimulatorConfig
from simulator.faults import FaultSettings
from simulator.forms import Form, FormFactory
from simulator.ids import IdFactory
from simulator.store import OrderRecord, Seller, dump_compact

# (published µs, event type, occurred µs, record) of an event waiting to be journaled.
PendingEvent = tuple[int, str, int, OrderRecord]
_MINUTE = 60 * MICROS_PER_SECOND


def event_order_data(seller_id: str, form: Form) -> dict[str, Any]:
    """The `order` part of an event: a summary of the form at its current revision."""
    buyer = form["buyer"]
    return {
        "seller": {"id": seller_id},
        "buyer": {key: buyer[key] for key in ("id", "email", "login", "guest", "preferences")},
        "lineItems": [
            {
                "id": item["id"],
                "offer": {key: item["offer"][key] for key in ("id", "name", "external")},
                "quantity": item["quantity"],
                "originalPrice": item["originalPrice"],
                "price": item["price"],
                "boughtAt": item["boughtAt"],
            }
            for item in form["lineItems"]
        ],
        "checkoutForm": {"id": form["id"], "revision": form["revision"]},
        "marketplace": form["marketplace"],
    }


class OrderBook:
    """Owns every seller and order; all randomness comes from the seeded `rng`."""

    def __init__(self, config: SimulatorConfig, faults: Callable[[], FaultSettings]) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        # Faults draw from their own generator so that injecting them does not change the data.
        self.fault_rng = random.Random(config.seed + 1)
        self.ids = IdFactory(self.rng)
        self.factory = FormFactory(self.rng, self.ids)
        self.sellers: dict[str, Seller] = {}
        self.owner_of: dict[str, str] = {}
        self._faults = faults

    def add_seller(self, login: str | None, seller_id: str | None) -> Seller:
        """Create a seller, or return the existing one with that id."""
        if seller_id is not None and seller_id in self.sellers:
            return self.sellers[seller_id]
        seller_id = seller_id or self.ids.digits(8)
        seller = Seller(seller_id=seller_id, login=login or f"sprzedawca_{seller_id[-4:]}")
        self.sellers[seller_id] = seller
        return seller

    def visible_since_us(self) -> int:
        """Forms whose latest purchase is older than this are gone from list and detail."""
        return now_us() - self.config.form_visibility_days * MICROS_PER_DAY

    def is_visible(self, record: OrderRecord, cutoff_us: int) -> bool:
        """Whether the public API still shows this form."""
        return record.merged_into is None and not record.purged and record.bought_us >= cutoff_us

    def find(self, seller: Seller, form_id: str) -> OrderRecord | None:
        """The visible form with exactly this id (ids are case-sensitive), else None."""
        record = seller.orders.get(form_id)
        if record is None or not self.is_visible(record, self.visible_since_us()):
            return None
        return record

    def _buyer(self, seller: Seller, market: Market) -> dict[str, Any]:
        # Some buyers come back, so buyer.login filters find several forms.
        returning = [b for b in seller.buyers[-50:] if b["preferences"]["language"] == market.language]
        if returning and self.rng.random() < 0.3:
            return dict(self.rng.choice(returning))
        buyer = self.factory.new_buyer(market)
        seller.buyers.append(buyer)
        if len(seller.buyers) > 200:
            del seller.buyers[:150]
        return buyer

    def _new_record(self, seller: Seller, bought_us: int) -> tuple[OrderRecord, Form]:
        market = self.factory.pick_market()
        buyer = self._buyer(seller, market)
        form = self.factory.build(market=market, buyer=buyer, bought_us=bought_us)
        while form["id"] in self.owner_of:
            form["id"] = self.ids.uuid1()
        record = OrderRecord(id=form["id"], seller_id=seller.seller_id)
        self.owner_of[record.id] = seller.seller_id
        seller.add(record)
        return record, form

    def commit(self, record: OrderRecord, form: Form, at_us: int) -> None:
        """Store `form` as a new revision with a fresh revision id and updatedAt."""
        form["revision"] = self.ids.revision()
        form["updatedAt"] = iso_ms(at_us)
        record.store(form)

    def emit(
        self,
        seller: Seller,
        record: OrderRecord,
        event_type: str,
        occurred_us: int,
        published_us: int,
        current: Form | None = None,
    ) -> None:
        """Journal one event about the record's current revision, unless the drop fault eats it.

        `current` is that revision's form when the caller still holds it (saves decoding it again)."""
        if self.fault_rng.random() < self._faults().drop_events:
            return
        if record.event_order_revision != record.revision:
            form = current if current is not None else record.form()
            record.event_order = dump_compact(event_order_data(seller.seller_id, form))
            record.event_order_revision = record.revision
        journal = seller.journal
        event_id = journal.next_id(published_us, now_us())
        head = orjson.dumps({"id": str(event_id), "type": event_type, "occurredAt": iso_ms(occurred_us)})
        journal.append(
            event_id, event_type, occurred_us, head[:-1] + b',"order":' + record.event_order + b"}"
        )

    def create_orders(self, seller: Seller, count: int, days_back: float, with_events: bool) -> list[str]:
        """Orders bought spread over the last `days_back` days, each already at a state fitting its age."""
        now = now_us()
        span = int(days_back * MICROS_PER_DAY)
        bought = sorted(now - self.rng.randint(0, span) for _ in range(count))
        retention_us = now - self.config.event_retention_days * MICROS_PER_DAY
        pending: list[PendingEvent] = []
        ids = []
        for bought_us in bought:
            record, form = self._new_record(seller, bought_us)
            steps = self._age_into_state(form, bought_us, now)
            self.commit(record, form, max(at for _, at in steps))
            ids.append(record.id)
            for event_type, at in steps:
                if with_events and at >= retention_us:
                    publish = min(now, at + self.rng.randint(200_000, 4_000_000))
                    pending.append((publish, event_type, at, record))
        # Publish in time order so ids at the events' own times stay strictly increasing.
        for publish, event_type, at, record in sorted(pending, key=lambda p: (p[0], p[3].id)):
            self.emit(seller, record, event_type, at, publish)
        for _, _, _, record in pending:
            record.event_order, record.event_order_revision = b"", ""
        seller.touch()
        return ids

    def _age_into_state(self, form: Form, bought_us: int, now: int) -> list[tuple[str, int]]:
        """Advance a new form as far as its age allows; returns (event type, time) per step."""
        rng, age = self.rng, now - bought_us
        steps = [("BOUGHT", bought_us)]
        if age < 10 * _MINUTE:
            stage = rng.choice((0, 1, 2))
        else:
            stage = 3 if rng.random() < 0.04 else 2
        at = bought_us
        if stage >= 1:
            at = min(now, at + rng.randint(20, 600) * MICROS_PER_SECOND)
            steps.append((lifecycle.fill_in(form), at))
        if stage == 3:
            at = min(now, at + rng.randint(60, 3600) * MICROS_PER_SECOND)
            steps.append((lifecycle.cancel(form, automatic=rng.random() < 0.3), at))
            return steps
        if stage == 2:
            at = min(now, at + rng.randint(5, 300) * MICROS_PER_SECOND)
            steps.append((lifecycle.pay(form, at), at))
            target = _fulfillment_for_age(rng, age)
            if target != "NEW":
                delay = rng.randint(
                    MICROS_PER_SECOND, max(2 * MICROS_PER_SECOND, min(age, 3 * MICROS_PER_DAY))
                )
                at = min(now, at + delay)
                steps.append((lifecycle.set_fulfillment(form, target), at))
        return steps

    def create_live_order(self, seller: Seller) -> str:
        """A purchase happening now: status BOUGHT and a BOUGHT event."""
        now = now_us()
        record, form = self._new_record(seller, now)
        self.commit(record, form, now)
        self.emit(seller, record, "BOUGHT", now, now, current=form)
        seller.touch()
        return record.id

    def purge(self, before_us: int) -> tuple[int, int]:
        """Forms bought and events that occurred before `before_us` vanish from the API."""
        orders = events = 0
        for seller in self.sellers.values():
            for record in seller.orders.values():
                if not record.purged and record.bought_us < before_us:
                    record.purged = True
                    orders += 1
            events += seller.journal.purge_before(before_us)
            seller.touch()
        return orders, events


def _fulfillment_for_age(rng: random.Random, age_us: int) -> str:
    if age_us < 6 * 3600 * MICROS_PER_SECOND:
        return "NEW"
    if age_us < MICROS_PER_DAY:
        return rng.choice(("NEW", "PROCESSING"))
    if age_us < 3 * MICROS_PER_DAY:
        return rng.choice(("READY_FOR_SHIPMENT", "SENT"))
    return rng.choices(("SENT", "PICKED_UP", "RETURNED"), weights=(30, 68, 2))[0]
