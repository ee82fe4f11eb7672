"""The same seed and the same control calls give the same orders."""

from typing import Any

import pytest

from tests.simulator.conftest import Sim, SimFactory

pytestmark = pytest.mark.asyncio

# Fields holding wall-clock times: the only thing allowed to differ between two runs.
_TIME_KEYS = frozenset({"updatedAt", "boughtAt", "finishedAt", "from", "to", "modifiedAt", "dueDate"})


def _without_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if k not in _TIME_KEYS}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


async def _world(sim: Sim) -> list[Any]:
    seller_id = await sim.seller(orders=40, days_back=100)
    await sim.control("POST", f"/sellers/{seller_id}/mutate-random", {"count": 10})
    truth = await sim.control("GET", f"/sellers/{seller_id}/truth")
    return [seller_id, _without_times(truth)]


async def test_same_seed_gives_same_world(make_sim: SimFactory) -> None:
    first = await _world(await make_sim(seed=42))
    second = await _world(await make_sim(seed=42))
    third = await _world(await make_sim(seed=43))
    assert first == second
    assert first != third


async def test_truth_lists_every_revision(sim: Sim) -> None:
    seller_id = await sim.seller(orders=1, days_back=1)
    form_id = (await sim.control("GET", f"/sellers/{seller_id}/truth"))["orders"][0]["id"]
    for _ in range(3):
        await sim.control("POST", f"/sellers/{seller_id}/orders/{form_id}/mutate", {"buyer_edit": True})
    order = (await sim.control("GET", f"/sellers/{seller_id}/truth"))["orders"][0]
    assert len(order["revisions"]) == 4
    assert order["revisions"][-1] == {"revision": order["revision"], "form": order["form"]}
    assert [r["form"]["revision"] for r in order["revisions"]] == [r["revision"] for r in order["revisions"]]
    assert (order["merged_into"], order["purged"]) == (None, False)
