"""Chaos: the whole service as real processes (two pollers, two workers, the API) on a Kafka node and a
PostgreSQL cluster of the test's own, while Allegro purges and merges during a backfill and answers with
faults, and the machine kills processes (SIGKILL), restarts the broker and stops PostgreSQL.

Afterwards: every order the simulator still shows is stored at its current revision with exactly its
content, every revision published to Kafka is stored, no process exited by itself, and a replay of one
seller from Kafka rebuilds its rows to the same checksum. The figures are printed (`-s`) and written to
`chaos-figures.json` in the test's temporary folder.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from cli.processes import Child, ProcessGroup, tail, wait_for_port
from core.contract import decode_snapshot
from core.settings import KafkaSettings
from core.topics import bootstrap
from db.engine import asyncpg_dsn
from tests.e2e.pipeline import token_checksum
from tests.environments import free_port, service_env
from tests.private_services import PrivateService, migrated_postgres

pytestmark = pytest.mark.slow

USER = "chaos-user"
API_KEY = "chaos-api-key"
# Bounds: the whole test must end on its own, whatever happens.
CONVERGE_SECONDS = 240


@dataclass
class Fleet:
    """The service's processes; a killed one is replaced and remembered."""

    group: ProcessGroup
    env: dict[str, str]
    workdir: Path
    killed: list[str] = field(default_factory=list)
    live: dict[str, Child] = field(default_factory=dict)

    def start(self, name: str) -> None:
        """Start (or restart) one named process: simulator, poller-N, worker-N, api."""
        env = dict(self.env)
        if name.startswith("worker"):
            # one consumer group (the app id), a state folder and metrics port per worker
            env["PROCESSOR__DATA_DIR"] = str(self.workdir / name)
            env["PROCESSOR__METRICS_PORT"] = str(free_port())
            args = ["processors", "worker"]
        elif name.startswith("poller"):
            args = ["producers"]
        else:
            args = ["api"]
        self.live[name] = self.group.start(f"{name}-{len(self.group.children)}", args, env)

    def kill(self, name: str) -> None:
        """SIGKILL the whole process (no clean stop), then start a new one in its place."""
        child = self.live[name]
        os.killpg(child.process.pid, signal.SIGKILL)
        child.process.wait()
        self.killed.append(child.name)
        self.start(name)

    def exited(self) -> list[str]:
        """Processes that ended by themselves (the ones killed on purpose are not counted)."""
        return [c.name for c in self.group.dead() if c.name not in self.killed]

    def logs(self) -> str:
        """Tails of every process's log, for failure messages."""
        return "\n".join(f"--- {c.name}\n{tail(c.log_path, 25)}" for c in self.group.children)


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[PrivateService]:
    with migrated_postgres(tmp_path) as service:
        yield service


@pytest.fixture
def private_kafka(tmp_path: Path) -> Iterator[PrivateService]:
    service = PrivateService(tmp_path, "kafka")
    try:
        service.start()
        yield service
    finally:
        service.remove()


def _eventually(check: Any, timeout: float, what: str, fleet: Fleet) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        exited = fleet.exited()
        if exited:
            raise AssertionError(f"{exited} exited while waiting for {what}\n{fleet.logs()}")
        last = check()
        if last:
            return last
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})\n{fleet.logs()}")


def _link(api: httpx.Client, sim: httpx.Client, seller_id: str, fleet: Fleet) -> str:
    started = api.post(f"/v1/users/{USER}/tokens")
    assert started.status_code == 201, started.text
    body = started.json()
    sim.post(
        "/_sim/device/approve", json={"user_code": body["user_code"], "seller_id": seller_id}
    ).raise_for_status()
    token_id = str(body["token_id"])

    def active() -> bool:
        answer = api.get(f"/v1/users/{USER}/tokens/{token_id}")
        return answer.status_code == 200 and answer.json()["status"] == "active"

    _eventually(active, 90, f"the link of {seller_id}", fleet)
    return token_id


def _truth(sim: httpx.Client, seller_id: str) -> list[dict[str, Any]]:
    answer = sim.get(f"/_sim/sellers/{seller_id}/truth")
    answer.raise_for_status()
    orders: list[dict[str, Any]] = answer.json()["orders"]
    return orders


async def _stored(database_url: str, token_id: str) -> dict[str, dict[str, Any]]:
    """Each stored order of the token: revision, marks, the form as the API serves it, its revisions."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await conn.fetch(
            "SELECT checkout_form_id, revision, superseded_by, missing_upstream_since,"
            " (SELECT array_agg(r.revision) FROM order_revisions r WHERE r.token_id = o.token_id"
            "  AND r.checkout_form_id = o.checkout_form_id) AS revisions"
            " FROM orders o WHERE token_id = $1",
            uuid.UUID(token_id),
        )
    finally:
        await conn.close()
    return {row["checkout_form_id"]: dict(row) for row in rows}


def _differences(
    sim: httpx.Client, api: httpx.Client, database_url: str, seller_id: str, token_id: str
) -> list[str]:
    """How the backup differs from what Allegro shows now (empty when equal)."""
    stored = asyncio.run(_stored(database_url, token_id))
    found = []
    for order in _truth(sim, seller_id):
        row = stored.get(order["id"])
        if order["merged_into"]:
            if row is not None and row["superseded_by"] != order["merged_into"]:
                found.append(
                    f"{order['id']} merged into {order['merged_into']}, marked {row['superseded_by']}"
                )
        elif order["purged"]:
            continue  # gone from Allegro: kept if it was ever seen (checked by `_never_deleted`)
        elif row is None or row["revision"] != order["revision"]:
            found.append(f"{order['id']} at {order['revision']}, stored {row and row['revision']}")
    return found


def _content_differences(
    sim: httpx.Client, api: httpx.Client, seller_id: str, token_id: str, sample: int
) -> list[str]:
    """Forms whose stored document (as the API serves it) differs from the simulator's, of a sample."""
    found = []
    current = [o for o in _truth(sim, seller_id) if not o["merged_into"] and not o["purged"]]
    for order in current[:sample]:
        answer = api.get(f"/v1/users/{USER}/orders/{order['id']}", params={"token_id": token_id})
        if answer.status_code != 200 or answer.json()["order"] != order["form"]:
            found.append(order["id"])
    return found


async def _published_revisions(kafka: KafkaSettings) -> set[tuple[str, str, str]]:
    """(token id, form id, revision) of every form snapshot on the snapshots topic."""
    consumer = AIOKafkaConsumer(
        kafka.snapshots_topic,
        bootstrap_servers=kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: set[tuple[str, str, str]] = set()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=3000, max_records=5000)
            if not batch:
                return seen
            for records in batch.values():
                for record in records:
                    envelope = decode_snapshot(record.value)
                    if envelope.gone is None and envelope.revision:
                        seen.add((str(envelope.token_id), envelope.checkout_form_id, envelope.revision))
    finally:
        await consumer.stop()


async def _stored_revisions(database_url: str) -> set[tuple[str, str, str]]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await conn.fetch("SELECT token_id, checkout_form_id, revision FROM order_revisions")
    finally:
        await conn.close()
    return {(str(r["token_id"]), r["checkout_form_id"], r["revision"]) for r in rows}


def test_no_order_lost_through_kills_outages_purges_and_merges(
    private_postgres: PrivateService, private_kafka: PrivateService, tmp_path: Path
) -> None:
    started = time.monotonic()
    database_url = private_postgres.database_url
    kafka = KafkaSettings(bootstrap_servers=private_kafka.bootstrap, partitions=4)
    asyncio.run(bootstrap(kafka))

    sim_port, api_port = free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    env = {
        **service_env(kafka, database_url, sim_url, api_port, tmp_path),
        "API__KEYS": API_KEY,
        "ENVIRONMENT": "development",
        # reconcile often, so what dropped events hid is found within the test
        "POLLER__RECONCILE_INTERVAL_SECONDS": "20",
    }
    group = ProcessGroup(tmp_path / "logs")
    fleet = Fleet(group=group, env=env, workdir=tmp_path)
    simulator = group.start(
        "simulator",
        [
            "simulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(sim_port),
            "--seed",
            "11",
            "--device-interval",
            "0",
        ],
        env,
    )
    sim = httpx.Client(base_url=sim_url, timeout=60)
    api = httpx.Client(
        base_url=f"http://127.0.0.1:{api_port}", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60
    )
    try:
        wait_for_port("127.0.0.1", sim_port, 30, simulator)
        for name in ("worker-1", "worker-2", "poller-1", "poller-2", "api"):
            fleet.start(name)
        wait_for_port("127.0.0.1", api_port, 60, fleet.live["api"])

        big = sim.post("/_sim/sellers", json={"login": "chaos-big"}).json()["seller_id"]
        small = sim.post("/_sim/sellers", json={"login": "chaos-small"}).json()["seller_id"]
        sim.post(f"/_sim/sellers/{big}/orders", json={"count": 2500, "days_back": 330}).raise_for_status()
        sim.post(f"/_sim/sellers/{small}/orders", json={"count": 300, "days_back": 50}).raise_for_status()
        sim.put(
            "/_sim/faults",
            json={
                "duplicate_events": 0.05,
                "reorder_events": 0.05,
                "drop_events": 0.02,
                "error_rate_5xx": 0.03,
            },
        ).raise_for_status()
        tokens = {big: _link(api, sim, big, fleet), small: _link(api, sim, small, fleet)}
        for seller in tokens:
            sim.post(
                f"/_sim/sellers/{seller}/trickle", json={"new_per_s": 1.0, "changes_per_s": 1.0}
            ).raise_for_status()

        # Allegro's daily purge and a merge of the oldest, while the big seller's backfill runs.
        oldest = sorted(_truth(sim, big), key=lambda o: o["form"]["lineItems"][0]["boughtAt"])
        cutoff = datetime.fromisoformat(oldest[20]["form"]["lineItems"][0]["boughtAt"])
        purged = sim.post("/_sim/purge", json={"before": cutoff.astimezone(UTC).isoformat()}).json()
        sim.post(
            f"/_sim/sellers/{big}/merge", json={"ids": [o["id"] for o in oldest[25:27]]}
        ).raise_for_status()

        # The machine: kills, a broker restart, a PostgreSQL stop.
        time.sleep(5)
        fleet.kill("poller-1")
        fleet.kill("worker-1")
        time.sleep(5)
        private_kafka.stop()
        time.sleep(10)
        private_kafka.start()
        time.sleep(5)
        private_postgres.stop()
        time.sleep(10)
        private_postgres.start()
        time.sleep(5)
        fleet.kill("poller-2")
        fleet.kill("worker-2")
        sim.post(f"/_sim/sellers/{big}/mutate-random", json={"count": 50}).raise_for_status()
        time.sleep(10)

        # Quiet: no more faults or trickle; everything must converge by itself.
        for seller in tokens:
            sim.delete(f"/_sim/sellers/{seller}/trickle").raise_for_status()
        sim.put(
            "/_sim/faults",
            json={"duplicate_events": 0, "reorder_events": 0, "drop_events": 0, "error_rate_5xx": 0},
        ).raise_for_status()
        for seller, token_id in tokens.items():
            _eventually(
                lambda s=seller, t=token_id: not _differences(sim, api, database_url, s, t),
                CONVERGE_SECONDS,
                f"seller {seller} to equal the simulator",
                fleet,
            )

        content = {s: _content_differences(sim, api, s, t, sample=400) for s, t in tokens.items()}
        published = asyncio.run(_published_revisions(kafka))
        missing_revisions = published - asyncio.run(_stored_revisions(database_url))
        exited = fleet.exited()

        # Rebuild the big seller from Kafka: drop its rows, replay, compare checksums.
        token_id = tokens[big]
        before = token_checksum(database_url, token_id)
        replayed = subprocess.run(
            [sys.executable, "-m", "cli", "replay", "--token", token_id, "--drop-first"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        after = token_checksum(database_url, token_id)

        expected = {
            s: [o for o in _truth(sim, s) if not o["merged_into"] and not o["purged"]] for s in tokens
        }
        stored = {s: asyncio.run(_stored(database_url, t)) for s, t in tokens.items()}
        figures = {
            "orders_expected": sum(len(v) for v in expected.values()),
            "orders_stored": sum(len(v) for v in stored.values()),
            "lost": sum(1 for s, orders in expected.items() for o in orders if o["id"] not in stored[s]),
            "content_differences": sum(len(v) for v in content.values()),
            "revisions_published": len(published),
            "missing_revisions": len(missing_revisions),
            "purged_by_allegro": purged["orders"],
            "processes_killed": len(fleet.killed),
            "process_exits": len(exited),
            "replay_equal": before == after,
            "duration_seconds": round(time.monotonic() - started, 1),
        }
        (tmp_path / "chaos-figures.json").write_text(json.dumps(figures, indent=2))
        print(f"chaos figures: {json.dumps(figures)}")  # noqa: T201 - the test's report
        assert figures["lost"] == 0, figures
        assert figures["content_differences"] == 0, (figures, content)
        assert not missing_revisions, sorted(missing_revisions)[:10]
        assert not exited, (exited, fleet.logs())
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        assert before == after, replayed.stdout
    finally:
        sim.close()
        api.close()
        group.stop_all()
