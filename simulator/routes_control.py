"""Control API, world-building half: sellers, device approval, orders, mutations, merges, trickle, purge."""

from datetime import UTC

import orjson
from fastapi import APIRouter
from starlette.responses import Response

from simulator import device_decisions
from simulator.clock import MICROS_PER_SECOND
from simulator.control_models import (
    DeviceApproval,
    DeviceDenial,
    ImportedForm,
    MergeRequest,
    Mutation,
    NewOrders,
    NewSeller,
    PurgeRequest,
    RandomMutations,
    TrickleRequest,
)
from simulator.deps import StateDep
from simulator.device_decisions import DecisionRefused, Refusal
from simulator.mutations import MutationError, import_form, merge, mutate, mutate_random
from simulator.responses import ApiError
from simulator.state import SimulatorState
from simulator.store import Seller
from simulator.trickle import TrickleRates

router = APIRouter(prefix="/_sim")


def control_error(status: int, message: str) -> ApiError:
    """A control-API error: `{"detail": message}`."""
    return ApiError(status, {"detail": message}, media_type="application/json")


def answer(body: object) -> Response:
    """A control-API JSON answer."""
    return Response(orjson.dumps(body), media_type="application/json")


def seller_or_404(state: SimulatorState, seller_id: str) -> Seller:
    """The seller with this id, or a 404."""
    seller = state.book.sellers.get(seller_id)
    if seller is None:
        raise control_error(404, f"unknown seller {seller_id}")
    return seller


@router.post("/sellers")
async def create_seller(body: NewSeller, state: StateDep) -> Response:
    """Create a seller (or return the existing one with that id)."""
    seller = state.book.add_seller(body.login, body.seller_id)
    return answer({"seller_id": seller.seller_id, "login": seller.login})


def _refused(error: DecisionRefused) -> ApiError:
    if error.reason is Refusal.UNKNOWN_SELLER:
        return control_error(404, f"unknown seller {error.seller_id}")
    return control_error(404, f"no pending device authorisation with user code {error.user_code}")


@router.post("/device/approve")
async def approve_device(body: DeviceApproval, state: StateDep) -> Response:
    """The user approves a pending user code for a seller account."""
    try:
        device_decisions.approve(state, body.user_code, body.seller_id)
    except DecisionRefused as error:
        raise _refused(error) from None
    return answer({"approved": True})


@router.post("/device/deny")
async def deny_device(body: DeviceDenial, state: StateDep) -> Response:
    """The user refuses a pending user code."""
    try:
        device_decisions.deny(state, body.user_code)
    except DecisionRefused as error:
        raise _refused(error) from None
    return answer({"denied": True})


@router.post("/sellers/{seller_id}/orders")
async def create_orders(seller_id: str, body: NewOrders, state: StateDep) -> Response:
    """Orders bought over the last `days_back` days; events for those within the retention."""
    seller = seller_or_404(state, seller_id)
    return answer({"ids": state.book.create_orders(seller, body.count, body.days_back, body.with_events)})


@router.post("/sellers/{seller_id}/orders/{id}/mutate")
async def mutate_order(seller_id: str, id: str, body: Mutation, state: StateDep) -> Response:
    """Change one order: a new revision and the matching events; answers the new form."""
    seller = seller_or_404(state, seller_id)
    record = state.book.find(seller, id)
    if record is None:
        raise control_error(404, f"no visible order {id} of seller {seller_id}")
    try:
        form = mutate(
            state.book,
            seller,
            record,
            status=body.status,
            fulfillment_status=body.fulfillment_status,
            buyer_edit=body.buyer_edit,
        )
    except MutationError as error:
        raise control_error(422, str(error)) from None
    return answer(form)


@router.post("/sellers/{seller_id}/mutate-random")
async def mutate_random_orders(seller_id: str, body: RandomMutations, state: StateDep) -> Response:
    """Move `count` random orders one step forward."""
    seller = seller_or_404(state, seller_id)
    return answer({"ids": mutate_random(state.book, seller, body.count)})


@router.post("/sellers/{seller_id}/merge")
async def merge_orders(seller_id: str, body: MergeRequest, state: StateDep) -> Response:
    """Replace several forms by a new one holding their line items; the old ids answer 404."""
    seller = seller_or_404(state, seller_id)
    try:
        return answer({"id": merge(state.book, seller, body.ids)})
    except MutationError as error:
        raise control_error(422, str(error)) from None


@router.post("/sellers/{seller_id}/forms")
async def put_form(seller_id: str, body: ImportedForm, state: StateDep) -> Response:
    """Serve a given checkout form (a field case's file) as the current revision of its order."""
    seller = seller_or_404(state, seller_id)
    try:
        record = import_form(state.book, seller, body.form, body.events)
    except MutationError as error:
        raise control_error(422, str(error)) from None
    return answer({"id": record.id, "revision": record.revision})


@router.post("/sellers/{seller_id}/trickle")
async def start_trickle(seller_id: str, body: TrickleRequest, state: StateDep) -> Response:
    """Start (or retune) steady background purchases and changes for a seller."""
    seller_or_404(state, seller_id)
    await state.trickle.start(seller_id, TrickleRates(body.new_per_s, body.changes_per_s))
    return answer(
        {
            "seller_id": seller_id,
            "running": True,
            "new_per_s": body.new_per_s,
            "changes_per_s": body.changes_per_s,
        }
    )


@router.delete("/sellers/{seller_id}/trickle")
async def stop_trickle(seller_id: str, state: StateDep) -> Response:
    """Stop a seller's background generator."""
    seller_or_404(state, seller_id)
    was_running = await state.trickle.stop(seller_id)
    return answer({"seller_id": seller_id, "running": False, "was_running": was_running})


@router.post("/purge")
async def purge(body: PurgeRequest, state: StateDep) -> Response:
    """Forms bought and events that occurred before `before` vanish from the public API."""
    before = body.before if body.before.tzinfo else body.before.replace(tzinfo=UTC)
    orders, events = state.book.purge(int(before.timestamp() * MICROS_PER_SECOND))
    return answer({"orders": orders, "events": events})
