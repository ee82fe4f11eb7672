"""Control API, inspection half: faults, token kills, ground truth, request statistics."""

import time

import orjson
from fastapi import APIRouter
from starlette.responses import Response

from simulator.control_models import NotFoundFault, SellerRef
from simulator.deps import StateDep
from simulator.faults import FaultPatch, HiddenForm
from simulator.routes_control import answer, seller_or_404
from simulator.store import OrderRecord

router = APIRouter(prefix="/_sim")


@router.get("/faults")
async def get_faults(state: StateDep) -> Response:
    """The whole fault configuration."""
    return answer(state.faults.model_dump())


@router.put("/faults")
async def put_faults(body: FaultPatch, state: StateDep) -> Response:
    """Change any subset of the fault configuration; answers the whole of it."""
    state.faults = body.apply(state.faults)
    return answer(state.faults.model_dump())


@router.post("/faults/not-found")
async def hide_form(body: NotFoundFault, state: StateDep) -> Response:
    """The form's detail GET answers 404 for the next `requests` requests and for `seconds`."""
    state.hidden_forms[body.id] = HiddenForm(body.requests, time.monotonic() + body.seconds)
    return answer({"id": body.id, "requests": body.requests, "seconds": body.seconds})


@router.post("/tokens/revoke")
async def revoke_tokens(body: SellerRef, state: StateDep) -> Response:
    """Every token of the seller dies: 401 on use, invalid_grant on refresh."""
    return answer({"revoked": state.oauth.revoke_seller(body.seller_id)})


@router.post("/tokens/expire")
async def expire_tokens(body: SellerRef, state: StateDep) -> Response:
    """The seller's access tokens expire now; refreshing still works."""
    return answer({"expired": state.oauth.expire_seller(body.seller_id)})


def _truth_entry(record: OrderRecord, gone: bool, with_forms: bool) -> bytes:
    head = orjson.dumps(
        {"id": record.id, "revision": record.revision, "merged_into": record.merged_into, "purged": gone}
    )
    if not with_forms:
        revisions = b",".join(b'{"revision":"%s"}' % rev.encode() for rev, _ in record.revisions)
        return head[:-1] + b',"revisions":[' + revisions + b"]}"
    revisions = b",".join(
        b'{"revision":"%s","form":%s}' % (rev.encode(), body) for rev, body in record.revisions
    )
    return head[:-1] + b',"form":' + record.body + b',"revisions":[' + revisions + b"]}"


@router.get("/sellers/{seller_id}/truth")
async def truth(seller_id: str, state: StateDep, forms: bool = True) -> Response:
    """Every order of the seller with every revision; `purged` covers purges and the 12-month horizon."""
    seller = seller_or_404(state, seller_id)
    cutoff = state.book.visible_since_us()
    entries = (
        _truth_entry(record, record.purged or record.bought_us < cutoff, forms)
        for record in seller.orders.values()
    )
    return Response(b'{"orders":[' + b",".join(entries) + b"]}", media_type="application/json")


@router.get("/stats")
async def stats(state: StateDep) -> Response:
    """Counters of public API requests by method, route and status."""
    counters = state.stats
    return answer(
        {"requests": dict(counters.requests), "total": counters.total, "rate_limited": counters.rate_limited}
    )


@router.post("/stats/reset")
async def reset_stats(state: StateDep) -> Response:
    """Zero the request counters."""
    state.stats.reset()
    return answer({"reset": True})


@router.get("/sellers/{seller_id}")
async def describe_seller(seller_id: str, state: StateDep) -> Response:
    """A seller's size: orders, visible orders, events, trickle rates."""
    seller = seller_or_404(state, seller_id)
    cutoff = state.book.visible_since_us()
    rates = state.trickle.rates.get(seller_id)
    return answer(
        {
            "seller_id": seller.seller_id,
            "login": seller.login,
            "orders": len(seller.orders),
            "visible_orders": sum(1 for r in seller.orders.values() if state.book.is_visible(r, cutoff)),
            "events": len(seller.journal.ids),
            "trickle": None
            if rates is None
            else {"new_per_s": rates.new_per_s, "changes_per_s": rates.changes_per_s},
        }
    )
