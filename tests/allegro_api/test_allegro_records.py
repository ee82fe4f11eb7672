"""The client's order-record reads against the simulator: shipments, invoices, carriers, tracking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from allegro_api import AllegroClient, NotFound, RateLimited, UnexpectedResponse
from allegro_api.records import OrderInvoices, parse_tracking
from tests.allegro_api.conftest import HarnessFactory
from tests.allegro_api.harness import USER_AGENT, Harness


async def _seller_with_order(harness: Harness) -> tuple[str, str, str]:
    """(seller id, access token, id of one new order)."""
    seller_id = await harness.seller(orders=1, days_back=0)
    tokens = await harness.link(seller_id)
    truth = await harness.control("GET", f"/sellers/{seller_id}/truth")
    return seller_id, tokens.access_token, truth["orders"][0]["id"]


async def _server_json(harness: Harness, path: str, token: str, **params: Any) -> Any:
    """What the simulator answers to a plain GET, to compare our parse with."""
    headers = {
        "Accept": "application/vnd.allegro.public.v1+json",
        "Authorization": f"Bearer {token}",
    }
    response = await harness.http.get(f"{harness.base_url}{path}", params=params or None, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_sent_order_reads_as_a_shipment_with_typed_tracking(make_harness: HarnessFactory) -> None:
    harness = await make_harness(records_requests_per_second=0)
    seller_id, token, form_id = await _seller_with_order(harness)
    mutate = {"status": "READY_FOR_PROCESSING", "fulfillment_status": "SENT"}
    await harness.control("POST", f"/sellers/{seller_id}/orders/{form_id}/mutate", mutate)
    client = harness.client()
    answer = await client.shipments(form_id, access_token=token)
    [record] = answer.shipments
    served = await _server_json(harness, f"/order/checkout-forms/{form_id}/shipments", token)
    assert record.as_dict() == served["shipments"][0]
    assert orjson.loads(answer.raw) == served
    shipment = record.model
    assert shipment.carrier_id in {"DPD", "INPOST", "UPS"} and shipment.waybill
    assert shipment.created_at is not None and shipment.created_at.tzinfo is not None
    assert len(shipment.line_items) >= 1
    assert shipment.carrier_id is not None and shipment.waybill is not None
    [tracked] = await client.tracking(shipment.carrier_id, [shipment.waybill], access_token=token)
    assert tracked.waybill == shipment.waybill and tracked.carrier_id == shipment.carrier_id
    assert [status.code for status in tracked.statuses][:2] == ["PENDING", "IN_TRANSIT"]
    assert all(status.occurred_at.tzinfo is not None for status in tracked.statuses)


async def test_explicit_nulls_are_accepted(harness: Harness) -> None:
    seller_id, token, form_id = await _seller_with_order(harness)
    invoice_body = {"file_name": None, "security_status": "WAITING"}
    await harness.control("POST", f"/sellers/{seller_id}/orders/{form_id}/invoices", invoice_body)
    await harness.control(
        "POST", f"/sellers/{seller_id}/orders/{form_id}/invoices", {"security_status": "WAITING"}
    )
    client = harness.client()
    invoices = await client.invoices(form_id, access_token=token)
    no_file, waiting = (record.model for record in invoices.invoices)
    assert no_file.invoice_number is None and no_file.file is None
    assert waiting.file is not None and waiting.file.security_verification is not None
    assert waiting.file.security_verification.status == "WAITING"
    assert waiting.file.security_verification.verified_at is None
    assert invoices.has_external_invoices is False and invoices.links == ()
    [unknown] = await client.tracking("DPD", ["NO-SUCH-WAYBILL"], access_token=token)
    assert unknown.history.tracking_details is None and unknown.statuses == []
    assert orjson.loads(unknown.raw) == {"waybill": "NO-SUCH-WAYBILL", "trackingDetails": None}
    carriers = await client.carriers(access_token=token)
    other = [record.model for record in carriers.carriers if record.model.id == "OTHER"]
    assert other and other[0].name is None


async def test_unknown_fields_are_kept(harness: Harness) -> None:
    seller_id, token, form_id = await _seller_with_order(harness)
    orders = f"/sellers/{seller_id}/orders/{form_id}"
    parcel = {"carrier_id": "DPD", "waybill": "0000007268757Q", "extra": {"transportingWaybill": "X1"}}
    await harness.control("POST", f"{orders}/parcels", parcel)
    await harness.control("POST", f"{orders}/invoices", {"extra": {"correctionOf": None, "kind": "VAT"}})
    client = harness.client()
    [shipment] = (await client.shipments(form_id, access_token=token)).shipments
    assert shipment.model.model_extra == {"transportingWaybill": "X1"}
    assert shipment.as_dict()["transportingWaybill"] == "X1"
    assert (
        shipment.model.id == "RFBEOjAwMDAwMDcyNjg3NTdR"
    )  # base64 of DPD:0000007268757Q, as in a real answer
    [invoice] = (await client.invoices(form_id, access_token=token)).invoices
    assert invoice.model.model_extra == {"correctionOf": None, "kind": "VAT"}
    assert invoice.as_dict()["correctionOf"] is None


async def test_records_of_a_purged_order_raise_not_found(harness: Harness) -> None:
    _, token, form_id = await _seller_with_order(harness)
    client = harness.client()
    assert (await client.shipments(form_id, access_token=token)).shipments == ()
    await harness.control(
        "POST", "/purge", {"before": (datetime.now(UTC) + timedelta(minutes=1)).isoformat()}
    )
    with pytest.raises(NotFound) as shipments_error:
        await client.shipments(form_id, access_token=token)
    assert shipments_error.value.code == "CheckoutFormNotFoundException"
    with pytest.raises(NotFound):
        await client.invoices(form_id, access_token=token)


async def test_tracking_splits_waybills_into_calls_of_twenty(harness: Harness) -> None:
    _, token, _ = await _seller_with_order(harness)
    waybills = [f"W{n:03d}" for n in range(45)]
    harness.sent.clear()
    found = await harness.client().tracking("INPOST", [*waybills, "W007", "W044"], access_token=token)
    assert [item.waybill for item in found] == waybills
    calls = [request for request in harness.sent if request.url.path == "/order/carriers/INPOST/tracking"]
    assert [len(request.url.params.get_list("waybill")) for request in calls] == [20, 20, 5]
    harness.sent.clear()
    assert await harness.client().tracking("INPOST", [], access_token=token) == []
    assert harness.sent == []


async def test_a_records_burst_past_the_limit_is_rate_limited(make_harness: HarnessFactory) -> None:
    # One a second instead of 50: the second call comes well within the first one's second.
    harness = await make_harness(records_requests_per_second=1)
    _, token, _ = await _seller_with_order(harness)
    client = harness.client()
    await client.carriers(access_token=token)
    with pytest.raises(RateLimited) as error:
        await client.carriers(access_token=token)
    assert error.value.retry_after == 1


def test_answers_missing_what_the_spec_requires_are_unexpected() -> None:
    with pytest.raises(UnexpectedResponse):
        parse_tracking(b'{"waybills": []}')
    status_without_code = {"occurredAt": "2026-01-01T00:00:00Z"}
    details = {
        "statuses": [status_without_code],
        "createdAt": "2026-01-01T00:00:00Z",
        "updatedAt": "2026-01-01T00:00:00Z",
    }
    body = {"carrierId": "DPD", "waybills": [{"waybill": "1", "trackingDetails": details}]}
    with pytest.raises(UnexpectedResponse):
        parse_tracking(orjson.dumps(body))
    with pytest.raises(UnexpectedResponse):
        OrderInvoices.from_json(b'{"invoices": {"id": "x"}}')
    # A code Allegro may add later still reads.
    status_without_code["code"] = "HANDED_TO_NEIGHBOUR"
    [item] = parse_tracking(orjson.dumps(body))
    assert item.statuses[0].code == "HANDED_TO_NEIGHBOUR"


async def test_record_requests_are_labelled_per_endpoint_not_per_order(make_harness: HarnessFactory) -> None:
    harness = await make_harness(records_requests_per_second=0)
    seller_id, token, form_id = await _seller_with_order(harness)
    await harness.control(
        "POST",
        f"/sellers/{seller_id}/orders/{form_id}/mutate",
        {"status": "READY_FOR_PROCESSING", "fulfillment_status": "SENT"},
    )
    seen: list[tuple[str, str]] = []
    client = AllegroClient(
        harness.http,
        api_url=harness.base_url,
        user_agent=USER_AGENT,
        observer=lambda endpoint, outcome, _seconds: seen.append((endpoint, outcome)),
    )
    answer = await client.shipments(form_id, access_token=token)
    await client.invoices(form_id, access_token=token)
    await client.checkout_form(form_id, access_token=token)
    shipment = answer.shipments[0].model
    assert shipment.carrier_id is not None and shipment.waybill is not None
    await client.tracking(shipment.carrier_id, [shipment.waybill], access_token=token)
    assert seen == [
        ("/order/checkout-forms/{id}/shipments", "200"),
        ("/order/checkout-forms/{id}/invoices", "200"),
        ("/order/checkout-forms/{id}", "200"),
        ("/order/carriers/{carrierId}/tracking", "200"),
    ]


def test_a_whole_answer_keeps_its_exact_text_escapes_and_spacing_included() -> None:
    # A seller-typed invoice number with an escaped lone surrogate and U+0000, spacing as sent: the
    # record is the body itself (only the whitespace around it goes), never a re-encoding.
    body = (
        b'  {"invoices": [{"id": "1", "invoiceNumber": "FV \\ud800 \\u0000 1", "createdAt": null,'
        b' "file": null}],\n "hasExternalInvoices": false, "links": []}\n'
    )
    answer = OrderInvoices.from_json(body)
    assert answer.raw == body.strip()
    assert answer.invoices[0].model.invoice_number == "FV \ud800 \x00 1"
    # One object of an answer is re-encoded; a lone surrogate stays an escape, the value the same.
    assert answer.invoices[0].as_dict()["invoiceNumber"] == "FV \ud800 \x00 1"
    [tracked] = parse_tracking(
        b'{"carrierId":"DPD","waybills":[{"waybill":"1","trackingDetails":{"statuses":[{"occurredAt":'
        b'"2026-03-01T10:00:00.000Z","code":"ISSUE","description":"zn\\u00f3w \\udc00"}],'
        b'"createdAt":"2026-03-01T10:00:00.000Z","updatedAt":"2026-03-01T10:00:00.000Z"}}]}'
    )
    assert b"\\udc00" in tracked.raw and tracked.statuses[0].description == "zn\u00f3w \udc00"
