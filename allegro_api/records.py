"""Order records: shipments (waybills), invoices, carriers and parcel tracking, each with its raw JSON.

Source: Allegro's OpenAPI (reference/allegro/openapi-order-records.yaml): `GET
/order/checkout-forms/{id}/shipments` (`CheckoutFormOrderWaybillResponse`), `GET
/order/checkout-forms/{id}/invoices` (`CheckoutFormsOrderInvoices`), `GET /order/carriers`
(`OrdersShippingCarriersResponse`) and `GET /order/carriers/{carrierId}/tracking?waybill=...`
(`CarrierParcelTrackingResponse`, at most 20 waybills a call). Allegro purges these with the order
(about 12 months); there is no endpoint that downloads an invoice file back.

Like `FormSnapshot`, every record keeps the bytes of its JSON object as Allegro sent it, because the
backup must store what Allegro said, not our reading of it: a whole answer (shipments, invoices, carriers)
is the body itself without surrounding whitespace; a tracking item is its object re-encoded compactly, key
order kept (tracking holds carriers' texts only, nothing a buyer typed).
Explicit nulls are accepted wherever a value may be absent (real answers send `"trackingDetails": null`
for a waybill the carrier does not know, allegro-api #11513, #12541), unknown fields are kept, and
enumerations (tracking codes, verification statuses, order mode) stay strings so that a new value
does not break the read. The fields the spec requires are required here; an answer without them is
`UnexpectedResponse`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
from pydantic import Field, ValidationError

from allegro_api.errors import UnexpectedResponse
from allegro_api.form_text import decode_object, strip_whitespace
from allegro_api.model_base import AllegroModel, NullableList, load_json_object

# Allegro's limit of `waybill` parameters per tracking call (spec: `maxItems: 20`); more gives 400.
MAX_WAYBILLS_PER_CALL = 20
TRACKING_CODES = (
    "AVAILABLE_FOR_PICKUP",
    "DELIVERED",
    "IN_TRANSIT",
    "ISSUE",
    "NOTICE_LEFT",
    "PENDING",
    "RELEASED_FOR_DELIVERY",
    "RETURNED",
)


class LineItemRef(AllegroModel):
    """A line item of the order that a parcel carries."""

    id: str | None = None


class Shipment(AllegroModel):
    """A waybill assigned to an order; `carrier_name` only for carrier id OTHER."""

    id: str | None = None
    waybill: str | None = None
    carrier_id: str | None = None
    carrier_name: str | None = None
    line_items: NullableList[LineItemRef] = Field(default_factory=list)
    created_at: datetime | None = None


class SecurityVerification(AllegroModel):
    """The antivirus scan of an invoice file: ACCEPTED, REJECTED or WAITING."""

    status: str | None = None
    verified_at: datetime | None = None


class VerificationDetail(AllegroModel):
    """A warning or error of the export-invoice verification."""

    type: str | None = None
    code: str | None = None
    message: str | None = None


class FileVerification(AllegroModel):
    """Export-invoice verification; always NOT_APPLICABLE in the REGULAR order mode."""

    status: str | None = None
    details: NullableList[VerificationDetail] = Field(default_factory=list)


class InvoiceFile(AllegroModel):
    """The uploaded file of an invoice (its content cannot be read back through the API)."""

    name: str | None = None
    uploaded_at: datetime | None = None
    security_verification: SecurityVerification | None = None
    verification: FileVerification | None = None


class Invoice(AllegroModel):
    """An invoice the seller attached to the order; `file` is null until a file is uploaded."""

    id: str | None = None
    invoice_number: str | None = None
    created_at: datetime | None = None
    file: InvoiceFile | None = None


class InvoiceLink(AllegroModel):
    """A link to a proof of purchase kept outside Allegro."""

    id: str | None = None
    url: str | None = None
    created_at: datetime | None = None


class Carrier(AllegroModel):
    """A carrier a waybill can name; OTHER comes without a name."""

    id: str
    name: str | None = None


class TrackingStatus(AllegroModel):
    """One status of a parcel; `code` is one of TRACKING_CODES today."""

    occurred_at: datetime
    code: str
    description: str | None = None


class TrackingDetails(AllegroModel):
    """A parcel's history as the carrier reported it."""

    statuses: NullableList[TrackingStatus]
    created_at: datetime
    updated_at: datetime


class ParcelHistory(AllegroModel):
    """One `waybills[]` item; `tracking_details` is None while the carrier has nothing for it."""

    waybill: str
    tracking_details: TrackingDetails | None = None


ModelT = TypeVar("ModelT", bound=AllegroModel)


@dataclass(frozen=True, slots=True)
class RawRecord(Generic[ModelT]):
    """One JSON object of an answer: its bytes as Allegro sent it, and the validated model."""

    raw: bytes
    model: ModelT

    def as_dict(self) -> dict[str, Any]:
        """Decode the stored bytes again (a fresh dict each call)."""
        return decode_object(self.raw)


def _objects(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The list of objects under `key`; an explicit null or a missing key is an empty list."""
    items = data.get(key)
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise UnexpectedResponse(f"{key} is not a list of objects")
    return items


def _encoded(item: dict[str, Any]) -> bytes:
    """An object's compact encoding, key order kept. orjson refuses strings with lone surrogates (which
    arrive escaped, and which the decoder keeps): those objects are encoded by the standard library, whose
    ASCII output escapes them again (and every other non-ASCII character: the same JSON values)."""
    try:
        return orjson.dumps(item)
    except TypeError:
        return json.dumps(item, separators=(",", ":")).encode()


def _records(model: type[ModelT], items: list[dict[str, Any]]) -> tuple[RawRecord[ModelT], ...]:
    """Validate each object and keep its bytes."""
    try:
        return tuple(RawRecord(_encoded(item), model.model_validate(item)) for item in items)
    except ValidationError as exc:
        raise UnexpectedResponse(f"malformed {model.__name__}: {exc.error_count()} errors") from exc


@dataclass(frozen=True, slots=True)
class OrderShipments:
    """`GET /order/checkout-forms/{id}/shipments`: the waybills currently assigned to the order."""

    raw: bytes
    shipments: tuple[RawRecord[Shipment], ...]

    @classmethod
    def from_json(cls, content: bytes) -> OrderShipments:
        """Parse the answer; raises UnexpectedResponse for a body of another shape."""
        data = load_json_object(content)
        return cls(raw=strip_whitespace(content), shipments=_records(Shipment, _objects(data, "shipments")))


@dataclass(frozen=True, slots=True)
class OrderInvoices:
    """`GET /order/checkout-forms/{id}/invoices`: invoices and receipt links attached to the order."""

    raw: bytes
    order_mode: str | None
    has_external_invoices: bool | None
    invoices: tuple[RawRecord[Invoice], ...]
    links: tuple[RawRecord[InvoiceLink], ...]

    @classmethod
    def from_json(cls, content: bytes) -> OrderInvoices:
        """Parse the answer; raises UnexpectedResponse for a body of another shape."""
        data = load_json_object(content)
        order_mode, external = data.get("orderMode"), data.get("hasExternalInvoices")
        if not isinstance(order_mode, str | None) or not isinstance(external, bool | None):
            raise UnexpectedResponse("orderMode or hasExternalInvoices of an unexpected type")
        return cls(
            raw=strip_whitespace(content),
            order_mode=order_mode,
            has_external_invoices=external,
            invoices=_records(Invoice, _objects(data, "invoices")),
            links=_records(InvoiceLink, _objects(data, "links")),
        )


@dataclass(frozen=True, slots=True)
class CarrierList:
    """`GET /order/carriers`: every carrier id a waybill can name."""

    raw: bytes
    carriers: tuple[RawRecord[Carrier], ...]

    @classmethod
    def from_json(cls, content: bytes) -> CarrierList:
        """Parse the answer; raises UnexpectedResponse for a body of another shape."""
        data = load_json_object(content)
        return cls(raw=strip_whitespace(content), carriers=_records(Carrier, _objects(data, "carriers")))


@dataclass(frozen=True, slots=True)
class ParcelTracking:
    """The tracking history of one waybill of one carrier (one `waybills[]` item and its bytes)."""

    carrier_id: str
    raw: bytes
    history: ParcelHistory

    @property
    def waybill(self) -> str:
        """The parcel's tracking number."""
        return self.history.waybill

    @property
    def statuses(self) -> list[TrackingStatus]:
        """Statuses oldest first as sent; empty while the carrier has nothing for the waybill."""
        details = self.history.tracking_details
        return list(details.statuses) if details is not None else []


def parse_tracking(content: bytes) -> list[ParcelTracking]:
    """Parse one tracking answer into one item per waybill, in Allegro's order."""
    data = load_json_object(content)
    carrier_id = data.get("carrierId")
    if not isinstance(carrier_id, str) or not isinstance(data.get("waybills"), list):
        raise UnexpectedResponse("tracking answer without carrierId or waybills")
    return [
        ParcelTracking(carrier_id=carrier_id, raw=record.raw, history=record.model)
        for record in _records(ParcelHistory, _objects(data, "waybills"))
    ]


def waybill_batches(waybills: list[str]) -> list[list[str]]:
    """Distinct waybills, first occurrence kept, in calls of at most MAX_WAYBILLS_PER_CALL."""
    distinct = list(dict.fromkeys(waybills))
    return [distinct[i : i + MAX_WAYBILLS_PER_CALL] for i in range(0, len(distinct), MAX_WAYBILLS_PER_CALL)]
