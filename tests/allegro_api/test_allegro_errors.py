"""Both Allegro error body shapes map onto the error tree, whatever the body holds."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from allegro_api.errors import (
    AccessTokenExpired,
    AllegroError,
    ClientAuthFailed,
    ClientSideLimitError,
    Forbidden,
    InvalidGrant,
    NeedsReauth,
    NotAcceptable,
    NotFound,
    RateLimited,
    Unavailable,
    ValidationFailed,
    error_from_response,
    parse_error_body,
    parse_retry_after,
)
from allegro_api.retrying import Disposition, classify, is_transient

REST_404 = (
    b'{"errors":[{"code":"CheckoutFormNotFoundException","message":"Checkout form c93d not found",'
    b'"details":null,"path":"/order/checkout-forms/c93d","userMessage":null,"metadata":{"k":"v"}}]}'
)
OAUTH_401 = b'{"error":"invalid_token","error_description":"Access token expired: abc"}'


def test_rest_error_shape_is_read() -> None:
    body = parse_error_body(REST_404)
    assert body.code == "CheckoutFormNotFoundException"
    assert body.message == "Checkout form c93d not found"
    assert body.path == "/order/checkout-forms/c93d"
    assert body.user_message is None
    assert body.details is None
    assert body.metadata == {"k": "v"}


def test_oauth_error_shape_is_read() -> None:
    body = parse_error_body(OAUTH_401)
    assert body.code == "invalid_token"
    assert body.message == "Access token expired: abc"


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"<html>502 Bad Gateway</html>",
        b"[1, 2]",
        b'{"errors": []}',
        b'{"errors": "x"}',
        b"null",
        b"\xff\xfe",
    ],
)
def test_odd_bodies_do_not_raise(content: bytes) -> None:
    body = parse_error_body(content)
    assert body.code is None


def test_non_json_text_keeps_its_first_line() -> None:
    assert (
        parse_error_body(b"upstream connect error\nreset reason: overflow").message
        == "upstream connect error"
    )


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"<html>Bad Gateway</html>", None),
        (b"  <!DOCTYPE html><p>x</p>", None),
        (b"Bad Gateway", "text/html"),
    ],
)
def test_html_pages_are_flagged_and_carry_no_text(content: bytes, content_type: str | None) -> None:
    body = parse_error_body(content, content_type)
    assert body.html
    assert body.message is None


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, ValidationFailed),
        (401, AccessTokenExpired),
        (403, Forbidden),
        (404, NotFound),
        (406, NotAcceptable),
        (422, ValidationFailed),
        (408, Unavailable),
        (429, RateLimited),
        (500, Unavailable),
        (503, Unavailable),
        (504, Unavailable),
        (409, AllegroError),
    ],
)
def test_status_maps_to_error_class(status: int, expected: type[AllegroError]) -> None:
    response = httpx.Response(status, content=REST_404, headers={"trace-id": "t-1"})
    error = error_from_response(response)
    assert type(error) is expected
    assert error.status == status
    assert error.trace_id == "t-1"
    assert error.code == "CheckoutFormNotFoundException"
    assert is_transient(error) is (status >= 500 or status == 408)


def test_expired_token_asks_for_a_refresh_not_a_retry() -> None:
    error = error_from_response(httpx.Response(401, content=OAUTH_401))
    assert isinstance(error, AccessTokenExpired)
    assert classify(error) is Disposition.REFRESH
    assert error.code == "invalid_token"


def test_rate_limited_reads_retry_after_seconds() -> None:
    error = error_from_response(httpx.Response(429, content=b"", headers={"Retry-After": "12"}))
    assert isinstance(error, RateLimited)
    assert error.retry_after == 12.0
    assert error.pause_seconds == 12.0
    assert classify(error) is Disposition.RATE_LIMITED


def test_rate_limited_without_retry_after_pauses_a_minute() -> None:
    error = error_from_response(httpx.Response(429, content=b"Too Many Requests"))
    assert isinstance(error, RateLimited)
    assert error.retry_after is None
    assert error.pause_seconds == 60.0


def test_retry_after_http_date_and_garbage() -> None:
    now = datetime(2026, 7, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Wed, 01 Jul 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 01 Jul 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("-3") == 0.0


@pytest.mark.parametrize(
    ("error", "disposition"),
    [
        (Unavailable("x", status=503), Disposition.TRANSIENT),
        (RateLimited("x", status=429), Disposition.RATE_LIMITED),
        (AccessTokenExpired("x", status=401), Disposition.REFRESH),
        (NeedsReauth("no refresh token stored"), Disposition.REAUTH),
        (InvalidGrant("x", status=400), Disposition.REAUTH),
        (Forbidden("x", status=403), Disposition.ACCESS_DENIED),
        (ClientAuthFailed("x", status=401), Disposition.FAILED),
        (NotFound("x", status=404), Disposition.FAILED),
        (ValidationFailed("x", status=422), Disposition.FAILED),
        (ClientSideLimitError("x", offset=9_900, limit=200), Disposition.FAILED),
        (AllegroError("x", status=409), Disposition.FAILED),
    ],
)
def test_what_is_done_about_an_error_follows_its_class(error: AllegroError, disposition: Disposition) -> None:
    # As documented in allegro_api.errors: callers tell errors apart by class, nothing else.
    assert classify(error) is disposition
    assert classify(ValueError("not ours")) is None
