"""What the simulator's own world does after a sale: the parcel it ships and the invoice it attaches.

Everything here is a pure function of the seed, the order id and the order's stored revisions, so the
same seed and control calls give the same waybills, statuses and invoices, computed only when asked.
A plan is laid out in time once (from the moment the order was sent or paid) and shown up to the
current time, so tracking progresses and invoices appear as time passes; a later revision only ever
shortens a plan at its end (the buyer picked the parcel up early), never rewrites what was shown.

Allegro facts used (reference/allegro/README.md; allegro-api issues):
- a shipment id is base64 of `carrierId:waybill` (spec example `REhMOjEy...` = `DHL:12345678910PL`;
  real answer in #9708: `RFBEOjAw...` = `DPD:0000007268757Q`);
- DPD waybills are 13 digits and a letter (#9708, #8422), InPost's 24 digits (#12985);
- invoices are PDFs the seller attaches after the sale ("FV 01/2020" in the spec example).
"""

import base64
import random
from dataclasses import dataclass

import orjson

from simulator.clock import MICROS_PER_SECOND, iso_ms, parse_iso_us
from simulator.forms import Form
from simulator.store import OrderRecord

_MINUTE = 60 * MICROS_PER_SECOND
_HOUR = 60 * _MINUTE
# Fulfilment states in which the order's parcel has left the seller.
SHIPPED = frozenset({"SENT", "READY_FOR_PICKUP", "PICKED_UP", "RETURNED"})
_DELIVERED = frozenset({"PICKED_UP", "RETURNED"})


@dataclass(frozen=True, slots=True)
class Milestones:
    """When an order was paid, sent and delivered, read off its revisions (µs since the epoch)."""

    revisions: int
    bought_us: int
    paid_us: int | None
    sent_us: int | None
    # True when the first shipped revision already said PICKED_UP/RETURNED (an order created at
    # that age, or told so directly): the hand-over then lies before `sent_us`.
    sent_as_delivered: bool
    delivered_us: int | None
    invoice_required: bool
    line_item_ids: tuple[str, ...]
    method_name: str
    pickup_point: bool


def read_milestones(record: OrderRecord) -> Milestones:
    """Scan every stored revision of the order once (a few decodes; the caller caches by count)."""
    paid_us = sent_us = delivered_us = None
    sent_as_delivered = False
    form: Form = {}
    for _, body in record.revisions:
        form = orjson.loads(body)
        updated = parse_iso_us(form["updatedAt"])
        fulfillment = (form.get("fulfillment") or {}).get("status") or ""
        if paid_us is None and form["status"] == "READY_FOR_PROCESSING":
            finished = (form.get("payment") or {}).get("finishedAt")
            paid_us = parse_iso_us(finished) if finished else updated
        if sent_us is None and fulfillment in SHIPPED:
            sent_us, sent_as_delivered = updated, fulfillment in _DELIVERED
        if delivered_us is None and fulfillment in _DELIVERED:
            delivered_us = updated
    delivery = form.get("delivery") or {}
    return Milestones(
        revisions=len(record.revisions),
        bought_us=record.bought_us,
        paid_us=paid_us,
        sent_us=sent_us,
        sent_as_delivered=sent_as_delivered,
        delivered_us=delivered_us,
        invoice_required=bool((form.get("invoice") or {}).get("required")),
        line_item_ids=tuple(item["id"] for item in form.get("lineItems") or ()),
        method_name=(delivery.get("method") or {}).get("name") or "",
        pickup_point=delivery.get("pickupPoint") is not None,
    )


def carrier_of(method_name: str) -> str:
    """The carrier id that serves a delivery method of the simulator's catalogue."""
    lowered = method_name.lower()
    if "inpost" in lowered:
        return "INPOST"
    if "ups" in lowered:
        return "UPS"
    return "DPD"


def shipment_id(carrier_id: str, waybill: str) -> str:
    """Allegro's shipment id: base64 of `carrierId:waybill`."""
    return base64.b64encode(f"{carrier_id}:{waybill}".encode()).decode()


def _waybill(rng: random.Random, carrier_id: str) -> str:
    if carrier_id == "INPOST":
        return "".join(rng.choice("0123456789") for _ in range(24))
    if carrier_id == "UPS":
        return "1Z" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(16))
    return f"{rng.randrange(10**12, 10**13)}U"


@dataclass(frozen=True, slots=True)
class ParcelPlan:
    """The parcel the simulator ships for an order and its whole tracking history, as planned."""

    carrier_id: str
    waybill: str
    created_us: int
    line_item_ids: tuple[str, ...]
    # (occurred µs, code, description), ascending; shown up to the current time.
    statuses: tuple[tuple[int, str, str | None], ...]


def plan_parcel(seed: int, form_id: str, facts: Milestones) -> ParcelPlan | None:
    """The parcel of an order that was sent, else None; its tracking ends DELIVERED."""
    if facts.sent_us is None:
        return None
    # A string seed hashes with SHA-512, the same in every process (unlike hash()).
    rng = random.Random(f"{seed}:parcel:{form_id}")
    carrier_id = carrier_of(facts.method_name)
    waybill = _waybill(rng, carrier_id)
    earliest = (facts.paid_us or facts.bought_us) + 5 * _MINUTE
    if facts.sent_as_delivered:
        handover = max(earliest, facts.sent_us - rng.randint(8 * _HOUR, 72 * _HOUR))
        handover = min(handover, facts.sent_us)
    else:
        handover = facts.sent_us
    label = min(handover, max(earliest, handover - rng.randint(20 * _MINUTE, 5 * _HOUR)))
    sorted_at = handover + rng.randint(3 * _HOUR, 10 * _HOUR)
    plan: list[tuple[int, str, str | None]] = [
        (label, "PENDING", "Przesyłka przygotowana przez nadawcę"),
        (handover, "IN_TRANSIT", "Przesyłka odebrana przez kuriera"),
        (sorted_at, "IN_TRANSIT", "Przesyłka przyjęta w oddziale doręczającym"),
    ]
    out_at = sorted_at + rng.randint(4 * _HOUR, 14 * _HOUR)
    if facts.pickup_point:
        plan.append((out_at, "AVAILABLE_FOR_PICKUP", "Przesyłka czeka na odbiór"))
        delivered = out_at + rng.randint(_HOUR, 48 * _HOUR)
    else:
        plan.append((out_at, "RELEASED_FOR_DELIVERY", "Przesyłka wydana do doręczenia"))
        delivered = out_at + rng.randint(_HOUR, 8 * _HOUR)
        if rng.random() < 0.1:
            plan.append((delivered, "NOTICE_LEFT", "Nieudana próba doręczenia, pozostawiono awizo"))
            delivered += rng.randint(20 * _HOUR, 28 * _HOUR)
    plan.append((delivered, "DELIVERED", "Przesyłka doręczona"))
    if facts.delivered_us is not None and facts.delivered_us < delivered:
        # The order says the buyer has it: the history ends there. Entries up to the hand-over and
        # those before the delivery stay as they were shown; a parcel delivered at the moment it was
        # sent (an order told so in one step) still shows it was prepared and taken first.
        plan = [
            entry
            for entry in plan
            if entry[0] <= handover or (entry[0] < facts.delivered_us and entry[1] != "DELIVERED")
        ]
        plan.append((max(facts.delivered_us, handover), "DELIVERED", "Przesyłka doręczona"))
    return ParcelPlan(carrier_id, waybill, label, facts.line_item_ids, tuple(plan))


@dataclass(frozen=True, slots=True)
class InvoicePlan:
    """The invoice the simulator's seller attaches to a paid order that asked for one."""

    id: str
    number: str
    created_us: int
    file_name: str
    uploaded_us: int
    verified_us: int


def plan_invoice(seed: int, form_id: str, facts: Milestones) -> InvoicePlan | None:
    """The invoice of a paid order with `invoice.required`, else None; it exists from `created_us`."""
    if not facts.invoice_required or facts.paid_us is None:
        return None
    rng = random.Random(f"{seed}:invoice:{form_id}")
    created = facts.paid_us + rng.randint(10 * _MINUTE, 20 * _HOUR)
    number = rng.randint(1, 9999)
    month = _month_of(created)
    uploaded = created + rng.randint(MICROS_PER_SECOND, 30 * MICROS_PER_SECOND)
    return InvoicePlan(
        id=random_uuid4(rng),
        number=f"FV {number}/{month}",
        created_us=created,
        file_name=f"FV_{number}_{month.replace('/', '_')}.pdf",
        uploaded_us=uploaded,
        verified_us=uploaded + rng.randint(2 * MICROS_PER_SECOND, 90 * MICROS_PER_SECOND),
    )


def _month_of(us: int) -> str:
    stamp = iso_ms(us)
    return f"{stamp[5:7]}/{stamp[:4]}"


def random_uuid4(rng: random.Random) -> str:
    """A version-4 layout UUID from the seeded rng (the spec's invoice id example is one)."""
    value = rng.getrandbits(128)
    value = (value & ~(0xF << 76)) | (0x4 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
