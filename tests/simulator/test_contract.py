"""Responses validate against Allegro's OpenAPI schemas once null-valued keys are removed (README, top)."""

from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
import yaml
from openapi_schema_validator import OAS30Validator, oas30_format_checker

import reference
from tests.simulator.conftest import Sim, SimFactory

# The error bodies of reference/allegro/README.md §5; the orders subset of the spec does not carry
# these schemas.
_ERROR_SCHEMAS = {
    "ErrorsHolder": {
        "type": "object",
        "required": ["errors"],
        "properties": {
            "errors": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/Error"}}
        },
    },
    "Error": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "string"},
            "message": {"type": "string"},
            "details": {"type": "string"},
            "path": {"type": "string"},
            "userMessage": {"type": "string"},
            "metadata": {"type": "object"},
        },
    },
    "AuthError": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
    },
}


def shared_allegro_dir() -> Path:
    """The Allegro reference files carried in the repository (`reference/allegro`)."""
    return reference.ALLEGRO


@cache
def _components() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    # The order-records subset adds the shipments, invoices, carriers and tracking schemas.
    for name in ("openapi-orders.yaml", "openapi-order-records.yaml"):
        spec = yaml.safe_load((shared_allegro_dir() / name).read_text(encoding="utf-8"))
        schemas.update(spec["components"]["schemas"])
    return {"schemas": {**schemas, **_ERROR_SCHEMAS}}


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def validate(body: Any, schema_name: str) -> None:
    """Raise if `body` (nulls removed) does not match the named component schema."""
    schema = {"components": _components(), "$ref": f"#/components/schemas/{schema_name}"}
    OAS30Validator(schema, format_checker=oas30_format_checker).validate(_without_nulls(body))


def test_real_samples_pass_and_a_broken_form_fails() -> None:
    for sample in sorted((shared_allegro_dir() / "samples").glob("*.json")):
        validate(orjson.loads(sample.read_bytes()), "CheckoutForms")
    broken = orjson.loads(next((shared_allegro_dir() / "samples").glob("*.json")).read_bytes())
    broken["checkoutForms"][0]["status"] = "SHIPPED"
    with pytest.raises(jsonschema.ValidationError):
        validate(broken, "CheckoutForms")


@pytest.mark.asyncio
async def test_simulator_responses_match_the_spec(sim: Sim) -> None:
    seller_id = await sim.seller(orders=300, days_back=90)
    await sim.control("POST", f"/sellers/{seller_id}/mutate-random", {"count": 200})
    token = (await sim.link(seller_id))["access_token"]
    for offset in (0, 100, 200):
        page = await sim.api("/order/checkout-forms", token, params={"offset": offset})
        validate(page.json(), "CheckoutForms")
    form_id = page.json()["checkoutForms"][0]["id"]
    validate((await sim.api(f"/order/checkout-forms/{form_id}", token)).json(), "CheckoutForm")
    validate((await sim.api("/order/events", token, params={"limit": 1000})).json(), "OrderEventsList")
    validate((await sim.api("/order/event-stats", token)).json(), "OrderEventStats")
    not_found = await sim.api("/order/checkout-forms/c93df771-353e-11ee-9e0d-11d3ebef3a15", token)
    validate(not_found.json(), "ErrorsHolder")
    validate((await sim.api("/order/event-stats", "expired.token.x")).json(), "AuthError")
    validate((await sim.refresh("nope")).json(), "AuthError")


async def _record_answers(sim: Sim, token: str, form_id: str) -> tuple[Any, Any]:
    shipments = await sim.api(f"/order/checkout-forms/{form_id}/shipments", token)
    invoices = await sim.api(f"/order/checkout-forms/{form_id}/invoices", token)
    assert shipments.status_code == invoices.status_code == 200
    validate(shipments.json(), "CheckoutFormOrderWaybillResponse")
    validate(invoices.json(), "CheckoutFormsOrderInvoices")
    return shipments.json(), invoices.json()


@pytest.mark.asyncio
async def test_order_record_answers_match_the_spec(make_sim: SimFactory) -> None:
    sim = await make_sim(records_requests_per_second=0)
    seller_id = await sim.seller(orders=60, days_back=60)
    token = (await sim.link(seller_id))["access_token"]
    truth = (await sim.control("GET", f"/sellers/{seller_id}/truth"))["orders"]
    waybills: dict[str, list[str]] = {}
    invoiced = 0
    for order in truth:
        shipments, invoices = await _record_answers(sim, token, order["id"])
        for shipment in shipments["shipments"]:
            waybills.setdefault(shipment["carrierId"], []).append(shipment["waybill"])
        invoiced += len(invoices["invoices"])
    assert waybills and invoiced
    # Empty answers, and records added through the control API (with the nulls they carry).
    fresh = (await sim.control("POST", f"/sellers/{seller_id}/orders", {"count": 1, "days_back": 0}))["ids"][
        0
    ]
    empty_shipments, empty_invoices = await _record_answers(sim, token, fresh)
    assert empty_shipments["shipments"] == [] and empty_invoices["invoices"] == []
    orders = f"/sellers/{seller_id}/orders/{fresh}"
    await sim.control(
        "POST", f"{orders}/parcels", {"carrier_id": "OTHER", "waybill": "X-1", "carrier_name": "Kurier"}
    )
    await sim.control("POST", f"{orders}/invoices", {"file_name": None, "security_status": "WAITING"})
    await sim.control("POST", f"{orders}/invoices", {"invoice_number": "FV 1/2026"})
    shipments, invoices = await _record_answers(sim, token, fresh)
    assert len(shipments["shipments"]) == 1 and len(invoices["invoices"]) == 2
    validate((await sim.api("/order/carriers", token)).json(), "OrdersShippingCarriersResponse")
    for carrier_id, numbers in waybills.items():
        tracking = await sim.api(
            f"/order/carriers/{carrier_id}/tracking", token, params={"waybill": numbers[:20]}
        )
        validate(tracking.json(), "CarrierParcelTrackingResponse")
        assert all(entry["trackingDetails"] for entry in tracking.json()["waybills"])
    unknown = await sim.api("/order/carriers/DPD/tracking", token, params={"waybill": "NOPE"})
    assert unknown.json()["waybills"] == [{"waybill": "NOPE", "trackingDetails": None}]
    validate(unknown.json(), "CarrierParcelTrackingResponse")
    not_found = await sim.api("/order/checkout-forms/c93df771-353e-11ee-9e0d-11d3ebef3a15/shipments", token)
    assert not_found.status_code == 404
    validate(not_found.json(), "ErrorsHolder")


def test_record_schemas_reject_a_wrong_tracking_code() -> None:
    answer = {"carrierId": "DPD", "waybills": [{"waybill": "1", "trackingDetails": None}]}
    validate(answer, "CarrierParcelTrackingResponse")
    status = {"occurredAt": "2026-01-01T00:00:00.000Z", "code": "LOST"}
    details = {"statuses": [status], "createdAt": status["occurredAt"], "updatedAt": status["occurredAt"]}
    answer["waybills"] = [{"waybill": "1", "trackingDetails": details}]
    with pytest.raises(jsonschema.ValidationError):
        validate(answer, "CarrierParcelTrackingResponse")


@pytest.mark.asyncio
async def test_forms_are_varied(sim: Sim) -> None:
    seller_id = await sim.seller(orders=300, days_back=90)
    truth = (await sim.control("GET", f"/sellers/{seller_id}/truth"))["orders"]
    forms = [o["form"] for o in truth]
    assert {f["marketplace"]["id"] for f in forms} == {"allegro-pl", "allegro-cz", "allegro-sk"}
    assert {f["summary"]["totalToPay"]["currency"] for f in forms} == {"PLN", "CZK", "EUR"}
    assert {len(f["lineItems"]) for f in forms} >= {1, 2, 3}
    invoices = {(f["invoice"]["address"] or {}).get("company") is not None for f in forms}
    persons = any((f["invoice"]["address"] or {}).get("naturalPerson") for f in forms)
    assert invoices == {True, False} and persons
    assert any(f["invoice"]["address"] is None for f in forms)
    assert any(f["delivery"]["pickupPoint"] for f in forms) and any(
        f["delivery"]["pickupPoint"] is None for f in forms
    )
    assert any(f["buyer"]["companyName"] for f in forms) and any(
        f["buyer"]["companyName"] is None for f in forms
    )
