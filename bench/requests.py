"""`python -m bench.requests --orders 1000`: Allegro requests per N orders, without and with documents.

Runs the simulator on a free loopback port and links two sellers through the device flow with the
poller's own link completion. Each seller gets the same life, one journal sync per step, with the
poller's code:
1. N new orders are bought;
2. the seller sends every one (fulfilment SENT): its simulated parcel appears;
3. every parcel is picked up (PICKED_UP): its tracking ends DELIVERED.
The first seller's poller keeps only forms (`POLLER__RECORDS_ENABLED=false`), the second also reads
shipments, invoices and tracking (`producers.records`). A step is one journal sync, then more while
records are due (a journal sync reads a bounded number of them); between steps one tracking interval
passes (every followed waybill is due again once). Requests are
counted by the simulator, per step and endpoint. The baseline for forms is the naive way on the same
journal: every event page plus one `GET /order/checkout-forms/{id}` per distinct changed form (1,001 for
1,000 orders on one page of events). Uses Kafka topics and token rows of its own, removed afterwards.
Last stdout line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import uvicorn
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import text

from allegro_api import AllegroAuth
from core.crypto import KeyRing
from core.settings import Settings, get_settings
from core.topics import ensure_topics, topic_specs
from db.queries import record_checks, token_sync
from producers.access import TokenAccess
from producers.app import sync_context
from producers.linking import complete_link
from producers.metrics import PollerMetrics
from producers.sync import SyncContext, TokenSync
from simulator.app import create_app
from simulator.config import SimulatorConfig
from tests.environments import free_port

STEPS = ("new", "sent", "delivered")
MAX_SYNCS_PER_STEP = 200


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def _link(
    http: httpx.AsyncClient, context: SyncContext, url: str, client_id: str, keyring: KeyRing
) -> tuple[str, uuid.UUID, TokenAccess]:
    """A new seller linked through the device flow: (seller id, token id, its session)."""
    sim = f"{url}/_sim"
    seller = (await http.post(f"{sim}/sellers", json={})).json()["seller_id"]
    auth = AllegroAuth(http, auth_url=url, client_id=client_id, client_secret=SimulatorConfig().client_secret)
    device = await auth.start_device_flow()
    await http.post(f"{sim}/device/approve", json={"user_code": device.user_code, "seller_id": seller})
    token_id = uuid.uuid4()
    async with context.sessions() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO user_tokens (id, user_id, status, device_code, device_interval)"
                " VALUES (:id, :user, 'pending', :code, 0)"
            ),
            {"id": token_id, "user": f"bench-{token_id.hex[:8]}", "code": keyring.seal(device.device_code)},
        )
    assert await complete_link(context.access, token_id) == "active"  # noqa: S101
    async with context.sessions() as session:
        state = await token_sync.load_token(session, token_id)
    assert state is not None and state.access_token is not None  # noqa: S101
    return seller, token_id, TokenAccess(context.access, token_id, keyring.open(state.access_token), None)


async def _life(
    http: httpx.AsyncClient,
    context: SyncContext,
    url: str,
    seller: str,
    token: TokenAccess,
    orders: int,
) -> dict[str, dict[str, int]]:
    """The seller's three steps; requests by endpoint per step."""
    sim = f"{url}/_sim"
    token_id = token.token_id
    async with context.sessions() as session:
        state = await token_sync.load_token(session, token_id)
    assert state is not None  # noqa: S101
    sync = TokenSync(context, state, token)
    await sync.bootstrap(reason=None)
    per_step: dict[str, dict[str, int]] = {}
    ids: list[str] = []
    for step in STEPS:
        if step == "new":
            created = await http.post(
                f"{sim}/sellers/{seller}/orders", json={"count": orders, "days_back": 0.001}, timeout=300
            )
            ids = created.json()["ids"]
        else:
            status = "SENT" if step == "sent" else "PICKED_UP"
            for form_id in ids:
                changed = await http.post(
                    f"{sim}/sellers/{seller}/orders/{form_id}/mutate", json={"fulfillment_status": status}
                )
                changed.raise_for_status()
        await http.post(f"{sim}/stats/reset")
        # A tracking interval passes between steps: every followed waybill is due again.
        async with context.sessions() as session, session.begin():
            await session.execute(
                text("UPDATE pending_waybills SET next_at = now() WHERE token_id = :t"), {"t": token_id}
            )
        # One journal sync, then more while records are due (the poller runs one every few seconds).
        for _ in range(MAX_SYNCS_PER_STEP):
            async with context.sessions() as session:
                state = await token_sync.load_token(session, token_id)
                assert state is not None  # noqa: S101
                await sync.journal(state)
                due = await record_checks.next_due(session, token_id)
            if due is None or due > datetime.now(UTC):
                break
        per_step[step] = (await http.get(f"{sim}/stats")).json()["requests"]
        _progress(f"  {step}: {_allegro(per_step[step])} requests")
    return per_step


DOCUMENT_PATHS = ("GET /order/checkout-forms/{id}/", "GET /order/carriers")


def _allegro(stats: dict[str, int]) -> int:
    """Requests to Allegro's order API (the budget's requests; token calls are not counted there)."""
    return sum(n for key, n in stats.items() if key.startswith("GET /order/"))


def _documents(stats: dict[str, int]) -> int:
    """Requests for shipments, invoices and tracking."""
    return sum(n for key, n in stats.items() if key.startswith(DOCUMENT_PATHS))


async def _measure(orders: int) -> dict[str, object]:
    base = get_settings()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    client_id = f"bench-{uuid.uuid4().hex[:8]}"
    app = create_app(SimulatorConfig(client_id=client_id, public_url=url, device_poll_interval=0))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes only this flag
        await asyncio.sleep(0.02)
    suffix = uuid.uuid4().hex[:8]
    kafka = base.kafka.model_copy(
        update={
            "snapshots_topic": f"bench{suffix}.order-snapshots",
            "sync_runs_topic": f"bench{suffix}.sync-runs",
            "tokens_topic": f"bench{suffix}.poller-tokens",
            "records_topic": f"bench{suffix}.order-records",
        }
    )
    keyring = KeyRing.parse(base.crypto.keys.get_secret_value())
    settings = Settings(
        kafka=kafka.model_dump(),
        database={"url": base.database.url.get_secret_value()},
        allegro={"auth_url": url, "api_url": url, "client_id": client_id},
        crypto={"keys": base.crypto.keys.get_secret_value()},
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    topics = (kafka.snapshots_topic, kafka.sync_runs_topic, kafka.records_topic)
    await ensure_topics(admin, [s for s in topic_specs(kafka) if s.name in topics], kafka.replication_factor)
    tokens: list[uuid.UUID] = []
    results: dict[str, dict[str, dict[str, int]]] = {}
    try:
        async with httpx.AsyncClient() as http, sync_context(settings, PollerMetrics.create()) as context:
            forms_only = dataclasses.replace(
                context, settings=context.settings.model_copy(update={"records_enabled": False})
            )
            for name, chosen in (("without_documents", forms_only), ("with_documents", context)):
                _progress(f"{name}: {orders} orders bought, sent, delivered")
                seller, token_id, token = await _link(http, chosen, url, client_id, keyring)
                tokens.append(token_id)
                results[name] = await _life(http, chosen, url, seller, token, orders)
    finally:
        async with sync_context(settings, PollerMetrics.create()) as context:
            async with context.sessions() as session, session.begin():
                for table, column in (
                    ("order_record_checks", "token_id"),
                    ("pending_waybills", "token_id"),
                    ("user_tokens", "id"),
                ):
                    await session.execute(
                        text(f"DELETE FROM {table} WHERE {column} = ANY(:ids)"),  # noqa: S608 - constants
                        {"ids": tokens},
                    )
        await admin.delete_topics(list(topics))
        await admin.close()
        server.should_exit = True
        await serving
    return _report(orders, results)


def _report(orders: int, results: dict[str, dict[str, dict[str, int]]]) -> dict[str, object]:
    per_thousand = 1000 / orders
    summary: dict[str, Any] = {}
    for name, steps in results.items():
        by_step = {step: _allegro(stats) for step, stats in steps.items()}
        endpoints: dict[str, int] = {}
        for stats in steps.values():
            for key, count in stats.items():
                if key.startswith("GET /order/"):
                    endpoints[key] = endpoints.get(key, 0) + count
        total = sum(by_step.values())
        documents = _documents(endpoints)
        summary[name] = {
            "requests": total,
            "per_1000_orders": round(total * per_thousand, 1),
            "document_requests_per_1000_orders": round(documents * per_thousand, 1),
            "by_step": by_step,
            "by_endpoint": endpoints,
        }
    new_step = results["without_documents"]["new"]
    event_pages = sum(n for key, n in new_step.items() if key.startswith("GET /order/events"))
    return {
        "benchmark": "requests",
        "orders": orders,
        "steps": list(STEPS),
        **summary,
        "baseline_naive_requests_new_orders": event_pages + orders,
        "measured_at": datetime.now(UTC).isoformat(),
    }


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its JSON result as the last line."""
    parser = argparse.ArgumentParser(prog="python -m bench.requests", description=__doc__)
    parser.add_argument("--orders", type=int, default=1000)
    args = parser.parse_args(argv)
    result = asyncio.run(_measure(args.orders))
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
