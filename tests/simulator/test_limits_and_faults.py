"""Rate limiting per client id and the injectable faults."""

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.simulator.conftest import Sim, SimFactory

pytestmark = pytest.mark.asyncio
FIELD_CASES = Path(__file__).resolve().parents[2] / "reference" / "field-cases"


async def _linked(sim: Sim, orders: int = 0) -> tuple[str, str]:
    seller_id = await sim.seller(orders=orders)
    return seller_id, (await sim.link(seller_id))["access_token"]


async def test_rate_limit_blocks_client_id_with_retry_after(make_sim: SimFactory) -> None:
    sim = await make_sim(rate_limit_per_min=5, block_seconds=0.5)
    _, token = await _linked(sim)
    _, other_seller_token = await _linked(sim)
    statuses = [(await sim.api("/order/event-stats", token)).status_code for _ in range(5)]
    blocked = await sim.api("/order/event-stats", token)
    assert statuses == [200] * 5
    assert blocked.status_code == 429
    assert blocked.json()["errors"][0]["code"] == "TooManyRequests"
    assert blocked.headers["retry-after"] == "1"
    # The limit is per client id, shared by every seller's token of the app.
    assert (await sim.api("/order/event-stats", other_seller_token)).status_code == 429
    await asyncio.sleep(0.55)
    assert (await sim.api("/order/event-stats", token)).status_code == 200
    stats = await sim.control("GET", "/stats")
    assert stats["rate_limited"] == 2
    assert stats["requests"]["GET /order/event-stats 429"] == 2


async def test_auth_and_control_calls_do_not_count_against_the_limit(make_sim: SimFactory) -> None:
    sim = await make_sim(rate_limit_per_min=2)
    seller_id, token = await _linked(sim)
    for _ in range(5):
        await sim.control("GET", f"/sellers/{seller_id}")
        await sim.start_device()
    assert (await sim.api("/order/event-stats", token)).status_code == 200


async def test_faults_put_merges_and_get_returns_everything(sim: Sim) -> None:
    answer = await sim.control("PUT", "/faults", {"latency_ms": 5, "retry_after": False})
    assert answer["latency_ms"] == 5 and answer["retry_after"] is False
    assert answer["rate_limit_per_min"] == 9000 and answer["block_seconds"] == 60
    assert await sim.control("GET", "/faults") == answer
    bad = await sim.client.put("/_sim/faults", json={"error_rate_5xx": 2})
    assert bad.status_code == 422


async def test_burst_of_429_then_normal_service_without_retry_after(sim: Sim) -> None:
    _, token = await _linked(sim)
    await sim.control("PUT", "/faults", {"burst_429": 2, "retry_after": False})
    statuses = [(await sim.api("/order/event-stats", token)).status_code for _ in range(3)]
    assert statuses == [429, 429, 200]
    assert (await sim.control("GET", "/faults"))["burst_429"] == 0


async def test_server_errors_use_errors_shape(sim: Sim) -> None:
    _, token = await _linked(sim)
    await sim.control("PUT", "/faults", {"error_rate_5xx": 1.0})
    seen: dict[int, Any] = {}
    for _ in range(40):
        response = await sim.api("/order/event-stats", token)
        seen[response.status_code] = response.json()["errors"][0]["code"]
    assert set(seen) == {500, 502, 503, 504}
    assert seen[504] == "UPSTREAM_SERVICE_TIMEOUT"


async def test_latency_is_added(sim: Sim) -> None:
    _, token = await _linked(sim)
    await sim.control("PUT", "/faults", {"latency_ms": 150})
    started = time.perf_counter()
    await sim.api("/order/event-stats", token)
    assert time.perf_counter() - started >= 0.14


async def test_duplicated_and_reordered_events(sim: Sim) -> None:
    _, token = await _linked(sim, orders=30)
    clean = (await sim.api("/order/events", token, params={"limit": 1000})).json()["events"]
    await sim.control("PUT", "/faults", {"duplicate_events": 0.5})
    doubled = (await sim.api("/order/events", token, params={"limit": 1000})).json()["events"]
    assert len(doubled) > len(clean)
    assert sorted({e["id"] for e in doubled}) == [e["id"] for e in clean]
    await sim.control("PUT", "/faults", {"duplicate_events": 0.0, "reorder_events": 1.0})
    swapped = (await sim.api("/order/events", token, params={"limit": 1000})).json()["events"]
    assert [e["id"] for e in swapped] != [e["id"] for e in clean]
    assert sorted(e["id"] for e in swapped) == [e["id"] for e in clean]
    assert swapped[0]["id"] == clean[1]["id"] and swapped[1]["id"] == clean[0]["id"]


async def test_dropped_events_never_appear_but_forms_change(sim: Sim) -> None:
    seller_id, token = await _linked(sim, orders=5)
    cursor = (await sim.api("/order/event-stats", token)).json()["latestEvent"]["id"]
    await sim.control("PUT", "/faults", {"drop_events": 1.0})
    form_id = (await sim.api("/order/checkout-forms", token)).json()["checkoutForms"][0]["id"]
    changed = await sim.control("POST", f"/sellers/{seller_id}/orders/{form_id}/mutate", {"buyer_edit": True})
    await sim.control("PUT", "/faults", {"drop_events": 0.0})
    assert (await sim.api("/order/events", token, params={"from": cursor})).json() == {"events": []}
    fetched = (await sim.api(f"/order/checkout-forms/{form_id}", token)).json()
    assert fetched["revision"] == changed["revision"]


async def test_a_hidden_form_answers_404_for_its_requests_then_for_its_seconds(sim: Sim) -> None:
    _, token = await _linked(sim, orders=3)
    form_id = (await sim.api("/order/checkout-forms", token)).json()["checkoutForms"][0]["id"]
    await sim.control("POST", "/faults/not-found", {"id": form_id, "requests": 2})
    statuses = [(await sim.api(f"/order/checkout-forms/{form_id}", token)).status_code for _ in range(3)]
    assert statuses == [404, 404, 200]
    await sim.control("POST", "/faults/not-found", {"id": form_id, "seconds": 0.3})
    missing = await sim.api(f"/order/checkout-forms/{form_id}", token)
    assert missing.json()["errors"][0]["code"] == "CheckoutFormNotFoundException"
    await asyncio.sleep(0.35)
    assert (await sim.api(f"/order/checkout-forms/{form_id}", token)).status_code == 200


async def test_a_short_page_leaves_out_forms_but_keeps_the_total(sim: Sim) -> None:
    _, token = await _linked(sim, orders=10)
    full = (await sim.api("/order/checkout-forms", token)).json()
    await sim.control("PUT", "/faults", {"short_pages": 1, "short_page_drop": 3})
    short = (await sim.api("/order/checkout-forms", token)).json()
    assert (short["count"], short["totalCount"]) == (7, 10)
    ids = [form["id"] for form in full["checkoutForms"]]
    assert [form["id"] for form in short["checkoutForms"]] == ids[:3] + ids[6:]
    assert (await sim.api("/order/checkout-forms", token)).json()["count"] == 10
    assert (await sim.control("GET", "/faults"))["short_pages"] == 0


async def test_list_requests_wait_once_their_pages_are_used_up_until_released(sim: Sim) -> None:
    _, token = await _linked(sim, orders=3)
    await sim.control("PUT", "/faults", {"hold_lists_after": 1})
    assert (await sim.api("/order/checkout-forms", token)).status_code == 200
    held = asyncio.create_task(sim.api("/order/checkout-forms", token))
    await asyncio.sleep(0.3)
    assert not held.done()
    await sim.control("PUT", "/faults", {"hold_lists_after": -1})
    assert (await asyncio.wait_for(held, 5)).status_code == 200
    assert (await sim.control("GET", "/faults"))["hold_lists_after"] is None


async def test_an_imported_form_is_served_verbatim_with_its_events(sim: Sim) -> None:
    seller_id, token = await _linked(sim)
    cursor = (await sim.api("/order/event-stats", token)).json()["latestEvent"]
    form = orjson.loads((FIELD_CASES / "E04a.rev1.json").read_bytes())
    answer = await sim.control("POST", f"/sellers/{seller_id}/forms", {"form": form, "events": ["BOUGHT"]})
    assert answer == {"id": form["id"], "revision": "e4000001"}
    served = await sim.api(f"/order/checkout-forms/{form['id']}", token)
    assert served.content == orjson.dumps(form)
    params = {"from": cursor["id"]} if cursor else {}
    events = (await sim.api("/order/events", token, params=params)).json()["events"]
    assert [(e["type"], e["order"]["checkoutForm"]) for e in events] == [
        ("BOUGHT", {"id": form["id"], "revision": "e4000001"})
    ]
    bad = await sim.client.post(f"/_sim/sellers/{seller_id}/forms", json={"form": {"id": "x"}})
    assert bad.status_code == 422
