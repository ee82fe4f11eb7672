"""Checkout forms: a typed view of the fields the service needs, plus the form's raw JSON for storage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from pydantic import Field, ValidationError

from allegro_api.errors import UnexpectedResponse
from allegro_api.form_text import decode_object, page_form_texts, storable_text, strip_whitespace
from allegro_api.model_base import AllegroModel, NullableList, collector_paused
from core import order_fields


class Price(AllegroModel):
    """Money as Allegro sends it: a decimal string and a currency code."""

    amount: Decimal
    currency: str


class Buyer(AllegroModel):
    """The buyer reference fields we index on."""

    id: str | None = None
    login: str | None = None
    email: str | None = None
    guest: bool | None = None


class ShipmentSummary(AllegroModel):
    """How many line items have been sent."""

    line_items_sent: str | None = None


class FulfillmentProvider(AllegroModel):
    """Who fulfils the order (SELLER or ALLEGRO)."""

    id: str | None = None


class Fulfillment(AllegroModel):
    """The seller-side fulfilment state."""

    status: str | None = None
    shipment_summary: ShipmentSummary | None = None
    provider: FulfillmentProvider | None = None


class LineItem(AllegroModel):
    """One purchased offer; its id survives merges of checkout forms."""

    id: str
    bought_at: datetime | None = None
    quantity: int | None = None
    price: Price | None = None


class InvoiceRequest(AllegroModel):
    """Whether the buyer asked for an invoice."""

    required: bool | None = None


class Summary(AllegroModel):
    """What the buyer has to pay in total."""

    total_to_pay: Price | None = None


class Marketplace(AllegroModel):
    """The marketplace an order belongs to, e.g. allegro-pl."""

    id: str | None = None


class CheckoutForm(AllegroModel):
    """An Allegro order; only the fields the service reads are typed, the rest are kept as extras."""

    id: str
    status: str | None = None
    fulfillment: Fulfillment | None = None
    buyer: Buyer | None = None
    line_items: NullableList[LineItem] = Field(default_factory=list)
    summary: Summary | None = None
    updated_at: datetime | None = None
    revision: str | None = None
    marketplace: Marketplace | None = None
    invoice: InvoiceRequest | None = None

    @property
    def bought_at(self) -> datetime | None:
        """The latest line-item purchase time, which is what Allegro's boughtAt filters apply to."""
        times = [item.bought_at for item in self.line_items if item.bought_at is not None]
        return max(times) if times else None

    @property
    def line_item_ids(self) -> list[str]:
        """Line-item ids: the key that links a merged form to its successor."""
        return [item.id for item in self.line_items]


@dataclass(frozen=True, slots=True)
class FormFacts:
    """What the service reads off a validated form: its identity and newness, which sync decisions use,
    and the order's fields (`core.order_fields`: the envelope's members, the indexed columns)."""

    id: str
    revision: str | None
    updated_at: datetime | None
    columns: dict[str, Any]
    # What tells the poller an order's shipments and invoices may have changed (producers.records).
    line_items_sent: str | None = None
    invoice_required: bool = False

    @classmethod
    def of(cls, form: CheckoutForm, data: Mapping[str, Any]) -> FormFacts:
        """Read the facts off a validated form and its decoded JSON.

        The texts are what PostgreSQL's text columns and a JSON encoder take: U+0000 and lone surrogates
        (which a buyer-typed field may hold) become U+FFFD here. The form itself keeps them.

        Raises pydantic.ValidationError when an order field holds a value of another type."""
        return cls(
            id=storable_text(form.id),
            revision=_storable(form.revision),
            updated_at=form.updated_at,
            columns=order_fields.extract(data, _storable_value),
            line_items_sent=_storable(_line_items_sent(form)),
            invoice_required=bool(form.invoice and form.invoice.required),
        )

    @property
    def bought_at(self) -> datetime | None:
        """The latest line-item purchase time, which is what Allegro's boughtAt filters apply to."""
        bought_at: datetime | None = self.columns["bought_at"]
        return bought_at

    @property
    def line_item_ids(self) -> tuple[str, ...]:
        """Line-item ids: the key that links a merged form to its successor."""
        return tuple(self.columns["line_item_ids"])


def _storable_value(value: Any) -> Any:
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, list):
        return [_storable_value(item) for item in value]
    return value


def _line_items_sent(form: CheckoutForm) -> str | None:
    summary = form.fulfillment.shipment_summary if form.fulfillment else None
    return summary.line_items_sent if summary else None


def _storable(value: str | None) -> str | None:
    return None if value is None else storable_text(value)


@dataclass(frozen=True, slots=True)
class FormSnapshot:
    """One checkout form: its JSON bytes exactly as Allegro sent them (`allegro_api.form_text`) and the
    facts read off it once it was validated.

    The validated model itself is not kept. Its tree (typed parts and the untyped extras, which are the
    decoded dicts themselves) is about forty tracked objects per form, and a poller holds pages of forms
    until Kafka acknowledges them: long enough for the cyclic collector to walk them all, over and over. At a
    steady 1,000 new orders/s that was a fifth of the poller's CPU. `form` validates the bytes again for
    callers that want the typed view."""

    raw: bytes
    facts: FormFacts

    @classmethod
    def from_dict(cls, data: dict[str, Any], raw: bytes | None = None) -> FormSnapshot:
        """Validate a decoded form and keep `raw`, its exact text (its orjson encoding when not given);
        the dict is not modified."""
        try:
            facts = FormFacts.of(CheckoutForm.model_validate(data), data)
        except ValidationError as exc:
            raise UnexpectedResponse(f"malformed checkout form: {exc.error_count()} errors") from exc
        return cls(raw=orjson.dumps(data) if raw is None else raw, facts=facts)

    @classmethod
    def from_json(cls, content: bytes) -> FormSnapshot:
        """Parse one form from a response body, which is kept as the form's text."""
        with collector_paused():
            return cls.from_dict(decode_object(content), strip_whitespace(content))

    @property
    def form(self) -> CheckoutForm:
        """The typed view, validated again from the bytes (a fresh model each call)."""
        return CheckoutForm.model_validate(self.as_dict())

    def as_dict(self) -> dict[str, Any]:
        """Decode the stored bytes again (a fresh dict each call)."""
        return decode_object(self.raw)

    @property
    def id(self) -> str:
        """The checkout form id (a case-sensitive lowercase UUID)."""
        return self.facts.id

    @property
    def revision(self) -> str | None:
        """The form's revision, opaque."""
        return self.facts.revision

    @property
    def updated_at(self) -> datetime | None:
        """When Allegro last changed the form."""
        return self.facts.updated_at


@dataclass(frozen=True, slots=True)
class CheckoutFormPage:
    """One page of `GET /order/checkout-forms`."""

    forms: list[FormSnapshot]
    count: int
    total_count: int
    offset: int
    limit: int

    @classmethod
    def from_json(cls, content: bytes, *, offset: int, limit: int) -> CheckoutFormPage:
        """Parse a list page once; each form keeps its own raw bytes."""
        with collector_paused():
            data = decode_object(content)
            items = data.get("checkoutForms")
            if items is None:
                items = []
            if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
                raise UnexpectedResponse("checkoutForms is not a list of objects")
            texts = page_form_texts(content, items) if items else []
            forms = [FormSnapshot.from_dict(item, text) for item, text in zip(items, texts, strict=True)]
        count = _as_int(data.get("count"), default=len(forms))
        total_count = _as_int(data.get("totalCount"), default=offset + len(forms))
        return cls(forms=forms, count=count, total_count=total_count, offset=offset, limit=limit)

    @property
    def next_offset(self) -> int:
        """The offset of the page after this one."""
        return self.offset + len(self.forms)

    @property
    def is_last(self) -> bool:
        """True when no later page can hold forms."""
        return len(self.forms) < self.limit or self.next_offset >= self.total_count


def _as_int(value: object, *, default: int) -> int:
    """Read an int that may come as a string; fall back when absent."""
    if value is None:
        return default
    if isinstance(value, int | str):
        try:
            return int(value)
        except ValueError:
            pass
    raise UnexpectedResponse(f"not an integer: {value!r}")
