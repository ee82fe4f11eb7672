"""Changes to existing orders: explicit mutations, random progress, and merges of several forms."""

from simulator import lifecycle
from simulator.catalog import CURRENCY_SCALE
from simulator.clock import now_us
from simulator.forms import Form, cents_of, is_cash_on_delivery, money, recompute_total
from simulator.orders import OrderBook
from simulator.store import OrderRecord, Seller


class MutationError(ValueError):
    """A mutation or merge that cannot be applied (the control API answers 422)."""


def _commit_with_events(
    book: OrderBook, seller: Seller, record: OrderRecord, form: Form, types: list[str]
) -> None:
    now = now_us()
    book.commit(record, form, now)
    for event_type in types:
        book.emit(seller, record, event_type, now, now, current=form)
    seller.touch()


def mutate(
    book: OrderBook,
    seller: Seller,
    record: OrderRecord,
    *,
    status: str | None,
    fulfillment_status: str | None,
    buyer_edit: bool,
) -> Form:
    """Apply the requested changes as one new revision; one event per kind of change."""
    if status is None and fulfillment_status is None and not buyer_edit:
        raise MutationError("nothing to change: give status, fulfillment_status or buyer_edit")
    if status is not None and status not in lifecycle.ORDER_STATUSES:
        raise MutationError(f"unknown status {status!r}")
    if fulfillment_status is not None and fulfillment_status not in lifecycle.FULFILLMENT_STATUSES:
        raise MutationError(f"unknown fulfillment status {fulfillment_status!r}")
    form, now, types = record.form(), now_us(), []
    if status == "FILLED_IN":
        types.append(lifecycle.fill_in(form))
    elif status == "READY_FOR_PROCESSING":
        types.append(lifecycle.pay(form, now))
    elif status == "CANCELLED":
        types.append(lifecycle.cancel(form))
    elif status == "BOUGHT":
        form["status"] = "BOUGHT"
        types.append("BUYER_MODIFIED")
    if fulfillment_status is not None:
        types.append(lifecycle.set_fulfillment(form, fulfillment_status))
    if buyer_edit:
        types.append(lifecycle.edit_by_buyer(form, book.rng, now))
    _commit_with_events(book, seller, record, form, types)
    return form


def _pick_visible(book: OrderBook, seller: Seller, count: int) -> list[OrderRecord]:
    """Up to `count` distinct visible orders chosen at random (probing ids, so big sellers stay cheap)."""
    cutoff = book.visible_since_us()
    if count * 3 >= len(seller.order_ids):
        candidates = [r for r in seller.orders.values() if book.is_visible(r, cutoff)]
        return book.rng.sample(candidates, min(count, len(candidates)))
    chosen: dict[str, OrderRecord] = {}
    for _ in range(count * 4):
        record = seller.orders[book.rng.choice(seller.order_ids)]
        if record.id not in chosen and book.is_visible(record, cutoff):
            chosen[record.id] = record
            if len(chosen) == count:
                break
    return list(chosen.values())


def mutate_random(book: OrderBook, seller: Seller, count: int) -> list[str]:
    """Move up to `count` distinct visible orders one plausible step forward; returns the moved ones
    (an order with nothing left to do, such as one delivered months ago, stays as it is)."""
    moved: list[str] = []
    # Many orders have nothing left to do: look at more than `count` to move about `count` of them.
    for record in _pick_visible(book, seller, count * 4):
        if len(moved) == count:
            break
        form = record.form()
        types = lifecycle.next_step(form, book.rng, book.factory, now_us())
        if types:
            _commit_with_events(book, seller, record, form, types)
            moved.append(record.id)
    return moved


def merge(book: OrderBook, seller: Seller, ids: list[str]) -> str:
    """Replace several forms by one new form holding all their line items (same lineItems[].id)."""
    if len(ids) < 2 or len(set(ids)) != len(ids):
        raise MutationError("a merge needs at least two distinct ids")
    records = []
    for form_id in ids:
        record = book.find(seller, form_id)
        if record is None:
            raise MutationError(
                f"checkout form {form_id} is not a visible order of seller {seller.seller_id}"
            )
        records.append(record)
    forms = [record.form() for record in records]
    now = now_us()
    merged = forms[0]
    currency = merged["summary"]["totalToPay"]["currency"]
    merged["lineItems"] = [_in_currency(item, currency) for form in forms for item in form["lineItems"]]
    merged["surcharges"] = [s for form in forms for s in form["surcharges"]]
    merged["payment"] = book.factory.payment(currency, cash_on_delivery=is_cash_on_delivery(merged))
    merged["fulfillment"]["status"] = "NEW"
    recompute_total(merged)
    merged["status"] = "FILLED_IN"
    lifecycle.pay(merged, now)
    merged["id"] = book.ids.uuid1()
    while merged["id"] in book.owner_of:
        merged["id"] = book.ids.uuid1()
    record = OrderRecord(id=merged["id"], seller_id=seller.seller_id)
    book.owner_of[record.id] = seller.seller_id
    seller.add(record)
    for old in records:
        old.merged_into = record.id
    _commit_with_events(book, seller, record, merged, ["FILLED_IN", "READY_FOR_PROCESSING"])
    return record.id


def import_form(book: OrderBook, seller: Seller, form: Form, event_types: list[str]) -> OrderRecord:
    """Make `form` (an Allegro checkout form, kept verbatim: its revision and updatedAt too) the current
    revision of the seller's order with its id, creating the order if new; journal the given events now."""
    form_id = form.get("id")
    if not isinstance(form_id, str) or not form_id:
        raise MutationError("the form has no id")
    owner = book.owner_of.get(form_id)
    if owner is not None and owner != seller.seller_id:
        raise MutationError(f"checkout form {form_id} belongs to another seller")
    unknown = set(event_types) - set(lifecycle.EVENT_TYPES)
    if unknown:
        raise MutationError(f"unknown event types {sorted(unknown)}")
    try:
        # On a throwaway record first: a form missing a field the lists filter on changes nothing.
        OrderRecord(id=form_id, seller_id=seller.seller_id).store(form)
    except (KeyError, TypeError, ValueError) as error:
        raise MutationError(f"not a checkout form this simulator can serve: {error!r}") from None
    record = seller.orders.get(form_id)
    created = record is None
    if record is None:
        record = OrderRecord(id=form_id, seller_id=seller.seller_id)
    record.store(form)
    if created:
        book.owner_of[form_id] = seller.seller_id
        seller.add(record)
    now = now_us()
    for event_type in event_types:
        book.emit(seller, record, event_type, now, now, current=form)
    seller.touch()
    return record


def _in_currency(item: Form, currency: str) -> Form:
    """A line item priced in `currency` (merging across marketplaces re-prices the foreign ones)."""
    for key in ("originalPrice", "price"):
        price = item[key]
        if price["currency"] != currency:
            ratio = CURRENCY_SCALE[currency] / CURRENCY_SCALE[price["currency"]]
            item[key] = money(max(1, round(cents_of(price) * ratio)), currency)
    return item
