"""`GET /order/checkout-forms[/{id}]`: filters, sorts, limits, visibility, merges
(reference/allegro/README.md §3)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.simulator.conftest import Sim

pytestmark = pytest.mark.asyncio


async def _linked(sim: Sim, orders: int, days_back: float = 300) -> tuple[str, str]:
    seller_id = await sim.seller(orders=orders, days_back=days_back)
    return seller_id, (await sim.link(seller_id))["access_token"]


async def _list(sim: Sim, token: str, **params: Any) -> dict[str, Any]:
    response = await sim.api("/order/checkout-forms", token, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _latest_bought(form: dict[str, Any]) -> str:
    return max(datetime.fromisoformat(item["boughtAt"]) for item in form["lineItems"]).isoformat()


async def test_default_sort_is_latest_purchase_descending_and_counts(sim: Sim) -> None:
    _, token = await _linked(sim, 150)
    page = await _list(sim, token)
    assert (page["count"], page["totalCount"]) == (100, 150)
    bought = [_latest_bought(f) for f in page["checkoutForms"]]
    assert bought == sorted(bought, reverse=True)
    rest = await _list(sim, token, offset=100)
    assert rest["count"] == 50
    all_ids = {f["id"] for f in page["checkoutForms"] + rest["checkoutForms"]}
    assert len(all_ids) == 150


async def test_sorts_by_updated_at_both_ways(sim: Sim) -> None:
    _, token = await _linked(sim, 60)
    ascending = [f["updatedAt"] for f in (await _list(sim, token, sort="updatedAt"))["checkoutForms"]]
    descending = [f["updatedAt"] for f in (await _list(sim, token, sort="-updatedAt"))["checkoutForms"]]
    oldest_first = [
        _latest_bought(f) for f in (await _list(sim, token, sort="lineItems.boughtAt"))["checkoutForms"]
    ]
    assert ascending == sorted(ascending) and descending == sorted(descending, reverse=True)
    assert oldest_first == sorted(oldest_first)


@pytest.mark.parametrize(
    ("param", "path"),
    [
        ("status", ("status",)),
        ("fulfillment.status", ("fulfillment", "status")),
        ("fulfillment.provider.id", ("fulfillment", "provider", "id")),
        ("fulfillment.shipmentSummary.lineItemsSent", ("fulfillment", "shipmentSummary", "lineItemsSent")),
        ("payment.id", ("payment", "id")),
        ("delivery.method.id", ("delivery", "method", "id")),
        ("buyer.login", ("buyer", "login")),
        ("marketplace.id", ("marketplace", "id")),
    ],
)
async def test_equality_filters(sim: Sim, param: str, path: tuple[str, ...]) -> None:
    _, token = await _linked(sim, 90, days_back=5)
    forms = (await _list(sim, token))["checkoutForms"]
    assert len(forms) == 90

    def value(form: dict[str, Any]) -> Any:
        for key in path:
            form = form[key]
        return form

    wanted = value(forms[-1])
    filtered = await _list(sim, token, **{param: wanted})
    expected = {f["id"] for f in forms if value(f) == wanted}
    assert {f["id"] for f in filtered["checkoutForms"]} == expected
    assert filtered["totalCount"] == len(expected) >= 1


async def test_surcharge_filter_finds_the_form_with_that_surcharge(sim: Sim) -> None:
    seller_id, token = await _linked(sim, 40, days_back=0.001)
    form_ids = [f["id"] for f in (await _list(sim, token))["checkoutForms"]]
    surcharged = None
    for _ in range(200):
        await sim.control("POST", f"/sellers/{seller_id}/mutate-random", {"count": 40})
        forms = (await _list(sim, token))["checkoutForms"]
        surcharged = next((f for f in forms if f["surcharges"]), None)
        if surcharged:
            break
    assert surcharged is not None and surcharged["id"] in form_ids
    found = await _list(sim, token, **{"surcharges.id": surcharged["surcharges"][0]["id"]})
    assert [f["id"] for f in found["checkoutForms"]] == [surcharged["id"]]


async def test_bought_and_updated_ranges(sim: Sim) -> None:
    _, token = await _linked(sim, 100, days_back=20)
    now = datetime.now(UTC)
    since = (now - timedelta(days=10)).isoformat().replace("+00:00", "Z")
    recent = await _list(sim, token, **{"lineItems.boughtAt.gte": since})
    older = await _list(sim, token, **{"lineItems.boughtAt.lte": since})
    assert recent["totalCount"] + older["totalCount"] == 100
    assert all(_latest_bought(f) >= (now - timedelta(days=10)).isoformat() for f in recent["checkoutForms"])
    updated = await _list(sim, token, **{"updatedAt.gte": since})
    assert all(f["updatedAt"] >= since[:19] for f in updated["checkoutForms"])
    assert 0 < updated["totalCount"] < 100


async def test_limit_and_offset_window(sim: Sim) -> None:
    _, token = await _linked(sim, 3)
    for params in ({"limit": 0}, {"limit": 101}, {"offset": 9950, "limit": 51}, {"offset": -1}):
        response = await sim.api("/order/checkout-forms", token, params=params)
        assert response.status_code == 422, params
    assert (
        await sim.api("/order/checkout-forms", token, params={"offset": 9900, "limit": 100})
    ).status_code == 200
    bad = await sim.api("/order/checkout-forms", token, params={"status": "WHATEVER"})
    assert bad.status_code == 400


async def test_offset_past_end_gives_empty_page(sim: Sim) -> None:
    _, token = await _linked(sim, 2)
    assert await _list(sim, token, offset=50) == {"checkoutForms": [], "count": 0, "totalCount": 2}


async def test_detail_is_case_sensitive_and_validates_uuid(sim: Sim) -> None:
    _, token = await _linked(sim, 1)
    form = (await _list(sim, token))["checkoutForms"][0]
    assert (await sim.api(f"/order/checkout-forms/{form['id']}", token)).json() == form
    upper = await sim.api(f"/order/checkout-forms/{form['id'].upper()}", token)
    assert upper.status_code == 404
    assert (await sim.api("/order/checkout-forms/not-a-uuid", token)).status_code == 422


async def test_other_sellers_forms_are_not_found(sim: Sim) -> None:
    _, token = await _linked(sim, 1)
    _, other_token = await _linked(sim, 1)
    form_id = (await _list(sim, token))["checkoutForms"][0]["id"]
    assert (await sim.api(f"/order/checkout-forms/{form_id}", other_token)).status_code == 404


async def test_merge_replaces_forms_and_keeps_line_item_ids(sim: Sim) -> None:
    seller_id, token = await _linked(sim, 30, days_back=1)
    forms = (await _list(sim, token))["checkoutForms"]
    market = forms[0]["marketplace"]["id"]
    pair = [f for f in forms if f["marketplace"]["id"] == market][:2]
    merged_id = (await sim.control("POST", f"/sellers/{seller_id}/merge", {"ids": [f["id"] for f in pair]}))[
        "id"
    ]
    for old in pair:
        gone = await sim.api(f"/order/checkout-forms/{old['id']}", token)
        assert gone.status_code == 404
        assert gone.json() == {
            "errors": [
                {
                    "code": "CheckoutFormNotFoundException",
                    "message": f"Checkout form {old['id']} not found",
                    "details": None,
                    "path": f"/order/checkout-forms/{old['id']}",
                    "userMessage": f"Checkout form {old['id']} not found",
                    "metadata": {},
                }
            ]
        }
    merged = (await sim.api(f"/order/checkout-forms/{merged_id}", token)).json()
    assert [i["id"] for i in merged["lineItems"]] == [i["id"] for f in pair for i in f["lineItems"]]
    assert (await _list(sim, token))["totalCount"] == 29
    truth = {o["id"]: o for o in (await sim.control("GET", f"/sellers/{seller_id}/truth"))["orders"]}
    assert truth[pair[0]["id"]]["merged_into"] == merged_id


async def test_merge_across_marketplaces_reprices_into_one_currency(sim: Sim) -> None:
    seller_id, token = await _linked(sim, 60, days_back=1)
    forms = (await _list(sim, token))["checkoutForms"]
    pl = next(f for f in forms if f["marketplace"]["id"] == "allegro-pl")
    foreign = next(f for f in forms if f["marketplace"]["id"] != "allegro-pl")
    merged_id = (
        await sim.control("POST", f"/sellers/{seller_id}/merge", {"ids": [pl["id"], foreign["id"]]})
    )["id"]
    merged = (await sim.api(f"/order/checkout-forms/{merged_id}", token)).json()
    assert {i["price"]["currency"] for i in merged["lineItems"]} == {"PLN"}
    assert merged["summary"]["totalToPay"]["currency"] == "PLN"
    refused = await sim.client.post(f"/_sim/sellers/{seller_id}/merge", json={"ids": [pl["id"], merged_id]})
    assert refused.status_code == 422


async def test_forms_older_than_a_year_vanish(sim: Sim) -> None:
    seller_id, token = await _linked(sim, 60, days_back=730)
    visible = await _list(sim, token)
    assert 0 < visible["totalCount"] < 60
    truth = (await sim.control("GET", f"/sellers/{seller_id}/truth?forms=false"))["orders"]
    hidden = [o["id"] for o in truth if o["purged"]]
    assert len(hidden) == 60 - visible["totalCount"]
    assert (await sim.api(f"/order/checkout-forms/{hidden[0]}", token)).status_code == 404


async def test_purge_hides_old_forms_and_events(sim: Sim) -> None:
    _, token = await _linked(sim, 50, days_back=40)
    before = (datetime.now(UTC) - timedelta(days=20)).isoformat()
    answer = await sim.control("POST", "/purge", {"before": before})
    remaining = await _list(sim, token)
    assert answer["orders"] + remaining["totalCount"] == 50
    assert answer["orders"] > 0 and answer["events"] > 0
