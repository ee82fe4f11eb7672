"""End to end: simulator → poller → Kafka → processor → PostgreSQL → API, each a separate OS process.

PostgreSQL must end equal to the simulator's ground truth (merged orders included), orders purged
upstream must stay, and a replay from Kafka must rebuild a token's rows exactly.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from core.settings import KafkaSettings
from db.engine import asyncpg_dsn
from tests.e2e.pipeline import Pipeline, eventually, start_pipeline, token_checksum

pytestmark = pytest.mark.slow

USER = "e2e-user"


@pytest.fixture
def pipeline(kafka_settings: KafkaSettings, database_url: str, tmp_path: Path) -> Iterator[Pipeline]:
    running = start_pipeline(kafka_settings, database_url, tmp_path)
    try:
        yield running
    finally:
        running.stop()


async def _stored(database_url: str, token_id: str) -> dict[str, dict[str, Any]]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await conn.fetch(
            "SELECT checkout_form_id, revision, superseded_at, superseded_by, missing_upstream_since,"
            " (SELECT array_agg(r.revision) FROM order_revisions r WHERE r.token_id = o.token_id"
            "  AND r.checkout_form_id = o.checkout_form_id) AS revisions"
            " FROM orders o WHERE token_id = $1",
            uuid.UUID(token_id),
        )
    finally:
        await conn.close()
    return {row["checkout_form_id"]: dict(row) for row in rows}


def _truth(pipeline: Pipeline, seller_id: str) -> list[dict[str, Any]]:
    response = pipeline.simulator.get(f"/_sim/sellers/{seller_id}/truth")
    response.raise_for_status()
    orders: list[dict[str, Any]] = response.json()["orders"]
    return orders


def _mismatches(pipeline: Pipeline, database_url: str, seller_id: str, token_id: str) -> list[str]:
    """How PostgreSQL differs from the simulator's truth (empty when equal)."""
    stored = asyncio.run(_stored(database_url, token_id))
    differences = []
    for order in _truth(pipeline, seller_id):
        row = stored.get(order["id"])
        if order.get("merged_into"):
            # Merged away: kept, marked superseded and linked to its successor.
            if row is None or row["superseded_by"] != order["merged_into"]:
                got = row and (row["superseded_at"], row["superseded_by"])
                differences.append(f"{order['id']} merged into {order['merged_into']}, stored {got}")
        elif row is None or row["revision"] != order["revision"]:
            differences.append(f"{order['id']} at {order['revision']}, stored {row and row['revision']}")
    return differences


def _content_mismatches(pipeline: Pipeline, seller_id: str, token_id: str) -> list[str]:
    """Orders whose document, as the API serves it, is not the form the simulator serves now."""
    differing = []
    for order in _truth(pipeline, seller_id):
        if order.get("merged_into") or order.get("purged"):
            continue
        answer = pipeline.api.get(f"/v1/users/{USER}/orders/{order['id']}", params={"token_id": token_id})
        if answer.status_code != 200 or answer.json()["order"] != order["form"]:
            differing.append(order["id"])
    return differing


def _converge(pipeline: Pipeline, database_url: str, seller_id: str, token_id: str, what: str) -> None:
    try:
        eventually(lambda: not _mismatches(pipeline, database_url, seller_id, token_id), 120, what, pipeline)
    except AssertionError as exc:
        left = _mismatches(pipeline, database_url, seller_id, token_id)
        raise AssertionError(f"{len(left)} differences, e.g. {left[:5]}\n{exc}") from None


def _link(pipeline: Pipeline, seller_id: str) -> str:
    started = pipeline.api.post(f"/v1/users/{USER}/tokens")
    assert started.status_code == 201, started.text
    body = started.json()
    token_id = str(body["token_id"])
    approved = pipeline.simulator.post(
        "/_sim/device/approve", json={"user_code": body["user_code"], "seller_id": seller_id}
    )
    approved.raise_for_status()

    def active() -> bool:
        token = pipeline.api.get(f"/v1/users/{USER}/tokens/{token_id}").json()
        return bool(token["status"] == "active")

    eventually(active, 60, "the link to become active", pipeline)
    return token_id


def test_pipeline_ends_equal_to_the_simulator_truth_and_replay_rebuilds_it(
    pipeline: Pipeline, database_url: str
) -> None:
    sim = pipeline.simulator
    seller_id = sim.post("/_sim/sellers", json={"login": "e2e-seller"}).json()["seller_id"]
    sim.post(f"/_sim/sellers/{seller_id}/orders", json={"count": 300, "days_back": 330}).raise_for_status()
    token_id = _link(pipeline, seller_id)

    _converge(pipeline, database_url, seller_id, token_id, "the backfill")

    # Changes after the backfill travel through the journal: new orders, edits, a merge.
    sim.post(f"/_sim/sellers/{seller_id}/orders", json={"count": 40, "days_back": 0}).raise_for_status()
    sim.post(f"/_sim/sellers/{seller_id}/mutate-random", json={"count": 30}).raise_for_status()
    _converge(pipeline, database_url, seller_id, token_id, "the journal")
    # A merge of two stored orders (a form merged away before we ever fetched it cannot be kept).
    recent = sorted(_truth(pipeline, seller_id), key=lambda o: o["form"]["updatedAt"])[-2:]
    merged = sim.post(f"/_sim/sellers/{seller_id}/merge", json={"ids": [o["id"] for o in recent]})
    merged.raise_for_status()
    _converge(pipeline, database_url, seller_id, token_id, "the merge")
    # Content, not just the revision label: each stored form is the simulator's, field for field.
    differing = _content_mismatches(pipeline, seller_id, token_id)
    assert not differing, f"{len(differing)} stored forms differ from the simulator's, e.g. {differing[:3]}"

    # Allegro forgets old orders; we do not.
    oldest = min(_truth(pipeline, seller_id), key=lambda o: o["form"]["lineItems"][0]["boughtAt"])
    cutoff = datetime.fromisoformat(oldest["form"]["lineItems"][0]["boughtAt"]) + timedelta(days=30)
    purged = sim.post("/_sim/purge", json={"before": cutoff.astimezone(UTC).isoformat()}).json()
    assert purged["orders"] > 0
    stored = asyncio.run(_stored(database_url, token_id))
    assert oldest["id"] in stored

    # Every stored order is readable through the API, with its revisions.
    listed: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": "500", **({"cursor": cursor} if cursor else {})}
        page = pipeline.api.get(f"/v1/users/{USER}/orders", params=params).json()
        listed += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    assert len(listed) == len(stored)
    one = next(iter(stored))
    revisions = pipeline.api.get(f"/v1/users/{USER}/orders/{one}/revisions").json()
    assert revisions

    # The operator's view through the CLI, against the running API.
    status = subprocess.run(
        [sys.executable, "-m", "cli", "status", USER, "--api-url", str(pipeline.api.base_url)],
        env={**os.environ, **pipeline.env, "COLUMNS": "250"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert status.returncode == 0, status.stdout + status.stderr
    assert token_id in status.stdout and "active" in status.stdout
    assert str(len(stored)) in status.stdout

    # Rebuild from Kafka: delete the token's rows, replay, compare checksums.
    checksum = token_checksum(database_url, token_id)
    asyncio.run(_delete_rows(database_url, token_id))
    assert token_checksum(database_url, token_id) != checksum
    # The owner asks for a resync from Kafka through the API; the operator's `replay --pending` runs it.
    since = (datetime.now(UTC) - timedelta(days=400)).isoformat()
    requested = pipeline.api.post(
        f"/v1/users/{USER}/tokens/{token_id}/resync", json={"source": "kafka", "since": since}
    )
    assert requested.status_code == 202, requested.text
    result = subprocess.run(
        [sys.executable, "-m", "cli", "replay", "--pending"],
        env={**os.environ, **pipeline.env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert token_checksum(database_url, token_id) == checksum
    token = pipeline.api.get(f"/v1/users/{USER}/tokens/{token_id}").json()
    assert token["resync"] is None, token


async def _delete_rows(database_url: str, token_id: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute("DELETE FROM orders WHERE token_id = $1", uuid.UUID(token_id))
        await conn.execute("DELETE FROM order_revisions WHERE token_id = $1", uuid.UUID(token_id))
    finally:
        await conn.close()
