"""An order's records, each kind on its own endpoint: `/v1/users/{user_id}/orders/{id}/shipments`,
`/tracking`, `/invoices`, with the current records and every version (`db.queries.order_records`)."""

from __future__ import annotations

from api.deps import CheckoutFormId, ReadPoolDep, TokenFilter, UserId, v1_router
from api.problems import ProblemError, problem_responses
from api.record_views import record_document, version_document
from api.rendering import RawJSONResponse, json_bytes
from api.schemas.records import RecordList
from core.order_records import RecordKind
from db.queries.order_records import record_versions, records_of_orders
from db.queries.orders import get_order

router = v1_router("orders")

_SUMMARIES: dict[RecordKind, str] = {
    "shipments": "An order's shipments (waybills) with their history",
    "tracking": "The tracking history of an order's parcels, per waybill, with every version",
    "invoices": "An order's invoices (metadata and links; Allegro has no file download) with their history",
}


async def _records(
    kind: RecordKind, user_id: str, checkout_form_id: str, reads: ReadPoolDep, token_id: TokenFilter
) -> RawJSONResponse:
    order = await get_order(reads, user_id=user_id, checkout_form_id=checkout_form_id, token_id=token_id)
    if order is None:
        raise ProblemError(404, f"no order {checkout_form_id} for user {user_id}")
    current = await records_of_orders(reads, [(order.token_id, checkout_form_id)], [kind])
    versions = await record_versions(reads, order.token_id, checkout_form_id, kind)
    body = {
        "token_id": str(order.token_id),
        "checkout_form_id": checkout_form_id,
        "kind": kind,
        "items": [record_document(record) for record in current],
        "versions": [version_document(version) for version in versions],
    }
    return RawJSONResponse(json_bytes(body))


def _route(kind: RecordKind) -> None:
    async def endpoint(
        user_id: UserId, checkout_form_id: CheckoutFormId, reads: ReadPoolDep, token_id: TokenFilter = None
    ) -> RawJSONResponse:
        return await _records(kind, user_id, checkout_form_id, reads, token_id)

    endpoint.__name__ = f"get_order_{kind}"
    endpoint.__doc__ = (
        f"The order's current {kind} records (`items`) and every distinct content they had (`versions`,"
        " oldest first), kept after Allegro purged the order. Same copy as `GET …/orders/{id}`."
    )
    router.add_api_route(
        f"/orders/{{checkout_form_id}}/{kind}",
        endpoint,
        methods=["GET"],
        response_model=RecordList,
        response_class=RawJSONResponse,
        summary=_SUMMARIES[kind],
        responses=problem_responses(401, 404, 422),
    )


_KINDS: tuple[RecordKind, ...] = ("shipments", "tracking", "invoices")
for _kind in _KINDS:
    _route(_kind)
