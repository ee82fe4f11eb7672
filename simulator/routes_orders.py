"""Public REST routes: checkout forms, order events, event statistics."""

import asyncio
import re
import time

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from simulator.clock import MICROS_PER_DAY, iso_ms, now_us
from simulator.deps import SellerDep, StateDep
from simulator.lifecycle import EVENT_TYPES
from simulator.listing import matching_forms, parse_query, render_page
from simulator.responses import rest_error, vendor_json
from simulator.state import SimulatorState

router = APIRouter()
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@router.get("/order/checkout-forms")
async def list_checkout_forms(request: Request, state: StateDep, seller: SellerDep) -> Response:
    """The seller's checkout forms, filtered, sorted and paged."""
    query = parse_query(request.query_params)
    await _hold_if_asked(state)
    forms = matching_forms(state.book, seller, query)
    page = forms[query.offset : query.offset + query.limit]
    faults = state.faults
    if faults.short_pages and len(page) > faults.short_page_drop:
        state.faults = faults.model_copy(update={"short_pages": faults.short_pages - 1})
        middle = (len(page) - faults.short_page_drop) // 2
        page = page[:middle] + page[middle + faults.short_page_drop :]
    return vendor_json(render_page(page, len(forms)))


async def _hold_if_asked(state: SimulatorState) -> None:
    """Count a list page against `hold_lists_after`; once it is used up, wait until the setting changes."""
    while True:
        faults = state.faults
        if faults.hold_lists_after is None:
            return
        if faults.hold_lists_after > 0:
            state.faults = faults.model_copy(update={"hold_lists_after": faults.hold_lists_after - 1})
            return
        await asyncio.sleep(0.05)


@router.get("/order/checkout-forms/{id}")
async def get_checkout_form(id: str, request: Request, state: StateDep, seller: SellerDep) -> Response:
    """One checkout form; 404 once merged away, purged or past the 12-month visibility."""
    form_id = id
    if not _UUID.match(form_id):
        raise rest_error(422, "VALIDATION_ERROR", f"Invalid UUID string: {form_id}", path=request.url.path)
    record = state.book.find(seller, form_id)
    if record is not None and _hidden(state, form_id):
        record = None
    if record is None:
        message = f"Checkout form {form_id} not found"
        raise rest_error(
            404, "CheckoutFormNotFoundException", message, path=f"/order/checkout-forms/{form_id}"
        )
    return vendor_json(record.body)


@router.get("/me")
async def me(seller: SellerDep) -> Response:
    """The account behind the access token, as Allegro's `GET /me` answers (explicit nulls included)."""
    return vendor_json(
        orjson.dumps(
            {
                "id": seller.seller_id,
                "login": seller.login,
                "firstName": None,
                "lastName": None,
                "email": f"{seller.login}@example.invalid",
                "baseMarketplace": {"id": "allegro-pl"},
                "company": None,
            }
        )
    )


def _hidden(state: SimulatorState, form_id: str) -> bool:
    """Whether the not-found fault hides this form from this request."""
    hidden = state.hidden_forms.get(form_id)
    if hidden is None:
        return False
    now = time.monotonic()
    hides = hidden.hides(now)
    if hidden.spent(now):
        del state.hidden_forms[form_id]
    return hides


def _event_params(request: Request) -> tuple[int, int, frozenset[str]]:
    params = request.query_params
    raw_from = params.get("from")
    if raw_from is not None and not raw_from.isdigit():
        raise rest_error(422, "VALIDATION_ERROR", f"Invalid event id in parameter from: {raw_from}")
    raw_limit = params.get("limit", "100")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 1000:
        raise rest_error(422, "VALIDATION_ERROR", "limit must be between 1 and 1000")
    types = frozenset(params.getlist("type"))
    unknown = types - set(EVENT_TYPES)
    if unknown:
        raise rest_error(422, "VALIDATION_ERROR", f"Invalid event type: {', '.join(sorted(unknown))}")
    return int(raw_from or 0), int(raw_limit), types


def _inject_event_faults(state: SimulatorState, events: list[bytes], limit: int) -> list[bytes]:
    faults, rng = state.faults, state.book.fault_rng
    if faults.duplicate_events:
        doubled: list[bytes] = []
        for event in events:
            doubled.append(event)
            if rng.random() < faults.duplicate_events:
                doubled.append(event)
        events = doubled[:limit]
    if faults.reorder_events:
        index = 0
        while index < len(events) - 1:
            if rng.random() < faults.reorder_events:
                events[index], events[index + 1] = events[index + 1], events[index]
                index += 1
            index += 1
    return events


@router.get("/order/events")
async def list_events(request: Request, state: StateDep, seller: SellerDep) -> Response:
    """Events after `from` (exclusive), oldest first, within the 60-day retention."""
    after, limit, types = _event_params(request)
    oldest = now_us() - state.config.event_retention_days * MICROS_PER_DAY
    events = _inject_event_faults(state, seller.journal.page(after, oldest, types, limit), limit)
    return vendor_json(b'{"events":[' + b",".join(events) + b"]}")


@router.get("/order/event-stats")
async def event_stats(state: StateDep, seller: SellerDep) -> Response:
    """The newest retained event, the starting point for reading the journal."""
    latest = seller.journal.latest()
    oldest = now_us() - state.config.event_retention_days * MICROS_PER_DAY
    body = None
    if latest is not None and latest[0] >= oldest:
        body = {"id": str(latest[0]), "occurredAt": iso_ms(latest[1])}
    return vendor_json(orjson.dumps({"latestEvent": body}))
