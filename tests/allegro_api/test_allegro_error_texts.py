"""Error texts of the client: no secret of the call survives, HTML pages become one readable line, and
one classification decides what is retried."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from allegro_api import (
    AccessTokenExpired,
    AllegroError,
    ClientAuthFailed,
    Forbidden,
    InvalidCode,
    InvalidGrant,
    NotFound,
    RateLimited,
    Unavailable,
    ValidationFailed,
)
from allegro_api.errors import error_from_response
from allegro_api.retrying import Disposition, classify, is_transient
from tests.allegro_api.harness import CLIENT_SECRET, Harness

FIELD_CASES = Path(__file__).resolve().parents[2] / "reference" / "field-cases"


def _texts(error: BaseException) -> str:
    """Everything an error could hand to a log line, a record or a row."""
    parts = [str(error), repr(error), repr(getattr(error, "details", None)), repr(getattr(error, "args", ()))]
    return " ".join(parts)


def _assert_clean(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text
    assert "eyJ" not in text  # no JWT of any kind, known or not


async def test_a_401_echoing_the_access_token_leaves_it_out_of_the_error(harness: Harness) -> None:
    tokens = await harness.link(await harness.seller())
    await harness.faults(errors=[{"path": "/order/events", "status": 401, "echo": True, "count": 1}])
    with pytest.raises(AccessTokenExpired) as caught:
        await harness.client().events(access_token=tokens.access_token)
    assert "Access token expired" in str(caught.value)
    _assert_clean(_texts(caught.value), tokens.access_token, tokens.refresh_token)


@pytest.mark.parametrize("status", [403, 404, 422, 500, 502])
async def test_rest_error_bodies_echoing_the_token_leave_it_out(harness: Harness, status: int) -> None:
    tokens = await harness.link(await harness.seller(orders=1))
    await harness.faults(errors=[{"path": "/order/checkout-forms", "status": status, "echo": True}])
    with pytest.raises(AllegroError) as caught:
        await harness.client(max_retries=1).checkout_forms(access_token=tokens.access_token)
    assert caught.value.status == status
    _assert_clean(_texts(caught.value), tokens.access_token)


async def test_a_refresh_answered_with_an_echoing_5xx_leaves_refresh_token_and_client_secret_out(
    harness: Harness,
) -> None:
    tokens = await harness.link(await harness.seller())
    rule = {"path": "/auth/oauth/token", "grant_type": "refresh_token", "status": 500, "echo": True}
    await harness.faults(errors=[rule])
    with pytest.raises(Unavailable) as caught:
        await harness.auth().refresh(tokens.refresh_token)
    _assert_clean(_texts(caught.value), tokens.refresh_token, CLIENT_SECRET)


async def test_invalid_grant_never_repeats_the_refresh_token(harness: Harness) -> None:
    tokens = await harness.link(await harness.seller())
    rule = {"path": "/auth/oauth/token", "grant_type": "refresh_token", "status": 400}
    await harness.faults(errors=[{**rule, "code": "invalid_grant", "echo": True}])
    with pytest.raises(InvalidGrant) as caught:
        await harness.auth().refresh(tokens.refresh_token)
    _assert_clean(_texts(caught.value), tokens.refresh_token, CLIENT_SECRET)


@pytest.mark.parametrize(
    ("status", "expected"), [(400, InvalidCode), (401, ClientAuthFailed), (503, Unavailable)]
)
async def test_device_flow_polls_answered_with_echoing_errors_leave_the_device_code_out(
    harness: Harness, status: int, expected: type[Any]
) -> None:
    auth = harness.auth()
    device = await auth.start_device_flow()
    rule = {"path": "/auth/oauth/token", "grant_type": "device_code", "status": status, "echo": True}
    await harness.faults(errors=[{**rule, "code": "invalid_request" if status == 400 else None}])
    try:
        outcome: Any = await auth.poll_device_token(device.device_code)
    except AllegroError as error:
        outcome = error
    assert isinstance(outcome, expected)
    _assert_clean(_texts(outcome), device.device_code, CLIENT_SECRET)


async def test_an_html_408_is_retried_and_the_call_passes(harness: Harness) -> None:
    tokens = await harness.link(await harness.seller(orders=2))
    await harness.faults(errors=[{"path": "/order/checkout-forms", "status": 408, "html": True, "count": 2}])
    page = await harness.client(max_retries=3).checkout_forms(access_token=tokens.access_token)
    assert page.total_count == 2
    counters = await harness.requests_made()
    assert counters["GET /order/checkout-forms 408"] == 2


@pytest.mark.parametrize(
    ("status", "summary"),
    [
        (408, "HTTP 408 Request Timeout (HTML error page)"),
        (502, "HTTP 502 Bad Gateway (HTML error page)"),
        (504, "HTTP 504 Gateway Timeout (HTML error page)"),
    ],
)
async def test_a_lasting_html_error_page_becomes_one_readable_line(
    harness: Harness, status: int, summary: str
) -> None:
    tokens = await harness.link(await harness.seller())
    await harness.faults(errors=[{"path": "/order/events", "status": status, "html": True, "echo": True}])
    with pytest.raises(Unavailable) as caught:
        await harness.client(max_retries=1).events(access_token=tokens.access_token)
    assert caught.value.message == summary
    assert "<" not in str(caught.value)
    _assert_clean(_texts(caught.value), tokens.access_token)
    assert (await harness.requests_made())[f"GET /order/events {status}"] == 2


def test_one_classification_decides_every_error() -> None:
    assert classify(Unavailable("x", status=408)) is Disposition.TRANSIENT
    assert classify(RateLimited("x", status=429)) is Disposition.RATE_LIMITED
    assert classify(AccessTokenExpired("x", status=401)) is Disposition.REFRESH
    assert classify(InvalidGrant("x", status=400)) is Disposition.REAUTH
    assert classify(Forbidden("x", status=403)) is Disposition.ACCESS_DENIED
    assert classify(ValidationFailed("x", status=422)) is Disposition.FAILED
    assert classify(NotFound("x", status=404)) is Disposition.FAILED
    assert classify(ClientAuthFailed("x", status=401)) is Disposition.FAILED
    assert classify(OSError("x")) is None
    assert [is_transient(e) for e in (Unavailable("x"), Forbidden("x"), RateLimited("x"))] == [
        True,
        False,
        False,
    ]


def _field_case(name: str) -> httpx.Response:
    """A field case file as a response: a raw `HTTP/1.1 <status>` head and body, or a bare body (401)."""
    raw = (FIELD_CASES / name).read_bytes()
    if not raw.startswith(b"HTTP/"):
        return httpx.Response(401, content=raw, headers={"content-type": "application/json"})
    head, _, body = raw.partition(b"\n\n")
    status_line, *header_lines = head.decode().splitlines()
    headers = dict(line.split(": ", 1) for line in header_lines if ": " in line)
    return httpx.Response(int(status_line.split()[1]), content=body, headers=headers)


def test_field_case_token_echo_loses_a_token_nobody_told_us_about() -> None:
    response = _field_case("H07s.txt")
    error = error_from_response(response)  # no known secrets: the shape alone must catch it
    assert isinstance(error, AccessTokenExpired)
    assert str(error).startswith("Access token expired: [redacted]")
    _assert_clean(_texts(error), response.json()["error_description"].split(": ")[1])


def test_field_case_http_408_is_transient_and_one_readable_line() -> None:
    error = error_from_response(_field_case("H03.txt"))
    assert classify(error) is Disposition.TRANSIENT
    assert error.message == "HTTP 408 Request Timeout (HTML error page)"


def test_field_case_http_403_denies_access() -> None:
    error = error_from_response(_field_case("H10.txt"))
    assert classify(error) is Disposition.ACCESS_DENIED
    assert (error.code, error.message) == ("AccessDenied", "Access is denied")
