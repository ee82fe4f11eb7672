"""Order records: shipments, invoices, carriers and parcel tracking, as served and as controlled."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from simulator.records import RecordKeeper
from tests.simulator.conftest import Sim, SimFactory

pytestmark = pytest.mark.asyncio

_SHIPPED = {"SENT", "READY_FOR_PICKUP", "PICKED_UP", "RETURNED"}
_UNKNOWN_ID = "c93df771-353e-11ee-9e0d-11d3ebef3a15"


async def _linked(sim: Sim, orders: int, days_back: float) -> tuple[str, str, list[dict[str, Any]]]:
    seller_id = await sim.seller(orders=orders, days_back=days_back)
    token = (await sim.link(seller_id))["access_token"]
    truth = (await sim.control("GET", f"/sellers/{seller_id}/truth"))["orders"]
    return seller_id, token, truth


async def _get(sim: Sim, path: str, token: str, **params: Any) -> Any:
    response = await sim.api(path, token, params=params or None)
    assert response.status_code == 200, response.text
    return response.json()


async def _tracking(sim: Sim, token: str, carrier_id: str, *waybills: str) -> list[dict[str, Any]]:
    body = await _get(sim, f"/order/carriers/{carrier_id}/tracking", token, waybill=list(waybills))
    assert body["carrierId"] == carrier_id
    entries: list[dict[str, Any]] = body["waybills"]
    return entries


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_a_new_order_has_empty_shipments_and_invoices(sim: Sim) -> None:
    _, token, truth = await _linked(sim, orders=5, days_back=0)
    for order in truth:
        assert await _get(sim, f"/order/checkout-forms/{order['id']}/shipments", token) == {"shipments": []}
        invoices = await _get(sim, f"/order/checkout-forms/{order['id']}/invoices", token)
        assert invoices == {"hasExternalInvoices": False, "links": [], "invoices": []}


async def test_carriers_list_ids_with_names_and_other_without(sim: Sim) -> None:
    _, token, _ = await _linked(sim, orders=0, days_back=0)
    response = await sim.api("/order/carriers", token)
    carriers = response.json()["carriers"]
    assert carriers[-1] == {"id": "OTHER"}
    assert all(c["name"] for c in carriers[:-1])
    ids = {c["id"] for c in carriers}
    assert {"DPD", "INPOST", "UPS"} <= ids and not ids & {"ALLEGRO", "WEDO", "X_PRESS_COURIERS"}
    assert response.headers["cache-control"] == "max-age=86400"


async def test_added_parcel_is_listed_and_its_tracking_grows(sim: Sim) -> None:
    seller_id, token, truth = await _linked(sim, orders=1, days_back=0)
    order = truth[0]
    body = {"carrier_id": "DHL", "waybill": "12345678910PL"}
    added = await sim.control("POST", f"/sellers/{seller_id}/orders/{order['id']}/parcels", body)
    assert added["id"] == "REhMOjEyMzQ1Njc4OTEwUEw="  # the spec's example: base64 of DHL:12345678910PL
    assert added["lineItems"] == [{"id": item["id"]} for item in order["form"]["lineItems"]]
    shipments = await _get(sim, f"/order/checkout-forms/{order['id']}/shipments", token)
    assert shipments == {"shipments": [added]}
    assert await _tracking(sim, token, "DHL", "12345678910PL") == [
        {"waybill": "12345678910PL", "trackingDetails": None}
    ]
    start = datetime.now(UTC) - timedelta(hours=5)
    for hours, code in ((0, "PENDING"), (2, "IN_TRANSIT")):
        status = {"carrier_id": "DHL", "waybill": "12345678910PL", "code": code}
        await sim.control(
            "POST", "/tracking", {**status, "occurred_at": (start + timedelta(hours=hours)).isoformat()}
        )
    [entry] = await _tracking(sim, token, "DHL", "12345678910PL")
    details = entry["trackingDetails"]
    assert [s["code"] for s in details["statuses"]] == ["PENDING", "IN_TRANSIT"]
    assert details["statuses"][0]["description"] is None
    assert _at(details["createdAt"]) < _at(details["updatedAt"]) == _at(details["statuses"][-1]["occurredAt"])
    # A status reported for later shows only once its time has come.
    later = {"carrier_id": "DHL", "waybill": "12345678910PL", "code": "DELIVERED"}
    await sim.control("POST", "/tracking", {**later, "occurred_at": (start + timedelta(days=2)).isoformat()})
    [entry] = await _tracking(sim, token, "DHL", "12345678910PL")
    assert len(entry["trackingDetails"]["statuses"]) == 2


async def test_parcel_control_refuses_unknown_carriers_items_and_repeats(sim: Sim) -> None:
    seller_id, _, truth = await _linked(sim, orders=1, days_back=0)
    path = f"/_sim/sellers/{seller_id}/orders/{truth[0]['id']}/parcels"
    good = {"carrier_id": "DPD", "waybill": "0000007268757Q"}
    assert (await sim.client.post(path, json=good)).status_code == 200
    for body in (
        good,
        {"carrier_id": "ALLEGRO", "waybill": "AD01"},
        {"carrier_id": "OTHER", "waybill": "X1"},
        {"carrier_id": "DPD", "waybill": "X2", "line_item_ids": [_UNKNOWN_ID]},
    ):
        assert (await sim.client.post(path, json=body)).status_code == 422, body
    other = {"carrier_id": "OTHER", "waybill": "X1", "carrier_name": "Kurier lokalny"}
    assert (await sim.client.post(path, json=other)).json()["carrierName"] == "Kurier lokalny"


async def test_tracking_takes_one_to_twenty_distinct_waybills(sim: Sim) -> None:
    _, token, _ = await _linked(sim, orders=0, days_back=0)
    none = await sim.api("/order/carriers/DPD/tracking", token)
    assert none.status_code == 400
    too_many = await sim.api(
        "/order/carriers/DPD/tracking", token, params={"waybill": [str(n) for n in range(21)]}
    )
    assert too_many.status_code == 400
    assert too_many.json()["errors"][0]["code"] == "VALIDATION_ERROR"
    twenty = await _tracking(sim, token, "DPD", *[str(n) for n in range(20)], "3")
    assert [entry["waybill"] for entry in twenty] == [str(n) for n in range(20)]
    assert {entry["trackingDetails"] for entry in twenty} == {None}


async def test_records_of_unknown_merged_purged_or_foreign_orders_are_refused(sim: Sim) -> None:
    seller_id, token, truth = await _linked(sim, orders=3, days_back=0)
    _, other_token, _ = await _linked(sim, orders=0, days_back=0)
    merged = [truth[0]["id"], truth[1]["id"]]
    await sim.control("POST", f"/sellers/{seller_id}/merge", {"ids": merged})
    await sim.control("POST", "/purge", {"before": (datetime.now(UTC) + timedelta(minutes=1)).isoformat()})
    for form_id in (_UNKNOWN_ID, *merged, truth[2]["id"]):
        for what in ("shipments", "invoices"):
            response = await sim.api(f"/order/checkout-forms/{form_id}/{what}", token)
            assert response.status_code == 404, (form_id, what)
            assert response.json()["errors"][0]["code"] == "CheckoutFormNotFoundException"
    seller_id, token, truth = await _linked(sim, orders=1, days_back=0)
    form_id = truth[0]["id"]
    assert (await sim.api(f"/order/checkout-forms/{form_id}/shipments", other_token)).status_code == 404
    assert (await sim.api(f"/order/checkout-forms/{form_id}/invoices", other_token)).status_code == 403


async def test_shipped_orders_have_a_parcel_whose_tracking_ends_delivered(make_sim: SimFactory) -> None:
    sim = await make_sim(records_requests_per_second=0)
    _, token, truth = await _linked(sim, orders=120, days_back=60)
    shipped = 0
    for order in truth:
        form = order["form"]
        status = form["fulfillment"]["status"]
        shipments = (await _get(sim, f"/order/checkout-forms/{order['id']}/shipments", token))["shipments"]
        if status not in _SHIPPED:
            assert shipments == [], status
            continue
        shipped += 1
        [shipment] = shipments
        method = form["delivery"]["method"]["name"]
        expected = "INPOST" if "InPost" in method else "UPS" if "UPS" in method else "DPD"
        assert shipment["carrierId"] == expected
        assert shipment["lineItems"] == [{"id": item["id"]} for item in form["lineItems"]]
        assert _at(shipment["createdAt"]) >= _at(form["lineItems"][0]["boughtAt"]) - timedelta(seconds=1)
        [entry] = await _tracking(sim, token, shipment["carrierId"], shipment["waybill"])
        statuses = entry["trackingDetails"]["statuses"]
        times = [_at(s["occurredAt"]) for s in statuses]
        assert times == sorted(times) and statuses[0]["code"] == "PENDING"
        if status in {"PICKED_UP", "RETURNED"}:
            assert statuses[-1]["code"] == "DELIVERED"
            assert times[-1] <= _at(form["updatedAt"])
    assert shipped > 50


async def test_a_live_order_gets_its_parcel_when_sent_and_delivered_when_picked_up(sim: Sim) -> None:
    seller_id, token, truth = await _linked(sim, orders=1, days_back=0)
    form_id = truth[0]["id"]
    mutate = f"/sellers/{seller_id}/orders/{form_id}/mutate"
    await sim.control("POST", mutate, {"status": "READY_FOR_PROCESSING", "fulfillment_status": "SENT"})
    [shipment] = (await _get(sim, f"/order/checkout-forms/{form_id}/shipments", token))["shipments"]
    [before] = await _tracking(sim, token, shipment["carrierId"], shipment["waybill"])
    codes = [s["code"] for s in before["trackingDetails"]["statuses"]]
    assert codes[0] == "PENDING" and "DELIVERED" not in codes
    await sim.control("POST", mutate, {"fulfillment_status": "PICKED_UP"})
    [after] = await _tracking(sim, token, shipment["carrierId"], shipment["waybill"])
    statuses = after["trackingDetails"]["statuses"]
    # What was shown stays; the history now ends with the delivery.
    assert statuses[: len(codes)] == before["trackingDetails"]["statuses"]
    assert statuses[-1]["code"] == "DELIVERED"
    assert (await _get(sim, f"/order/checkout-forms/{form_id}/shipments", token))["shipments"] == [shipment]


async def test_paid_orders_asking_for_an_invoice_get_one(make_sim: SimFactory) -> None:
    sim = await make_sim(records_requests_per_second=0)
    _, token, truth = await _linked(sim, orders=120, days_back=60)
    day_ago = datetime.now(UTC) - timedelta(days=1)
    with_invoice = 0
    for order in truth:
        form = order["form"]
        invoices = (await _get(sim, f"/order/checkout-forms/{order['id']}/invoices", token))["invoices"]
        paid = form["status"] == "READY_FOR_PROCESSING" and _at(form["updatedAt"]) < day_ago
        if not form["invoice"]["required"] or form["status"] != "READY_FOR_PROCESSING":
            assert invoices == []
        elif paid:
            [invoice] = invoices
            assert invoice["file"]["securityVerification"]["status"] == "ACCEPTED"
            assert invoice["file"]["name"].endswith(".pdf") and invoice["invoiceNumber"].startswith("FV ")
            with_invoice += 1
    assert with_invoice > 10


async def test_added_invoices_keep_their_file_state_and_extra_fields(sim: Sim) -> None:
    seller_id, token, truth = await _linked(sim, orders=1, days_back=0)
    path = f"/sellers/{seller_id}/orders/{truth[0]['id']}/invoices"
    await sim.control("POST", path, {"invoice_number": "FV 01/2020", "extra": {"newField": 1}})
    await sim.control("POST", path, {"file_name": None, "security_status": "WAITING"})
    body = await _get(sim, f"/order/checkout-forms/{truth[0]['id']}/invoices", token)
    first, second = body["invoices"]
    assert first["invoiceNumber"] == "FV 01/2020" and first["newField"] == 1
    assert first["file"]["name"] == "faktura.pdf"
    assert first["file"]["verification"] == {"status": "NOT_APPLICABLE", "details": []}
    assert second["invoiceNumber"] is None and second["file"] is None
    assert first["id"] != second["id"]


async def test_same_seed_gives_same_records(make_sim: SimFactory) -> None:
    async def records(sim: Sim) -> list[Any]:
        _, token, truth = await _linked(sim, orders=40, days_back=30)
        found: list[Any] = []
        for order in truth:
            shipments = await _get(sim, f"/order/checkout-forms/{order['id']}/shipments", token)
            invoices = await _get(sim, f"/order/checkout-forms/{order['id']}/invoices", token)
            found.append([(s["waybill"], s["carrierId"], s["id"]) for s in shipments["shipments"]])
            found.append([(i["id"], i["invoiceNumber"]) for i in invoices["invoices"]])
        return found

    first = await records(await make_sim(seed=5, records_requests_per_second=0))
    assert first == await records(await make_sim(seed=5, records_requests_per_second=0))
    assert first != await records(await make_sim(seed=6, records_requests_per_second=0))
    assert any(first)


async def test_shipments_and_carriers_allow_fifty_requests_a_second() -> None:
    keeper = RecordKeeper(seed=0)
    assert all(keeper.admit("/order/carriers", 10.0 + n / 1000) for n in range(50))
    assert not keeper.admit("/order/carriers", 10.5)
    assert keeper.admit("/order/checkout-forms/{id}/shipments", 10.5)
    assert keeper.admit("/order/carriers", 11.01)


async def test_a_burst_of_shipment_reads_gets_429_with_retry_after(make_sim: SimFactory) -> None:
    # A limit of 3 a second instead of 50 keeps the burst well inside one second on a loaded machine.
    sim = await make_sim(records_requests_per_second=3)
    _, token, truth = await _linked(sim, orders=1, days_back=0)
    path = f"/order/checkout-forms/{truth[0]['id']}/shipments"
    answers = [(await sim.api(path, token)) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert answers[-1].headers["retry-after"] == "1"
    assert answers[-1].json()["errors"][0]["code"] == "TooManyRequests"
