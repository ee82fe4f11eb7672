"""Order records beside the checkout forms: parcels (waybills), carriers' tracking, invoices.

State added through the control API is kept here; what the simulator's own world ships and invoices is
planned lazily from the order's revisions (`simulator.record_plans`), so big sellers cost nothing until
a record is read. One `RecordKeeper` per simulator, on `SimulatorState.records`.

Allegro facts (reference/allegro/openapi-order-records.yaml; allegro-api issues #N):
- `GET /order/carriers/{carrierId}/tracking` takes at most 20 `waybill` parameters (spec `maxItems: 20`)
  and answers 400 for none or too many; a waybill the carrier does not know (or a carrier id that is
  not one, such as a delivery-method UUID) comes back with `"trackingDetails": null` and 200 (#9570,
  #11513, #12541, #12549);
- shipments and carriers are limited to 50 requests per second (the spec's descriptions);
- `GET /order/carriers` no longer lists `ALLEGRO` (9 June 2026, #13267), `WEDO` (11 May 2026,
  #13154) or `X_PRESS_COURIERS` (#10058); `OTHER` has no name (spec example, #2960);
- an order without invoices answers `{"hasExternalInvoices":false,"links":[],"invoices":[]}` (#12473).
"""

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from simulator.clock import iso_ms, iso_seconds
from simulator.record_plans import Milestones, plan_invoice, plan_parcel, read_milestones, shipment_id
from simulator.store import OrderRecord

MAX_WAYBILLS_PER_CALL = 20
# [INF] Built from the carrier ids Allegro has published (#2497, #2960, #11643, spec examples), minus
# those it withdrew; the order is Allegro's example's (popular first, OTHER last).
CARRIERS: tuple[tuple[str, str | None], ...] = (
    ("POCZTA_POLSKA", "Poczta Polska"),
    ("DHL", "DHL"),
    ("DPD", "DPD"),
    ("INPOST", "InPost"),
    ("ORLEN", "ORLEN Paczka"),
    ("UPS", "UPS"),
    ("GLS", "GLS"),
    ("FEDEX", "FedEx"),
    ("DB_SCHENKER", "DB Schenker"),
    ("RABEN", "Raben"),
    ("GEIS", "Geis"),
    ("PATRON", "Patron"),
    ("RHENUS_LOGISTICS", "Rhenus Logistics"),
    ("YUN_EXPRESS", "Yun Express"),
    ("OTHER", None),
)
CARRIER_IDS = frozenset(carrier_id for carrier_id, _ in CARRIERS)
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
SECURITY_STATUSES = ("ACCEPTED", "REJECTED", "WAITING")
# (occurred µs, code, description) of one tracking status.
Status = tuple[int, str, str | None]


class RecordError(ValueError):
    """A control call that cannot be applied (the control API answers 422)."""


@dataclass(slots=True)
class Parcel:
    """A waybill the control API attached to an order."""

    carrier_id: str
    waybill: str
    carrier_name: str | None
    line_item_ids: tuple[str, ...]
    created_us: int
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Tracking:
    """A carrier's history of one waybill: statuses added by control calls, and the order whose
    simulated parcel it is (its planned statuses are recomputed from the order on every read)."""

    added: list[Status] = field(default_factory=list)
    source: OrderRecord | None = None


@dataclass(slots=True)
class AddedInvoice:
    """An invoice the control API attached to an order; `file_name` None means no file uploaded yet."""

    id: str
    number: str | None
    created_us: int
    file_name: str | None
    security_status: str
    extra: dict[str, Any] = field(default_factory=dict)


def render_shipment(
    carrier_id: str,
    waybill: str,
    carrier_name: str | None,
    line_item_ids: tuple[str, ...],
    created_us: int,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One shipment in the key order of a real answer (#9708); `carrierName` only for OTHER."""
    body: dict[str, Any] = {"waybill": waybill, "carrierId": carrier_id}
    if carrier_id == "OTHER":
        body["carrierName"] = carrier_name
    body["lineItems"] = [{"id": item_id} for item_id in line_item_ids]
    body["createdAt"] = iso_seconds(created_us)
    body["id"] = shipment_id(carrier_id, waybill)
    return {**body, **(extra or {})}


def render_invoice(
    invoice_id: str,
    number: str | None,
    created_us: int,
    file_name: str | None,
    uploaded_us: int,
    verified_us: int | None,
    security_status: str,
) -> dict[str, Any]:
    """One invoice; `file` is null until a file is uploaded, `verifiedAt` null while WAITING."""
    file = None
    if file_name is not None:
        file = {
            "name": file_name,
            "uploadedAt": iso_ms(uploaded_us),
            "securityVerification": {
                "status": security_status,
                "verifiedAt": None if verified_us is None else iso_ms(verified_us),
            },
            # Always NOT_APPLICABLE in the REGULAR order mode (spec); the simulator has no other.
            "verification": {"status": "NOT_APPLICABLE", "details": []},
        }
    return {"id": invoice_id, "invoiceNumber": number, "createdAt": iso_ms(created_us), "file": file}


class RecordKeeper:
    """Parcels, tracking and invoices of every order, added or planned."""

    def __init__(self, seed: int, per_second_limit: int = 50) -> None:
        self.seed = seed
        self.per_second_limit = per_second_limit
        self.parcels: dict[str, list[Parcel]] = {}
        self.invoices: dict[str, list[AddedInvoice]] = {}
        self.tracking: dict[tuple[str, str], Tracking] = {}
        self._facts: dict[str, Milestones] = {}
        self._windows: dict[str, deque[float]] = {}

    def facts(self, record: OrderRecord) -> Milestones:
        """The order's milestones, decoded again only when it has a new revision."""
        cached = self._facts.get(record.id)
        if cached is None or cached.revisions != len(record.revisions):
            cached = read_milestones(record)
            self._facts[record.id] = cached
        return cached

    def shipments(self, record: OrderRecord) -> list[dict[str, Any]]:
        """The order's shipments: the simulated parcel (if it was sent), then added ones."""
        answer = []
        plan = plan_parcel(self.seed, record.id, self.facts(record))
        if plan is not None:
            # Registering on read is enough: a waybill is only known to whoever read the shipments.
            self.tracking.setdefault((plan.carrier_id, plan.waybill), Tracking()).source = record
            answer.append(
                render_shipment(plan.carrier_id, plan.waybill, None, plan.line_item_ids, plan.created_us)
            )
        for parcel in self.parcels.get(record.id, ()):
            answer.append(
                render_shipment(
                    parcel.carrier_id,
                    parcel.waybill,
                    parcel.carrier_name,
                    parcel.line_item_ids,
                    parcel.created_us,
                    parcel.extra,
                )
            )
        return answer

    def add_parcel(self, record: OrderRecord, parcel: Parcel) -> dict[str, Any]:
        """Attach a waybill to an order, as the seller or a carrier would; answers the shipment."""
        if parcel.carrier_id not in CARRIER_IDS:
            raise RecordError(f"unknown carrier id {parcel.carrier_id!r}; see GET /order/carriers")
        if parcel.carrier_id == "OTHER" and not parcel.carrier_name:
            raise RecordError("carrier_name is required with carrier id OTHER")
        items = self.facts(record).line_item_ids
        unknown = set(parcel.line_item_ids) - set(items)
        if unknown:
            raise RecordError(f"line items not in order {record.id}: {', '.join(sorted(unknown))}")
        if not parcel.line_item_ids:
            parcel.line_item_ids = items
        taken = {(s["carrierId"], s["waybill"]) for s in self.shipments(record)}
        if (parcel.carrier_id, parcel.waybill) in taken:
            raise RecordError(f"waybill {parcel.waybill} of {parcel.carrier_id} is already on the order")
        self.parcels.setdefault(record.id, []).append(parcel)
        self.tracking.setdefault((parcel.carrier_id, parcel.waybill), Tracking())
        return render_shipment(
            parcel.carrier_id,
            parcel.waybill,
            parcel.carrier_name,
            parcel.line_item_ids,
            parcel.created_us,
            parcel.extra,
        )

    def add_status(self, carrier_id: str, waybill: str, status: Status, now_us: int) -> dict[str, Any]:
        """A carrier reports a new status of a waybill; answers the waybill's tracking entry."""
        self.tracking.setdefault((carrier_id, waybill), Tracking()).added.append(status)
        return self.tracking_entry(carrier_id, waybill, now_us)

    def statuses(self, carrier_id: str, waybill: str, now_us: int) -> list[Status]:
        """Every status of a waybill that occurred by `now_us`, oldest first."""
        tracking = self.tracking.get((carrier_id, waybill))
        if tracking is None:
            return []
        found = list(tracking.added)
        if tracking.source is not None:
            plan = plan_parcel(self.seed, tracking.source.id, self.facts(tracking.source))
            if plan is not None:
                found.extend(plan.statuses)
        return sorted((s for s in found if s[0] <= now_us), key=lambda s: s[0])

    def tracking_entry(self, carrier_id: str, waybill: str, now_us: int) -> dict[str, Any]:
        """One `waybills[]` item: `trackingDetails` null while the carrier has nothing for it."""
        statuses = self.statuses(carrier_id, waybill, now_us)
        details = None
        if statuses:
            details = {
                "statuses": [
                    {"occurredAt": iso_ms(at), "code": code, "description": description}
                    for at, code, description in statuses
                ],
                "createdAt": iso_ms(statuses[0][0]),
                "updatedAt": iso_ms(statuses[-1][0]),
            }
        return {"waybill": waybill, "trackingDetails": details}

    def order_invoices(self, record: OrderRecord, now_us: int) -> dict[str, Any]:
        """The invoices answer of one order: the simulated invoice once it exists, then added ones."""
        invoices = []
        plan = plan_invoice(self.seed, record.id, self.facts(record))
        if plan is not None and plan.created_us <= now_us:
            uploaded = plan.uploaded_us <= now_us
            verified = plan.verified_us <= now_us
            invoices.append(
                render_invoice(
                    plan.id,
                    plan.number,
                    plan.created_us,
                    plan.file_name if uploaded else None,
                    plan.uploaded_us,
                    plan.verified_us if verified else None,
                    "ACCEPTED" if verified else "WAITING",
                )
            )
        for added in self.invoices.get(record.id, ()):
            verified_us = None if added.security_status == "WAITING" else added.created_us
            body = render_invoice(
                added.id,
                added.number,
                added.created_us,
                added.file_name,
                added.created_us,
                verified_us,
                added.security_status,
            )
            invoices.append({**body, **added.extra})
        return {"hasExternalInvoices": False, "links": [], "invoices": invoices}

    def add_invoice(self, record: OrderRecord, invoice: AddedInvoice) -> None:
        """Attach an invoice to an order, as the seller does with POST .../invoices and a file PUT."""
        self.invoices.setdefault(record.id, []).append(invoice)

    def admit(self, resource: str, now: float) -> bool:
        """Whether one more request to `resource` fits its per-second limit (a sliding one-second window)."""
        if self.per_second_limit <= 0:
            return True
        window = self._windows.setdefault(resource, deque())
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= self.per_second_limit:
            return False
        window.append(now)
        return True
