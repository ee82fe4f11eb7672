"""Allegro's error answers on the real path (simulator fault -> poller -> Kafka / PostgreSQL / REST API):
secrets echoed in error bodies go nowhere (field case token-echo), an HTML 408 is retried and summed up
in one line (http-408), a lasting 403 is a visible, backed-off state that heals itself (http-403), and a
row without a refresh token ends as needs_reauth."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.settings import KafkaSettings
from tests.producers.conftest import (
    Sim,
    SnapshotReader,
    make_settings,
    running_poller,
    start_link,
    token_row,
    wait_for,
)
from tests.producers.support_errors import (
    api_answers,
    api_client,
    leaked,
    read_sync_run_values,
    service_logs,
    simulator_secrets,
    store_sync_runs,
)
from tests.producers.test_sync_faults import _linked_and_synced, _set

HTML_408_SUMMARY = "HTTP 408 Request Timeout (HTML error page)"


async def _status(db: AsyncEngine, token_id: uuid.UUID) -> str:
    return str((await token_row(db, token_id))["status"])


async def _errors_left(sim: Sim) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = (await sim.control("GET", "/faults"))["errors"]
    return rules


async def _rows_as_text(db: AsyncEngine) -> dict[str, str]:
    async with db.connect() as conn:
        tokens = await conn.execute(text("SELECT row_to_json(t)::text FROM user_tokens t"))
        token_rows = tokens.scalars().all()
        history = await conn.execute(text("SELECT row_to_json(h)::text FROM sync_history h"))
        history_rows = history.scalars().all()
    return {"user_tokens": "\n".join(token_rows), "sync_history": "\n".join(history_rows)}


async def _new_orders(sim: Sim, seller: str, count: int = 5) -> None:
    await sim.control("POST", f"/sellers/{seller}/orders", {"count": count, "days_back": 0.0005})


async def test_token_echoing_error_bodies_reach_no_log_kafka_row_or_api_answer(
    sim: Sim,
    db: AsyncEngine,
    kafka_settings: KafkaSettings,
    snapshots: SnapshotReader,
    poller_database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(sim, kafka_settings, poller_database_url)
    with service_logs() as logs:
        seller, token_id = await _linked_and_synced(sim, db, snapshots, settings, count=10)
        other, other_token = await _linked_and_synced(sim, db, snapshots, settings, count=5)
        pending_user = f"user-{uuid.uuid4().hex[:6]}"
        pending_token = await start_link(sim, db, user_id=pending_user, seller_id=seller, approve=False)
        device_grant = {"path": "/auth/oauth/token", "grant_type": "device_code", "echo": True}
        await sim.control(
            "PUT",
            "/faults",
            {
                "errors": [
                    # field case token-echo: a 401 whose error_description repeats the access token
                    {"path": "/order/events", "status": 401, "echo": True, "count": 3},
                    # more than the client's retries, so the run fails on it; then a 4xx
                    {"path": "/order/checkout-forms", "status": 502, "echo": True, "count": 6},
                    {"path": "/order/checkout-forms", "status": 422, "echo": True, "count": 1},
                    {**device_grant, "status": 503, "count": 2},
                    {**device_grant, "status": 401, "count": 1},
                    {**device_grant, "status": 400, "code": "invalid_request"},
                ]
            },
        )
        async with running_poller(settings):
            await _new_orders(sim, seller)
            await wait_for(
                lambda: _is_status(db, pending_token, "link_expired"), within=30, what="the link to end"
            )
            await wait_for(lambda: _only_lasting_rule_left(sim), within=60, what="the faults to be used up")
            await snapshots.wait_matches(token_id, await sim.truth(seller), within=60)
            # A refresh answered with an echo of the refresh token and the client secret.
            await sim.control(
                "PUT",
                "/faults",
                {"errors": [{**device_grant, "grant_type": "refresh_token", "status": 500, "count": 1}]},
            )
            await sim.control("POST", "/tokens/expire", {"seller_id": seller})
            await _new_orders(sim, seller)
            await wait_for(lambda: _no_rules_left(sim), within=30, what="the refresh fault to be used")
            await snapshots.wait_matches(token_id, await sim.truth(seller), within=60)
            # A dead refresh token: Allegro's invalid_grant repeats it ("Invalid refresh token: <rt>").
            await sim.control("POST", "/tokens/revoke", {"seller_id": other})
            await wait_for(
                lambda: _is_status(db, other_token, "needs_reauth"), within=30, what="needs_reauth"
            )
        stats = await sim.stats()
        values = await read_sync_run_values(kafka_settings)
        records = await store_sync_runs(poller_database_url, values)
        users = [(await token_row(db, t))["user_id"] for t in (token_id, other_token, pending_token)]
        answers = await api_answers(settings, users, [token_id, other_token, pending_token])
        rows = await _rows_as_text(db)
    # Every error path was taken, and its error reached the records (scrubbed).
    assert stats.get("GET /order/events 401", 0) >= 3
    # The fault's path is a prefix: the order-record reads under /order/checkout-forms/{id}/ take it too.
    served_502 = {
        k: n for k, n in stats.items() if k.startswith("GET /order/checkout-forms") and k.endswith(" 502")
    }
    assert sum(served_502.values()) >= 5, stats
    assert stats.get("POST /auth/oauth/token 503", 0) == 2
    assert stats.get("POST /auth/oauth/token 500", 0) == 1
    errors = [r.error for r in records if r.phase == "failed" and r.error]
    assert any("Access token expired: [redacted]" in e for e in errors), errors
    assert any("status=502" in e for e in errors), errors
    assert any("status=500" in e for e in errors), errors
    assert "refresh token rejected" in str((await token_row(db, other_token))["last_error"])
    everywhere = {
        "service log": logs.getvalue(),
        "captured log records": caplog.text,
        "allegro.sync-runs": "\n".join(v.decode() for v in values),
        **rows,
        "REST API answers": answers,
    }
    assert "[redacted]" in everywhere["allegro.sync-runs"]
    assert leaked(everywhere, simulator_secrets(sim)) == {}
    for place, content in everywhere.items():
        assert "eyJ" not in content, place  # no JWT of any kind


async def _is_status(db: AsyncEngine, token_id: uuid.UUID, status: str) -> bool:
    return await _status(db, token_id) == status


async def _only_lasting_rule_left(sim: Sim) -> bool:
    return [rule["count"] for rule in await _errors_left(sim)] == [None]


async def _no_rules_left(sim: Sim) -> bool:
    return await _errors_left(sim) == []


async def test_an_html_408_is_retried_and_the_journal_goes_on(
    sim: Sim,
    db: AsyncEngine,
    kafka_settings: KafkaSettings,
    snapshots: SnapshotReader,
    poller_database_url: str,
) -> None:
    settings = make_settings(sim, kafka_settings, poller_database_url)
    seller, token_id = await _linked_and_synced(sim, db, snapshots, settings, count=10)
    failed_before = _failed(await read_sync_run_values(kafka_settings))
    await sim.control("POST", "/stats/reset")
    html_408 = {"path": "/order/events", "status": 408, "html": True}
    await sim.control("PUT", "/faults", {"errors": [{**html_408, "count": 2}]})
    await _new_orders(sim, seller)
    async with running_poller(settings):
        await snapshots.wait_matches(token_id, await sim.truth(seller), within=40)
    assert (await sim.stats())["GET /order/events 408"] == 2
    assert _failed(await read_sync_run_values(kafka_settings)) == failed_before
    assert (await token_row(db, token_id))["last_error"] is None

    # A proxy that keeps answering 408: the run fails with one readable line, not the page.
    await sim.control("PUT", "/faults", {"errors": [html_408]})
    async with running_poller(settings):
        error = await wait_for(lambda: _last_error(db, token_id), within=40, what="a failed journal run")
        await sim.control("PUT", "/faults", {"errors": []})
        await _new_orders(sim, seller)
        await snapshots.wait_matches(token_id, await sim.truth(seller), within=40)
    assert HTML_408_SUMMARY in error
    assert "<" not in error
    records = await store_sync_runs(poller_database_url, await read_sync_run_values(kafka_settings))
    failed = [
        r.error or "" for r in records if r.phase == "failed" and not (r.error or "").startswith("cancelled:")
    ]
    assert failed and all(HTML_408_SUMMARY in e and "<" not in e for e in failed)
    assert (await token_row(db, token_id))["status"] == "active"


def _failed(values: list[bytes]) -> int:
    """Runs that failed on their own (a run cancelled because the test stopped its poller is not one)."""
    return sum(b'"phase":"failed"' in value and b'"error":"cancelled:' not in value for value in values)


async def _last_error(db: AsyncEngine, token_id: uuid.UUID) -> str | None:
    value = (await token_row(db, token_id))["last_error"]
    return str(value) if value else None


async def test_a_lasting_403_shows_access_denied_backs_off_and_heals(
    sim: Sim,
    db: AsyncEngine,
    kafka_settings: KafkaSettings,
    snapshots: SnapshotReader,
    poller_database_url: str,
) -> None:
    base = 0.4
    settings = make_settings(
        sim,
        kafka_settings,
        poller_database_url,
        poller={"access_denied_backoff_seconds": base, "access_denied_backoff_max_seconds": 8 * base},
    )
    seller, token_id = await _linked_and_synced(sim, db, snapshots, settings, count=10)
    user_id = (await token_row(db, token_id))["user_id"]
    # field case http-403: /order/* answers 403 AccessDenied for a while
    await sim.control(
        "PUT", "/faults", {"errors": [{"path": "/order/", "status": 403, "code": "AccessDenied"}]}
    )
    await sim.control("POST", "/stats/reset")
    retry_times: dict[int, Any] = {}

    async def seen_attempts(n: int) -> bool:
        row = await token_row(db, token_id)
        if row["status"] == "access_denied":
            retry_times.setdefault(row["access_denied_attempts"], row["access_retry_at"])
        return len(retry_times) >= n and max(retry_times) >= n

    async with running_poller(settings):
        await wait_for(lambda: seen_attempts(4), within=40, what="four refusals in a row", every=0.05)
        row = await token_row(db, token_id)
        async with api_client(settings) as api:
            answer = (await api.get(f"/v1/users/{user_id}/tokens/{token_id}")).json()
        denied_requests = (await sim.stats()).get("GET /order/events 403", 0)
        await sim.control("PUT", "/faults", {"errors": []})
        await _new_orders(sim, seller)
        await wait_for(lambda: _is_status(db, token_id, "active"), within=30, what="access to return")
        await snapshots.wait_matches(token_id, await sim.truth(seller), within=40)
    assert row["status"] == "access_denied"
    assert "AccessDenied" in row["last_error"]
    assert answer["status"] == "access_denied"
    assert answer["access_denied"]["attempts"] >= 4
    assert "AccessDenied" in answer["access_denied"]["reason"]
    # The waits between attempts double (0.4, 0.8, 1.6 s + the run itself), not every journal interval.
    gaps = [(retry_times[n + 1] - retry_times[n]).total_seconds() for n in (1, 2)]
    assert gaps[1] > gaps[0] * 1.5 > base, gaps
    assert denied_requests <= max(retry_times) + 1
    healed = await token_row(db, token_id)
    assert healed["last_error"] is None
    assert healed["access_denied_attempts"] == 0
    assert healed["access_retry_at"] is None


async def test_a_token_row_without_refresh_token_ends_as_needs_reauth(
    sim: Sim,
    db: AsyncEngine,
    kafka_settings: KafkaSettings,
    snapshots: SnapshotReader,
    poller_database_url: str,
) -> None:
    settings = make_settings(sim, kafka_settings, poller_database_url)
    seller, token_id = await _linked_and_synced(sim, db, snapshots, settings, count=5)
    await _set(db, token_id, refresh_token=None)
    await sim.control("POST", "/tokens/expire", {"seller_id": seller})
    await sim.control("POST", "/stats/reset")
    async with running_poller(settings):
        await wait_for(lambda: _is_status(db, token_id, "needs_reauth"), within=20, what="needs_reauth")
        settled = (await sim.stats()).get("GET /order/events 401", 0)
        await asyncio.sleep(2)  # a dozen journal intervals: nothing more is tried for this token
        assert (await sim.stats()).get("GET /order/events 401", 0) == settled
    assert settled == 1
    assert "no refresh token stored" in (await token_row(db, token_id))["last_error"]
