"""Error answers of the simulator become the right errors; only transient GET failures are retried."""

from __future__ import annotations

import time

import httpx
import pytest

from allegro_api import (
    AllegroClient,
    Forbidden,
    NotAcceptable,
    NotFound,
    RateGovernor,
    RateLimited,
    Unavailable,
    ValidationFailed,
)
from allegro_api.retrying import Disposition, classify
from tests.allegro_api.conftest import HarnessFactory
from tests.allegro_api.harness import USER_AGENT, Harness
from tests.environments import free_port


def _api_requests(counters: dict[str, int], status_prefix: str = "") -> int:
    """How many /order requests the simulator answered, optionally only with a status starting so."""
    return sum(
        count
        for key, count in counters.items()
        if key.split()[1].startswith("/order/") and key.split()[2].startswith(status_prefix)
    )


async def test_merged_form_is_not_found_with_code_and_trace_id(harness: Harness) -> None:
    seller_id = await harness.seller(orders=2)
    tokens = await harness.link(seller_id)
    page = await harness.client().checkout_forms(access_token=tokens.access_token)
    old_ids = [snapshot.id for snapshot in page.forms]
    await harness.control("POST", f"/sellers/{seller_id}/merge", {"ids": old_ids})
    with pytest.raises(NotFound) as caught:
        await harness.client().checkout_form(old_ids[0], access_token=tokens.access_token)
    error = caught.value
    assert error.status == 404 and error.code == "CheckoutFormNotFoundException"
    assert error.trace_id and classify(error) is Disposition.FAILED
    assert error.details is not None and error.details.path == f"/order/checkout-forms/{old_ids[0]}"


async def test_bad_parameters_are_validation_failed(harness: Harness) -> None:
    tokens = await harness.link(await harness.seller())
    client = harness.client()
    with pytest.raises(ValidationFailed) as malformed_uuid:
        await client.checkout_form("not-a-uuid", access_token=tokens.access_token)
    assert malformed_uuid.value.status == 422 and malformed_uuid.value.code == "VALIDATION_ERROR"
    with pytest.raises(ValidationFailed) as bad_cursor:
        await client.events(access_token=tokens.access_token, from_id="yesterday")
    assert bad_cursor.value.status == 422
    with pytest.raises(ValidationFailed) as bad_status:
        await client.checkout_forms(access_token=tokens.access_token, status="SHIPPED")
    assert bad_status.value.status == 400


async def test_missing_scope_is_forbidden(harness: Harness) -> None:
    tokens = await harness.link(await harness.seller(), scope="allegro:api:profile:read")
    with pytest.raises(Forbidden) as caught:
        await harness.client().event_stats(access_token=tokens.access_token)
    assert caught.value.status == 403 and caught.value.code == "AUTHENTICATION_ERROR"


async def test_missing_user_agent_is_forbidden_in_strict_mode(make_harness: HarnessFactory) -> None:
    harness = await make_harness(strict_user_agent=True)
    tokens = await harness.link(await harness.seller())
    with pytest.raises(Forbidden):
        await harness.client(user_agent="").event_stats(access_token=tokens.access_token)
    assert (await harness.client().event_stats(access_token=tokens.access_token)).latest_event is None


async def test_a_stripped_accept_header_is_not_acceptable(make_harness: HarnessFactory) -> None:
    async def strip_accept(request: httpx.Request) -> None:
        # Stands in for a proxy that drops the header on the way.
        if request.url.path.startswith("/order/"):
            del request.headers["accept"]

    harness = await make_harness(hooks=[strip_accept])
    tokens = await harness.link(await harness.seller())
    with pytest.raises(NotAcceptable) as caught:
        await harness.client().event_stats(access_token=tokens.access_token)
    assert caught.value.status == 406 and caught.value.code == "NotAcceptableException"


async def test_429_is_raised_at_once_with_retry_after_and_pauses_the_governor(harness: Harness) -> None:
    tokens = await harness.link(await harness.seller())
    governor = RateGovernor(100)
    client = harness.client(governor=governor, max_retries=5)
    await harness.faults(burst_429=1)
    started = time.monotonic()
    with pytest.raises(RateLimited) as caught:
        await client.event_stats(access_token=tokens.access_token, governor_key="token-a")
    assert time.monotonic() - started < 0.5  # no sleeping inside the client
    assert caught.value.retry_after == 1.0
    assert classify(caught.value) is Disposition.RATE_LIMITED
    assert governor.paused_until >= started + 1.0
    counters = await harness.requests_made()
    assert counters == {**counters, "GET /order/event-stats 429": 1}
    assert _api_requests(counters) == 1


async def test_429_without_retry_after_pauses_for_a_minute(harness: Harness) -> None:
    tokens = await harness.link(await harness.seller())
    await harness.faults(rate_limit_per_min=2, retry_after=False)
    client = harness.client()
    await client.event_stats(access_token=tokens.access_token)
    await client.event_stats(access_token=tokens.access_token)
    with pytest.raises(RateLimited) as caught:
        await client.event_stats(access_token=tokens.access_token)
    assert caught.value.retry_after is None
    assert caught.value.pause_seconds == 60.0


async def test_5xx_is_retried_then_succeeds_and_every_attempt_is_governed(harness: Harness) -> None:
    tokens = await harness.link(await harness.seller(orders=3))
    governor = RateGovernor(1000)
    client = harness.client(max_retries=30, governor=governor)
    await harness.faults(error_rate_5xx=0.5)
    for _ in range(8):
        page = await client.checkout_forms(access_token=tokens.access_token, governor_key="token-a")
        assert page.total_count == 3
    counters = await harness.requests_made()
    assert counters["GET /order/checkout-forms 200"] == 8
    assert _api_requests(counters, "5") > 0
    assert governor.stats().granted == _api_requests(counters)


async def test_5xx_exhausting_retries_is_unavailable(harness: Harness) -> None:
    tokens = await harness.link(await harness.seller())
    await harness.faults(error_rate_5xx=1.0)
    with pytest.raises(Unavailable) as caught:
        await harness.client(max_retries=2).event_stats(access_token=tokens.access_token)
    assert classify(caught.value) is Disposition.TRANSIENT
    assert caught.value.status in {500, 502, 503, 504}
    assert _api_requests(await harness.requests_made(), "5") == 3


async def test_timeouts_are_retried_then_unavailable(make_http_harness: HarnessFactory) -> None:
    harness = await make_http_harness(http_timeout=0.1)
    tokens = await harness.link(await harness.seller())
    await harness.faults(latency_ms=400)
    outcomes: list[tuple[str, str]] = []
    client = AllegroClient(
        harness.http,
        api_url=harness.base_url,
        user_agent=USER_AGENT,
        max_retries=1,
        backoff_base=0.001,
        observer=lambda endpoint, outcome, _seconds: outcomes.append((endpoint, outcome)),
    )
    with pytest.raises(Unavailable, match="timeout"):
        await client.checkout_form("00000000-0000-1000-8000-000000000000", access_token=tokens.access_token)
    assert outcomes == [("/order/checkout-forms/{id}", "timeout")] * 2


async def test_connection_errors_are_retried_then_unavailable() -> None:
    closed_port = free_port()
    outcomes: list[str] = []
    async with httpx.AsyncClient(timeout=1.0) as http:
        client = AllegroClient(
            http,
            api_url=f"http://127.0.0.1:{closed_port}",
            user_agent=USER_AGENT,
            max_retries=2,
            backoff_base=0.001,
            observer=lambda _endpoint, outcome, _seconds: outcomes.append(outcome),
        )
        with pytest.raises(Unavailable, match="connection error"):
            await client.event_stats(access_token="unused")
    assert outcomes == ["connection"] * 3
