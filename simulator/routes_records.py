"""Order records, public and control halves: shipments, invoices, carriers, parcel tracking.

Public paths answer as Allegro does (`reference/allegro/openapi-order-records.yaml`, facts in
`simulator.records`); control calls under `/_sim` attach parcels and invoices to orders and report
tracking statuses. Requests pass the same REST gate as the form endpoints (`SellerDep`).
"""

import random
import time
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from simulator.clock import MICROS_PER_SECOND, now_us
from simulator.deps import SellerDep, StateDep
from simulator.record_plans import random_uuid4
from simulator.records import (
    CARRIERS,
    MAX_WAYBILLS_PER_CALL,
    AddedInvoice,
    Parcel,
    RecordError,
    Status,
)
from simulator.responses import rest_error, vendor_json
from simulator.routes_control import answer, control_error, seller_or_404
from simulator.state import SimulatorState
from simulator.store import OrderRecord, Seller

router = APIRouter()
# [INF] Allegro's carriers answer may be cached "in accordance with returned caching headers".
_CARRIERS_CACHE = "max-age=86400"


def _admit(state: SimulatorState, resource: str) -> None:
    """The per-resource limit of 50 requests per second that the spec states for some paths."""
    if not state.records.admit(resource, time.monotonic()):
        message = f"Too many requests to {resource}"
        raise rest_error(429, "TooManyRequests", message, headers={"Retry-After": "1"})


def _order_or_404(state: SimulatorState, seller: Seller, form_id: str) -> OrderRecord:
    """The seller's visible order, else the 404 the form endpoint gives (unknown, merged, purged)."""
    record = state.book.find(seller, form_id)
    if record is None:
        raise rest_error(
            404,
            "CheckoutFormNotFoundException",
            f"Checkout form {form_id} not found",
            path=f"/order/checkout-forms/{form_id}",
        )
    return record


@router.get("/order/checkout-forms/{id}/shipments")
async def get_shipments(id: str, state: StateDep, seller: SellerDep) -> Response:
    """Waybills currently assigned to the order: `{"shipments": [...]}`, possibly empty."""
    _admit(state, "/order/checkout-forms/{id}/shipments")
    record = _order_or_404(state, seller, id)
    return vendor_json(orjson.dumps({"shipments": state.records.shipments(record)}))


@router.get("/order/checkout-forms/{id}/invoices")
async def get_invoices(id: str, state: StateDep, seller: SellerDep) -> Response:
    """Invoices attached to the order; 403 for another seller's order (spec), 404 for none."""
    owner = state.book.owner_of.get(id)
    if owner is not None and owner != seller.seller_id:
        other = state.book.find(state.book.sellers[owner], id)
        if other is not None:
            raise rest_error(403, "AccessDenied", "You do not have permission to access this order")
    record = _order_or_404(state, seller, id)
    return vendor_json(orjson.dumps(state.records.order_invoices(record, now_us())))


@router.get("/order/carriers")
async def get_carriers(state: StateDep, seller: SellerDep) -> Response:
    """Every carrier id a waybill can name; `OTHER` has no name."""
    _admit(state, "/order/carriers")
    carriers = [{"id": cid} if name is None else {"id": cid, "name": name} for cid, name in CARRIERS]
    response = vendor_json(orjson.dumps({"carriers": carriers}))
    response.headers["Cache-Control"] = _CARRIERS_CACHE
    return response


@router.get("/order/carriers/{carrierId}/tracking")
async def get_tracking(carrierId: str, request: Request, state: StateDep, seller: SellerDep) -> Response:
    """Tracking history of 1..20 waybills of one carrier, one entry per distinct waybill asked."""
    waybills = list(dict.fromkeys(request.query_params.getlist("waybill")))
    if not waybills:
        raise rest_error(400, "VALIDATION_ERROR", "Parameter waybill is required", path="waybill")
    if len(waybills) > MAX_WAYBILLS_PER_CALL:
        message = f"At most {MAX_WAYBILLS_PER_CALL} waybills can be requested at once"
        raise rest_error(400, "VALIDATION_ERROR", message, path="waybill")
    now = now_us()
    entries = [state.records.tracking_entry(carrierId, waybill, now) for waybill in waybills]
    return vendor_json(orjson.dumps({"carrierId": carrierId, "waybills": entries}))


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewParcel(_Body):
    """`POST /_sim/sellers/{seller_id}/orders/{id}/parcels`."""

    carrier_id: str = Field(min_length=1)
    waybill: str = Field(min_length=1, max_length=64)
    carrier_name: str | None = Field(default=None, max_length=30)
    line_item_ids: list[str] = Field(default_factory=list)
    # Fields Allegro may add one day, to show that clients keep what they do not know.
    extra: dict[str, Any] = Field(default_factory=dict)


class NewTrackingStatus(_Body):
    """`POST /_sim/tracking`."""

    carrier_id: str = Field(min_length=1)
    waybill: str = Field(min_length=1, max_length=64)
    code: Literal[
        "AVAILABLE_FOR_PICKUP",
        "DELIVERED",
        "IN_TRANSIT",
        "ISSUE",
        "NOTICE_LEFT",
        "PENDING",
        "RELEASED_FOR_DELIVERY",
        "RETURNED",
    ]
    occurred_at: datetime | None = None
    description: str | None = None


class NewInvoice(_Body):
    """`POST /_sim/sellers/{seller_id}/orders/{id}/invoices`."""

    invoice_number: str | None = None
    file_name: str | None = "faktura.pdf"
    security_status: Literal["ACCEPTED", "REJECTED", "WAITING"] = "ACCEPTED"
    extra: dict[str, Any] = Field(default_factory=dict)


def _control_order(state: SimulatorState, seller_id: str, form_id: str) -> OrderRecord:
    seller = seller_or_404(state, seller_id)
    record = state.book.find(seller, form_id)
    if record is None:
        raise control_error(404, f"no visible order {form_id} of seller {seller_id}")
    return record


@router.post("/_sim/sellers/{seller_id}/orders/{id}/parcels")
async def add_parcel(seller_id: str, id: str, body: NewParcel, state: StateDep) -> Response:
    """Attach a waybill to an order (all its line items unless given); answers the shipment."""
    record = _control_order(state, seller_id, id)
    parcel = Parcel(
        carrier_id=body.carrier_id,
        waybill=body.waybill,
        carrier_name=body.carrier_name,
        line_item_ids=tuple(body.line_item_ids),
        created_us=now_us(),
        extra=body.extra,
    )
    try:
        return answer(state.records.add_parcel(record, parcel))
    except RecordError as error:
        raise control_error(422, str(error)) from None


@router.post("/_sim/tracking")
async def add_tracking_status(body: NewTrackingStatus, state: StateDep) -> Response:
    """A carrier reports a status of a waybill (now unless `occurred_at`); answers its tracking entry."""
    now = now_us()
    occurred = now
    if body.occurred_at is not None:
        moment = body.occurred_at if body.occurred_at.tzinfo else body.occurred_at.replace(tzinfo=UTC)
        occurred = int(moment.timestamp() * MICROS_PER_SECOND)
    status: Status = (occurred, body.code, body.description)
    return answer(state.records.add_status(body.carrier_id, body.waybill, status, max(now, occurred)))


@router.post("/_sim/sellers/{seller_id}/orders/{id}/invoices")
async def add_invoice(seller_id: str, id: str, body: NewInvoice, state: StateDep) -> Response:
    """Attach an invoice to an order (a file unless `file_name` is null); answers the invoices answer."""
    record = _control_order(state, seller_id, id)
    count = len(state.records.invoices.get(record.id, ()))
    rng = random.Random(f"{state.config.seed}:added-invoice:{record.id}:{count}")
    invoice = AddedInvoice(
        id=random_uuid4(rng),
        number=body.invoice_number,
        created_us=now_us(),
        file_name=body.file_name,
        security_status=body.security_status,
        extra=body.extra,
    )
    state.records.add_invoice(record, invoice)
    return answer(state.records.order_invoices(record, now_us()))
