"""`python -m bench.requests --orders 1000`: Allegro requests to sync N new orders through the journal.

Runs the simulator on a free loopback port, links one seller through the device flow with the poller's
own link completion, bootstraps the cursor, then creates N new orders and runs one journal sync with
the poller's code. Requests are counted by the simulator. The baseline is the naive way measured on the
same journal: every event page plus one `GET /order/checkout-forms/{id}` per distinct changed form
(1,001 for 1,000 orders on one page of events). Uses Kafka topics and a token row of its own, removed
afterwards. Last stdout line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from datetime import UTC, datetime

import httpx
import orjson
import uvicorn
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import text

from allegro_api import AllegroAuth
from core.crypto import KeyRing
from core.settings import Settings, get_settings
from core.topics import ensure_topics, topic_specs
from db.queries import token_sync
from producers.access import TokenAccess
from producers.app import sync_context
from producers.linking import complete_link
from producers.metrics import PollerMetrics
from producers.sync import TokenSync
from simulator.app import create_app
from simulator.config import SimulatorConfig
from tests.environments import free_port


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


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
        }
    )
    settings = Settings(
        kafka=kafka.model_dump(),
        database={"url": base.database.url.get_secret_value()},
        allegro={"auth_url": url, "api_url": url, "client_id": client_id},
        crypto={"keys": base.crypto.keys.get_secret_value()},
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    specs = [s for s in topic_specs(kafka) if s.name in (kafka.snapshots_topic, kafka.sync_runs_topic)]
    await ensure_topics(admin, specs, kafka.replication_factor)
    token_id = uuid.uuid4()
    try:
        async with httpx.AsyncClient() as http, sync_context(settings, PollerMetrics.create()) as context:
            sim = f"{url}/_sim"
            seller = (await http.post(f"{sim}/sellers", json={})).json()["seller_id"]
            auth = AllegroAuth(
                http, auth_url=url, client_id=client_id, client_secret=SimulatorConfig().client_secret
            )
            device = await auth.start_device_flow()
            await http.post(
                f"{sim}/device/approve", json={"user_code": device.user_code, "seller_id": seller}
            )
            keyring = KeyRing.parse(settings.crypto.keys.get_secret_value())
            async with context.sessions() as session, session.begin():
                await session.execute(
                    text(
                        "INSERT INTO user_tokens (id, user_id, status, device_code, device_interval)"
                        " VALUES (:id, :user, 'pending', :code, 0)"
                    ),
                    {"id": token_id, "user": f"bench-{suffix}", "code": keyring.seal(device.device_code)},
                )
            assert await complete_link(context.access, token_id) == "active"  # noqa: S101
            async with context.sessions() as session:
                state = await token_sync.load_token(session, token_id)
            assert state is not None and state.access_token is not None  # noqa: S101
            token = TokenAccess(
                context.access, token_id, keyring.open(state.access_token), state.access_expires_at
            )
            sync = TokenSync(context, state, token)
            await sync.bootstrap(reason=None)
            _progress(f"creating {orders} new orders")
            await http.post(
                f"{sim}/sellers/{seller}/orders", json={"count": orders, "days_back": 0.001}, timeout=120
            )
            await http.post(f"{sim}/stats/reset")
            async with context.sessions() as session:
                state = await token_sync.load_token(session, token_id)
            assert state is not None  # noqa: S101
            _progress("running one journal sync")
            await sync.journal(state)
            stats = (await http.get(f"{sim}/stats")).json()["requests"]
    finally:
        async with sync_context(settings, PollerMetrics.create()) as context:
            async with context.sessions() as session, session.begin():
                await session.execute(text("DELETE FROM user_tokens WHERE id = :id"), {"id": token_id})
        await admin.delete_topics([kafka.snapshots_topic, kafka.sync_runs_topic])
        await admin.close()
        server.should_exit = True
        await serving
    made = sum(n for key, n in stats.items() if key.startswith("GET /order/"))
    event_pages = sum(n for key, n in stats.items() if key.startswith("GET /order/events"))
    naive = event_pages + orders
    return {
        "benchmark": "requests",
        "orders": orders,
        "requests": made,
        "requests_by_endpoint": stats,
        "baseline_naive_requests": naive,
        "ratio_naive_over_ours": round(naive / made, 2) if made else None,
        "target_requests": 25,
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
