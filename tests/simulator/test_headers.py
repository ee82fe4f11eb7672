"""Accept, User-Agent, content type and trace-id (reference/allegro/README.md §2)."""

import pytest

from tests.simulator.conftest import VENDOR, Sim, SimFactory

pytestmark = pytest.mark.asyncio


async def test_missing_accept_header_gives_406_in_errors_shape(sim: Sim) -> None:
    token = await sim.link(await sim.seller())
    response = await sim.api("/order/checkout-forms", token["access_token"], Accept="application/json")
    assert response.status_code == 406
    error = response.json()["errors"][0]
    assert error["code"] == "NotAcceptableException"
    assert "Accept" in error["message"]


async def test_responses_carry_vendor_type_and_trace_id(sim: Sim) -> None:
    token = await sim.link(await sim.seller(orders=3))
    response = await sim.api("/order/checkout-forms", token["access_token"])
    assert response.headers["content-type"] == VENDOR
    assert len(response.headers["trace-id"]) == 32


async def test_strict_mode_requires_user_agent(make_sim: SimFactory) -> None:
    sim = await make_sim(strict_user_agent=True)
    token = await sim.link(await sim.seller())
    missing = await sim.api("/order/event-stats", token["access_token"], **{"User-Agent": ""})
    present = await sim.api("/order/event-stats", token["access_token"])
    assert missing.status_code == 403
    assert "User-Agent" in missing.json()["errors"][0]["message"]
    assert present.status_code == 200


async def test_lenient_mode_accepts_missing_user_agent(sim: Sim) -> None:
    token = await sim.link(await sim.seller())
    response = await sim.api("/order/event-stats", token["access_token"], **{"User-Agent": ""})
    assert response.status_code == 200
