"""Generated orders hang together the way real ones do, over thousands of forms and their revisions:
payment and delivery agree on cash on delivery, one purchase has one moment, buyers edit addresses only
while that still makes sense, and allegro-cz / allegro-sk orders are in Czech / Slovak."""

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio

from simulator.app import create_app
from tests.simulator.conftest import TEST_CONFIG

pytestmark = pytest.mark.asyncio

# Letters of Polish that Czech and Slovak do not have.
_POLISH_ONLY = frozenset("ąćęłńśźżĄĆĘŁŃŚŹŻ")
_PHONE_PREFIX = {"PL": "+48", "CZ": "+420", "SK": "+421"}


@dataclass(frozen=True)
class World:
    """Every order of one seller with all its revisions (oldest first), and the ids merges created."""

    orders: list[dict[str, Any]]
    merged_ids: frozenset[str]

    def revisions(self) -> list[dict[str, Any]]:
        """Every stored revision of every order."""
        return [revision["form"] for order in self.orders for revision in order["revisions"]]


@pytest_asyncio.fixture(scope="module")
async def world() -> AsyncIterator[World]:
    """A year of history, a few days of recent orders, live changes on top and some merges."""
    app = create_app(TEST_CONFIG)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as client,
    ):

        async def control(method: str, path: str, body: Any = None) -> Any:
            response = await client.request(method, f"/_sim{path}", json=body)
            assert response.status_code == 200, response.text
            return response.json()

        seller = (await control("POST", "/sellers", {}))["seller_id"]
        await control("POST", f"/sellers/{seller}/orders", {"count": 1500, "days_back": 330})
        recent = (await control("POST", f"/sellers/{seller}/orders", {"count": 600, "days_back": 2}))["ids"]
        for _ in range(25):
            await control("POST", f"/sellers/{seller}/mutate-random", {"count": 300})
        # Allegro merges forms of one buyer, so of one marketplace: pair recent forms by marketplace.
        by_market: dict[str, list[str]] = {}
        for order in (await control("GET", f"/sellers/{seller}/truth"))["orders"]:
            if order["id"] in recent[:60]:
                by_market.setdefault(order["form"]["marketplace"]["id"], []).append(order["id"])
        merged = set()
        for ids in by_market.values():
            for first in range(0, len(ids) - 1, 2):
                body = {"ids": ids[first : first + 2]}
                merged.add((await control("POST", f"/sellers/{seller}/merge", body))["id"])
        truth = await control("GET", f"/sellers/{seller}/truth")
        yield World(truth["orders"], frozenset(merged))


def _country(form: dict[str, Any]) -> str:
    return {"allegro-pl": "PL", "allegro-cz": "CZ", "allegro-sk": "SK"}[form["marketplace"]["id"]]


async def test_cash_on_delivery_payment_comes_with_a_cash_on_delivery_method_and_only_then(
    world: World,
) -> None:
    # Allegro names its cash-on-delivery methods "... pobranie".
    pairs = [
        (form["payment"]["type"] == "CASH_ON_DELIVERY", "pobranie" in form["delivery"]["method"]["name"])
        for form in world.revisions()
    ]
    mismatched = [pair for pair in pairs if pair[0] != pair[1]]
    assert mismatched == []
    assert sum(cod for cod, _ in pairs) > 50 and sum(not cod for cod, _ in pairs) > 1000


async def test_line_items_of_one_purchase_were_bought_at_one_moment(world: World) -> None:
    purchases = [order["form"] for order in world.orders if order["id"] not in world.merged_ids]
    several = [form for form in purchases if len(form["lineItems"]) > 1]
    assert len(several) > 300
    spread = [form["id"] for form in purchases if len({i["boughtAt"] for i in form["lineItems"]}) != 1]
    assert spread == []


async def test_buyers_edit_addresses_only_before_packing_and_soon_after_buying(world: World) -> None:
    edits = 0
    for order in world.orders:
        revisions = [revision["form"] for revision in order["revisions"]]
        for before, after in itertools.pairwise(revisions):
            if before["delivery"]["address"] == after["delivery"]["address"]:
                continue
            edits += 1
            bought = max(datetime.fromisoformat(item["boughtAt"]) for item in after["lineItems"])
            edited = datetime.fromisoformat(after["delivery"]["address"]["modifiedAt"])
            assert before["status"] != "CANCELLED", order["id"]
            assert before["fulfillment"]["status"] in ("NEW", "PROCESSING"), order["id"]
            assert edited - bought <= timedelta(days=14), order["id"]
    assert edits > 30


async def test_cz_and_sk_orders_are_in_their_own_language_and_country(world: World) -> None:
    forms = [order["form"] for order in world.orders]
    polish_offers = {
        item["offer"]["name"] for form in forms if _country(form) == "PL" for item in form["lineItems"]
    }
    assert any(_POLISH_ONLY & set(name) for name in polish_offers)
    foreign = [form for form in world.revisions() if _country(form) != "PL"]
    assert {_country(form) for form in foreign} == {"CZ", "SK"}
    for form in foreign:
        names = [item["offer"]["name"] for item in form["lineItems"]]
        texts = [*names, form["messageToSeller"] or "", form["delivery"]["address"]["street"]]
        assert not any(_POLISH_ONLY & set(text) for text in texts), form["id"]
        assert not polish_offers & set(names), form["id"]
        address = form["delivery"]["address"]
        assert address["countryCode"] == _country(form)
        assert address["phoneNumber"].startswith(_PHONE_PREFIX[_country(form)]), form["id"]
