"""The order-event journal: paging, exclusive `from`, limits, types, retention, emission."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.simulator.conftest import Sim

pytestmark = pytest.mark.asyncio


async def _linked(sim: Sim, orders: int, days_back: float = 30) -> tuple[str, str]:
    seller_id = await sim.seller(orders=orders, days_back=days_back)
    return seller_id, (await sim.link(seller_id))["access_token"]


async def _events(sim: Sim, token: str, **params: Any) -> list[dict[str, Any]]:
    response = await sim.api("/order/events", token, params=params)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


async def test_pages_are_ascending_and_from_is_exclusive(sim: Sim) -> None:
    _, token = await _linked(sim, 40)
    everything = await _events(sim, token, limit=1000)
    ids = [int(e["id"]) for e in everything]
    assert len(ids) > 40
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    paged, cursor = [], None
    while True:
        page = await _events(sim, token, limit=7, **({"from": cursor} if cursor else {}))
        paged += page
        if len(page) < 7:
            break
        cursor = page[-1]["id"]
    assert [e["id"] for e in paged] == [e["id"] for e in everything]
    after_first = await _events(sim, token, **{"from": everything[0]["id"], "limit": 1})
    assert after_first[0]["id"] == everything[1]["id"]


async def test_default_limit_is_100_and_range_is_enforced(sim: Sim) -> None:
    _, token = await _linked(sim, 80)
    assert len(await _events(sim, token)) == 100
    for bad in ({"limit": 0}, {"limit": 1001}, {"from": "abc"}, {"type": "NOPE"}):
        response = await sim.api("/order/events", token, params=bad)
        assert response.status_code == 422, bad
        assert response.json()["errors"][0]["code"] == "VALIDATION_ERROR"


async def test_type_filter_accepts_repeated_parameter(sim: Sim) -> None:
    _, token = await _linked(sim, 30)
    events = await _events(sim, token, type=["BOUGHT", "FILLED_IN"], limit=1000)
    assert events
    assert {e["type"] for e in events} == {"BOUGHT", "FILLED_IN"}


async def test_event_has_order_summary_with_checkout_form_reference(sim: Sim) -> None:
    seller_id, token = await _linked(sim, 5)
    event = (await _events(sim, token, limit=1))[0]
    order = event["order"]
    assert order["seller"] == {"id": seller_id}
    assert set(order["buyer"]) == {"id", "email", "login", "guest", "preferences"}
    assert set(order["checkoutForm"]) == {"id", "revision"}
    assert order["lineItems"][0]["boughtAt"]
    assert event["occurredAt"].endswith("Z")


async def test_only_sixty_days_of_events_are_kept(sim: Sim) -> None:
    _, token = await _linked(sim, 200, days_back=180)
    events = await _events(sim, token, limit=1000)
    oldest = datetime.fromisoformat(events[0]["occurredAt"])
    assert oldest >= datetime.now(UTC) - timedelta(days=60, minutes=1)
    forms = (await sim.api("/order/checkout-forms", token)).json()
    assert forms["totalCount"] == 200
    assert len({e["order"]["checkoutForm"]["id"] for e in events}) < 150


async def test_event_stats_points_at_latest_or_null(sim: Sim) -> None:
    _, empty_token = await _linked(sim, 0)
    assert (await sim.api("/order/event-stats", empty_token)).json() == {"latestEvent": None}
    _, token = await _linked(sim, 10)
    latest = (await sim.api("/order/event-stats", token)).json()["latestEvent"]
    events = await _events(sim, token, limit=1000)
    assert latest == {"id": events[-1]["id"], "occurredAt": events[-1]["occurredAt"]}
    assert await _events(sim, token, **{"from": latest["id"]}) == []


async def test_mutations_emit_matching_events_with_new_revision(sim: Sim) -> None:
    seller_id, token = await _linked(sim, 3)
    cursor = (await sim.api("/order/event-stats", token)).json()["latestEvent"]["id"]
    form_id = (await sim.api("/order/checkout-forms", token)).json()["checkoutForms"][0]["id"]
    base = f"/sellers/{seller_id}/orders/{form_id}/mutate"
    first = await sim.control("POST", base, {"fulfillment_status": "PROCESSING"})
    second = await sim.control("POST", base, {"buyer_edit": True})
    third = await sim.control("POST", base, {"status": "CANCELLED"})
    events = await _events(sim, token, **{"from": cursor})
    assert [e["type"] for e in events] == ["FULFILLMENT_STATUS_CHANGED", "BUYER_MODIFIED", "BUYER_CANCELLED"]
    assert [e["order"]["checkoutForm"]["revision"] for e in events] == [
        first["revision"],
        second["revision"],
        third["revision"],
    ]
    assert len({first["revision"], second["revision"], third["revision"]}) == 3


async def test_live_order_emits_bought_then_progress(sim: Sim) -> None:
    seller_id, token = await _linked(sim, 0)
    await sim.control("POST", f"/sellers/{seller_id}/trickle", {"new_per_s": 40, "changes_per_s": 0})
    await asyncio.sleep(0.3)
    await sim.control("DELETE", f"/sellers/{seller_id}/trickle")
    events = await _events(sim, token, limit=1000)
    assert events and {e["type"] for e in events} == {"BOUGHT"}
    await sim.control("POST", f"/sellers/{seller_id}/mutate-random", {"count": len(events)})
    later = await _events(sim, token, **{"from": events[-1]["id"], "limit": 1000})
    assert {e["type"] for e in later} <= {
        "FILLED_IN",
        "READY_FOR_PROCESSING",
        "BUYER_CANCELLED",
        "AUTO_CANCELLED",
    }
    assert len(later) >= len(events)
