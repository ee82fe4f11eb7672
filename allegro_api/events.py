"""Order events (`GET /order/events`) and event statistics (`GET /order/event-stats`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, ValidationError

from allegro_api.checkout_forms import Marketplace
from allegro_api.errors import UnexpectedResponse
from allegro_api.model_base import AllegroModel, NullableList, collector_paused, load_json_object


class Reference(AllegroModel):
    """A bare `{id}` reference (seller, buyer, offer)."""

    id: str | None = None


class EventBuyer(AllegroModel):
    """The buyer as an event shows it."""

    id: str | None = None
    login: str | None = None
    email: str | None = None
    guest: bool | None = None


class EventLineItem(AllegroModel):
    """A line item as an event shows it."""

    id: str | None = None
    offer: Reference | None = None
    quantity: int | None = None
    bought_at: datetime | None = None


class CheckoutFormRef(AllegroModel):
    """The checkout form an event is about, at the revision the event saw."""

    id: str
    revision: str | None = None


class EventOrder(AllegroModel):
    """The order data carried by an event."""

    seller: Reference | None = None
    buyer: EventBuyer | None = None
    line_items: NullableList[EventLineItem] = Field(default_factory=list)
    checkout_form: CheckoutFormRef | None = None
    marketplace: Marketplace | None = None


class OrderEvent(AllegroModel):
    """One journal entry; `type` is kept as a string so that new types do not break parsing."""

    id: str
    type: str
    occurred_at: datetime
    order: EventOrder | None = None

    @property
    def checkout_form_id(self) -> str | None:
        """The id of the form the event is about, if it names one."""
        return self.order.checkout_form.id if self.order and self.order.checkout_form else None

    @property
    def checkout_form_revision(self) -> str | None:
        """The form revision the event saw, if any."""
        return self.order.checkout_form.revision if self.order and self.order.checkout_form else None

    @property
    def seller_id(self) -> str | None:
        """The seller's numeric id, as a string."""
        return self.order.seller.id if self.order and self.order.seller else None


class EventPage(AllegroModel):
    """One page of events, oldest first; the next `from` is the last event's id."""

    events: NullableList[OrderEvent] = Field(default_factory=list)

    @property
    def last_id(self) -> str | None:
        """The cursor to continue from, or None on an empty page."""
        return self.events[-1].id if self.events else None


class LatestEvent(AllegroModel):
    """The newest event Allegro has published for the seller."""

    id: str
    occurred_at: datetime | None = None


class EventStats(AllegroModel):
    """`GET /order/event-stats`: the starting point for reading events (null when there are none)."""

    latest_event: LatestEvent | None = None


def parse_event_page(content: bytes) -> EventPage:
    """Parse a `/order/events` body."""
    try:
        with collector_paused():
            return EventPage.model_validate(load_json_object(content))
    except ValidationError as exc:
        raise UnexpectedResponse(f"malformed event page: {exc.error_count()} errors") from exc


def parse_event_stats(content: bytes) -> EventStats:
    """Parse a `/order/event-stats` body."""
    try:
        return EventStats.model_validate(load_json_object(content))
    except ValidationError as exc:
        raise UnexpectedResponse(f"malformed event stats: {exc.error_count()} errors") from exc
