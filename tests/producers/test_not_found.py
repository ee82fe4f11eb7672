"""A 404 is evidence, not a verdict (simulator faults → poller → Kafka → worker → PostgreSQL).

Field cases transient-404 and not-yet-visible, and forms a walk finds gone: decided merged (with the
successor that shares their line items) or missing upstream, with the evidence kept in `form_retries`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.settings import KafkaSettings
from db.engine import asyncpg_dsn
from tests.processors.worker import Worker, consume_all
from tests.producers.conftest import Sim, make_settings, running_poller, start_link, token_row, wait_for
from tests.producers.pipeline import stored_orders, worker

__all__ = ["worker"]

FORM_404 = "GET /order/checkout-forms/{id} 404"
FIELD_CASES = Path(__file__).resolve().parents[2] / "reference" / "field-cases"
QUICK_RETRIES = {"missing_retry_first_seconds": 0.3, "missing_retry_max_seconds": 1.0}


async def _linked(
    sim: Sim, db: AsyncEngine, settings: Any, database_url: str, *, count: int, days_back: float, events: bool
) -> tuple[str, list[str], uuid.UUID]:
    """A seller with orders, linked, backfilled, every order stored by the worker."""
    seller = await sim.seller()
    ids = (
        await sim.control(
            "POST",
            f"/sellers/{seller}/orders",
            {"count": count, "days_back": days_back, "with_events": events},
        )
    )["ids"]
    token_id = await start_link(sim, db, user_id=f"user-{uuid.uuid4().hex[:6]}", seller_id=seller)
    async with running_poller(settings):
        await _wait_revisions(database_url, token_id, await sim.truth(seller))
    return seller, ids, token_id


async def _wait_revisions(database_url: str, token_id: uuid.UUID, expected: dict[str, str]) -> None:
    async def stored_as_expected() -> bool:
        stored = await stored_orders(database_url, token_id)
        return all(stored.get(form_id, {}).get("revision") == rev for form_id, rev in expected.items())

    await wait_for(stored_as_expected, within=90, what="the orders stored at their revisions", every=0.3)


async def _retry_row(database_url: str, token_id: uuid.UUID, form_id: str) -> dict[str, Any] | None:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        row = await conn.fetchrow(
            "SELECT * FROM form_retries WHERE token_id = $1 AND checkout_form_id = $2", token_id, form_id
        )
    finally:
        await conn.close()
    return None if row is None else dict(row)


def _field_case(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads((FIELD_CASES / name).read_bytes())
    return loaded


async def test_field_case_transient_404_marks_nothing_and_the_hidden_revision_is_fetched(
    sim: Sim, db: AsyncEngine, kafka_settings: KafkaSettings, poller_database_url: str, worker: Worker
) -> None:
    # E04a: rev1 stored; the detail GET answers 404 once on rev2's event, then works.
    rev1, rev2, rev3 = (_field_case(f"E04a.rev{n}.json") for n in (1, 2, 3))
    form_id = rev1["id"]
    settings = make_settings(sim, kafka_settings, poller_database_url, poller=QUICK_RETRIES)
    seller, _ids, token_id = await _linked(
        sim, db, settings, poller_database_url, count=5, days_back=20, events=True
    )
    async with running_poller(settings):
        await _serve(sim, seller, rev1, "BOUGHT", "FILLED_IN", "READY_FOR_PROCESSING")
        await _wait_revisions(poller_database_url, token_id, {form_id: rev1["revision"]})
        await sim.control("POST", "/stats/reset")
        await sim.control("POST", "/faults/not-found", {"id": form_id, "requests": 1})
        await _serve(sim, seller, rev2, "FULFILLMENT_STATUS_CHANGED")
        await _wait_revisions(poller_database_url, token_id, {form_id: rev2["revision"]})
        assert (await sim.stats()).get(FORM_404) == 1, "the 404 was never served"
        await _serve(sim, seller, rev3, "FULFILLMENT_STATUS_CHANGED")
        await _wait_revisions(poller_database_url, token_id, {form_id: rev3["revision"]})
    order = (await stored_orders(poller_database_url, token_id))[form_id]
    assert sorted(order["revisions"]) == ["e4000001", "e4000002", "e4000003"]
    assert order["revision"] == "e4000003" and order["fulfillment_status"] == "SENT"
    assert order["superseded_at"] is None and order["missing_upstream_since"] is None
    # Nothing announced that did not happen.
    changes = [
        orjson.loads(record.value)
        for record in await consume_all(kafka_settings.bootstrap_servers, kafka_settings.orders_topic, 2)
    ]
    mine = [change for change in changes if change["checkout_form_id"] == form_id]
    assert [change["revision"] for change in mine] == ["e4000001", "e4000002", "e4000003"]
    assert all(change["change"] != "superseded" for change in mine)
    retry = await _retry_row(poller_database_url, token_id, form_id)
    assert retry is not None and retry["outcome"] == "found"


async def _serve(sim: Sim, seller: str, form: dict[str, Any], *events: str) -> None:
    """Make the simulator serve this form (verbatim) as its order's current revision, with these events."""
    await sim.control("POST", f"/sellers/{seller}/forms", {"form": form, "events": list(events)})


async def test_field_case_not_yet_visible_order_is_fetched_within_seconds_across_a_restart(
    sim: Sim, db: AsyncEngine, kafka_settings: KafkaSettings, poller_database_url: str, worker: Worker
) -> None:
    # E04b: a new order's event arrives, but its detail GET answers 404 for a short while.
    form = _field_case("E04b.json")
    new_id = form["id"]
    settings = make_settings(sim, kafka_settings, poller_database_url, poller=QUICK_RETRIES)
    seller, _ids, token_id = await _linked(
        sim, db, settings, poller_database_url, count=5, days_back=20, events=True
    )
    await sim.control("POST", "/faults/not-found", {"id": new_id, "seconds": 4})
    await _serve(sim, seller, form, "BOUGHT", "FILLED_IN", "READY_FOR_PROCESSING")
    latest_event = (await token_row(db, token_id))["event_cursor"]
    async with running_poller(settings):
        await wait_for(
            lambda: _retry_row(poller_database_url, token_id, new_id), within=20, what="the 404 noted"
        )
    # The poller stops while the form still hides: the retry list is in PostgreSQL, not in its memory.
    row = await token_row(db, token_id)
    assert int(row["event_cursor"]) > int(latest_event), "the cursor moved past the event"
    assert new_id not in await stored_orders(poller_database_url, token_id)
    async with running_poller(settings):
        await _wait_revisions(poller_database_url, token_id, {new_id: "e4100001"})
    retry = await _retry_row(poller_database_url, token_id, new_id)
    assert retry is not None and retry["outcome"] == "found" and retry["attempts"] >= 1
    assert (await sim.stats()).get(FORM_404, 0) >= 1
    stored = (await stored_orders(poller_database_url, token_id))[new_id]
    assert stored["superseded_at"] is None and stored["missing_upstream_since"] is None


async def test_a_walk_tells_purged_forms_from_merged_ones_with_evidence(
    sim: Sim, db: AsyncEngine, kafka_settings: KafkaSettings, poller_database_url: str, worker: Worker
) -> None:
    settings = make_settings(
        sim,
        kafka_settings,
        poller_database_url,
        poller={**QUICK_RETRIES, "missing_confirm_seconds": 1.0, "missing_confirm_attempts": 2},
    )
    seller, ids, token_id = await _linked(
        sim, db, settings, poller_database_url, count=30, days_back=300, events=False
    )
    truth = (await sim.control("GET", f"/sellers/{seller}/truth"))["orders"]
    bought = {o["id"]: max(i["boughtAt"] for i in o["form"]["lineItems"]) for o in truth}
    purged = ids[0]
    assert (await sim.control("POST", "/purge", {"before": bought[ids[1]]}))["orders"] == 1
    # A merge whose events are lost: only a walk can see that its forms left the list.
    await sim.control("PUT", "/faults", {"drop_events": 1.0})
    merged = ids[10:12]
    successor = (await sim.control("POST", f"/sellers/{seller}/merge", {"ids": merged}))["id"]
    async with db.begin() as conn:
        await conn.execute(
            text(
                "UPDATE user_tokens SET resync_requested_at = :now, resync_source = 'allegro',"
                " resync_since = :since WHERE id = :id"
            ),
            {"now": datetime.now(UTC), "since": datetime.now(UTC) - timedelta(days=364), "id": token_id},
        )

    async def decided() -> bool:
        rows = [await _retry_row(poller_database_url, token_id, f) for f in (purged, *merged)]
        return all(row is not None and row["outcome"] in ("merged", "missing") for row in rows)

    async with running_poller(settings):
        await wait_for(decided, within=90, what="the vanished forms decided", every=0.5)

        async def marked() -> bool:
            stored = await stored_orders(poller_database_url, token_id)
            return stored[purged]["missing_upstream_since"] is not None and all(
                stored[f]["superseded_by"] == successor for f in merged
            )

        await wait_for(marked, within=60, what="the marks stored", every=0.5)
    stored = await stored_orders(poller_database_url, token_id)
    assert stored[purged]["superseded_at"] is None, "a purged form is not labelled merged"
    assert stored[successor]["superseded_at"] is None
    gone = await _retry_row(poller_database_url, token_id, purged)
    assert gone is not None and gone["outcome"] == "missing" and gone["successor"] is None
    evidence = orjson.loads(gone["evidence"])
    assert evidence["not_found"] >= 2 and "successor_search" in evidence
    for form_id in merged:
        row = await _retry_row(poller_database_url, token_id, form_id)
        assert row is not None and row["outcome"] == "merged" and row["successor"] == successor
        assert orjson.loads(row["evidence"])["shared_line_item_ids"]
    # Every other order is untouched.
    untouched = set(ids) - {purged, *merged}
    assert all(
        stored[f]["superseded_at"] is None and stored[f]["missing_upstream_since"] is None for f in untouched
    )


async def test_a_reconcile_marks_old_orders_purged_upstream_missing_and_keeps_the_rest(
    sim: Sim, db: AsyncEngine, kafka_settings: KafkaSettings, poller_database_url: str, worker: Worker
) -> None:
    settings = make_settings(sim, kafka_settings, poller_database_url)
    seller, ids, token_id = await _linked(
        sim, db, settings, poller_database_url, count=40, days_back=300, events=False
    )
    truth = (await sim.control("GET", f"/sellers/{seller}/truth"))["orders"]
    bought = {o["id"]: max(i["boughtAt"] for i in o["form"]["lineItems"]) for o in truth}
    # Allegro purges the 5 oldest: too old for events, gone from the list.
    assert (await sim.control("POST", "/purge", {"before": bought[ids[5]]}))["orders"] == 5
    horizon = datetime.fromisoformat(bought[ids[20]])
    async with db.begin() as conn:
        await conn.execute(
            text("UPDATE user_tokens SET last_reconcile_at = :t WHERE id = :id"),
            {"t": datetime.now(UTC) - timedelta(days=2), "id": token_id},
        )
    # The poller's horizon sits between the 20th and 21st order: the older 20 are past it.
    days = (datetime.now(UTC) - horizon).days
    quick = make_settings(
        sim,
        kafka_settings,
        poller_database_url,
        poller={
            **QUICK_RETRIES,
            "missing_confirm_seconds": 1.0,
            "missing_confirm_attempts": 2,
            "backfill_days": days,
        },
    )

    async def purged_marked() -> bool:
        stored = await stored_orders(poller_database_url, token_id)
        return all(stored[f]["missing_upstream_since"] is not None for f in ids[:5])

    async with running_poller(quick):
        await wait_for(purged_marked, within=60, what="the purged orders marked missing upstream", every=0.5)
    stored = await stored_orders(poller_database_url, token_id)
    assert all(stored[f]["superseded_at"] is None for f in ids[:5])
    assert all(stored[f]["missing_upstream_since"] is None for f in ids[5:])
    for form_id in ids[:5]:
        row = await _retry_row(poller_database_url, token_id, form_id)
        assert row is not None and row["outcome"] == "missing" and row["source"] == "reconcile"
    # The still-visible old orders answered their confirming GET.
    lingering = await _retry_row(poller_database_url, token_id, ids[10])
    assert lingering is not None and lingering["outcome"] == "found"


async def test_an_event_for_a_form_merged_away_is_decided_merged_into_the_form_sharing_its_items(
    sim: Sim, db: AsyncEngine, kafka_settings: KafkaSettings, poller_database_url: str, worker: Worker
) -> None:
    settings = make_settings(
        sim,
        kafka_settings,
        poller_database_url,
        poller={**QUICK_RETRIES, "missing_confirm_seconds": 1.0, "missing_confirm_attempts": 3},
    )
    seller, ids, token_id = await _linked(
        sim, db, settings, poller_database_url, count=10, days_back=20, events=True
    )
    first, second = ids[-2:]
    # The journal reads a change of `first` only after `first` was merged away: its GET answers 404.
    await sim.control("POST", f"/sellers/{seller}/orders/{first}/mutate", {"buyer_edit": True})
    successor = (await sim.control("POST", f"/sellers/{seller}/merge", {"ids": [first, second]}))["id"]
    async with running_poller(settings):

        async def decided() -> bool:
            row = await _retry_row(poller_database_url, token_id, first)
            return row is not None and row["outcome"] is not None

        await wait_for(decided, within=60, what="the merged form decided", every=0.3)
    row = await _retry_row(poller_database_url, token_id, first)
    assert row is not None and row["outcome"] == "merged" and row["successor"] == successor
    evidence = orjson.loads(row["evidence"])
    assert evidence["not_found"] >= 3 and evidence["shared_line_item_ids"]

    async def linked() -> bool:
        stored = await stored_orders(poller_database_url, token_id)
        return bool(stored[first]["superseded_by"] == successor)

    await wait_for(linked, within=30, what="the merged form linked to its successor")
    stored = await stored_orders(poller_database_url, token_id)
    assert stored[first]["missing_upstream_since"] is None
    assert stored[successor]["superseded_at"] is None
