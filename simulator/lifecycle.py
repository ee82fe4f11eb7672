"""Pure transitions of a checkout form: fill-in, payment, fulfilment, buyer edits, surcharges."""

import random

from simulator import catalog
from simulator.clock import MICROS_PER_DAY, iso_ms, parse_iso_us
from simulator.forms import Form, FormFactory, recompute_total

FULFILLMENT_FLOW = ("NEW", "PROCESSING", "READY_FOR_SHIPMENT", "SENT", "PICKED_UP")
FULFILLMENT_STATUSES = (*FULFILLMENT_FLOW, "READY_FOR_PICKUP", "CANCELLED", "SUSPENDED", "RETURNED")
ORDER_STATUSES = ("BOUGHT", "FILLED_IN", "READY_FOR_PROCESSING", "CANCELLED")
EVENT_TYPES = (
    "BOUGHT",
    "FILLED_IN",
    "READY_FOR_PROCESSING",
    "BUYER_CANCELLED",
    "FULFILLMENT_STATUS_CHANGED",
    "BUYER_MODIFIED",
    "AUTO_CANCELLED",
)
_SENT_STATUSES = frozenset({"SENT", "PICKED_UP", "RETURNED"})
# [INF] A buyer changes the delivery address only while the parcel is not yet being packed, and in the
# first days after the purchase; a return follows a pick-up within the 14-day withdrawal period plus
# the time to send it back.
_EDITABLE_FULFILLMENT = frozenset({"NEW", "PROCESSING"})
BUYER_EDIT_WINDOW_DAYS = 14
RETURN_WINDOW_DAYS = 30


def fill_in(form: Form) -> str:
    """The buyer filled in the checkout form."""
    form["status"] = "FILLED_IN"
    return "FILLED_IN"


def pay(form: Form, at_us: int) -> str:
    """Payment finished (cash on delivery stays unpaid but the order is ready for processing)."""
    form["status"] = "READY_FOR_PROCESSING"
    payment = form["payment"]
    if payment["type"] != "CASH_ON_DELIVERY":
        payment["finishedAt"] = iso_ms(at_us)
        payment["paidAmount"] = dict(form["summary"]["totalToPay"])
    if payment["type"] == "EXTENDED_TERM":
        form["invoice"]["dueDate"] = iso_ms(at_us + 30 * 86_400_000_000)[:10]
    return "READY_FOR_PROCESSING"


def cancel(form: Form, automatic: bool = False) -> str:
    """The buyer (or Allegro, for unpaid orders) cancelled the purchase."""
    form["status"] = "CANCELLED"
    return "AUTO_CANCELLED" if automatic else "BUYER_CANCELLED"


def set_fulfillment(form: Form, status: str) -> str:
    """The seller moved the order to another fulfilment status."""
    fulfillment = form["fulfillment"]
    fulfillment["status"] = status
    several = len(form["lineItems"]) > 1
    sent = (
        "ALL"
        if status in _SENT_STATUSES
        else ("SOME" if status == "READY_FOR_SHIPMENT" and several else "NONE")
    )
    fulfillment["shipmentSummary"] = {"lineItemsSent": sent}
    return "FULFILLMENT_STATUS_CHANGED"


def edit_by_buyer(form: Form, rng: random.Random, at_us: int) -> str:
    """The buyer changed the delivery address (and sometimes the message to the seller), in the
    address's own country and the marketplace's language."""
    address = form["delivery"]["address"]
    country = address["countryCode"]
    prefix = next(m.phone_prefix for m in catalog.MARKETS if m.country == country)
    address["street"] = f"{rng.choice(catalog.STREETS[country])} {rng.randint(1, 120)}"
    address["phoneNumber"] = f"{prefix}{rng.randrange(500_000_000, 899_999_999)}"
    address["modifiedAt"] = iso_ms(at_us)
    if rng.random() < 0.3:
        form["messageToSeller"] = rng.choice(catalog.MESSAGES[country])
    return "BUYER_MODIFIED"


def bought_us(form: Form) -> int:
    """When the form's latest line item was bought, in µs since the epoch."""
    return max(parse_iso_us(item["boughtAt"]) for item in form["lineItems"])


def buyer_may_edit(form: Form, at_us: int) -> bool:
    """Whether a buyer could still change the delivery address of this order at `at_us`."""
    return (
        form["status"] != "CANCELLED"
        and form["fulfillment"]["status"] in _EDITABLE_FULFILLMENT
        and at_us - bought_us(form) <= BUYER_EDIT_WINDOW_DAYS * MICROS_PER_DAY
    )


def add_surcharge(form: Form, factory: FormFactory, rng: random.Random, at_us: int) -> str:
    """The buyer paid a surcharge; Allegro publishes another READY_FOR_PROCESSING for it."""
    currency = form["summary"]["totalToPay"]["currency"]
    surcharge = factory.payment(currency)
    surcharge["type"], surcharge["provider"] = "ONLINE", "PAYU"
    surcharge["finishedAt"] = iso_ms(at_us)
    surcharge["paidAmount"] = {"amount": f"{rng.randint(5, 40)}.00", "currency": currency}
    form["surcharges"].append(surcharge)
    recompute_total(form)
    return "READY_FOR_PROCESSING"


def next_step(form: Form, rng: random.Random, factory: FormFactory, at_us: int) -> list[str]:
    """A plausible next change for an order in its current state; returns the event types, none when
    the order has nothing left to do (cancelled, delivered and past its return period, returned)."""
    status, fulfillment = form["status"], form["fulfillment"]["status"]
    roll = rng.random()
    if status == "BOUGHT":
        if roll < 0.1:
            return [cancel(form, automatic=roll < 0.03)]
        return [fill_in(form)] if roll < 0.75 else [fill_in(form), pay(form, at_us)]
    if status == "FILLED_IN":
        if roll < 0.1:
            return [cancel(form)]
        if roll < 0.2 and buyer_may_edit(form, at_us):
            return [edit_by_buyer(form, rng, at_us)]
        return [pay(form, at_us)]
    if status == "CANCELLED":
        return []
    if roll < 0.05 and fulfillment == "NEW":
        return [add_surcharge(form, factory, rng, at_us)]
    if roll < 0.12 and buyer_may_edit(form, at_us):
        return [edit_by_buyer(form, rng, at_us)]
    if fulfillment in FULFILLMENT_FLOW[:-1]:
        return [set_fulfillment(form, FULFILLMENT_FLOW[FULFILLMENT_FLOW.index(fulfillment) + 1])]
    if fulfillment == "READY_FOR_PICKUP":
        return [set_fulfillment(form, "PICKED_UP")]
    returnable = at_us - bought_us(form) <= RETURN_WINDOW_DAYS * MICROS_PER_DAY
    if fulfillment == "PICKED_UP" and returnable and roll < 0.2:
        return [set_fulfillment(form, "RETURNED")]
    return []
