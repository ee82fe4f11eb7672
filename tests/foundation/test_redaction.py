"""Secrets are scrubbed from text by value and by shape; ids an operator needs are kept; the log filter
applies it to messages, extra fields and tracebacks."""

from __future__ import annotations

import io
import logging

import orjson
import pytest

from core.logging import configure_logging
from core.redaction import REDACTED, scrub

# The access token of field case token-echo (reference/field-cases/H07s.txt).
H07S_TOKEN = (
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VyX25hbWUiOiI5OTk5MDAwMSIsImV4cCI6MTc5NjAxMjcwMH0"
    ".c2lnbmF0dXJlLW1hZGUtdXA"
)
DEVICE_CODE = "ZyAZrpA5X0Gr4AGJuAc2P7RaTHobHnRa"


@pytest.mark.parametrize(
    "text",
    [
        f"Access token expired: {H07S_TOKEN}",
        f"Authorization: Bearer {DEVICE_CODE}x",
        f"Invalid refresh token: {H07S_TOKEN}",
        f"device_code={DEVICE_CODE}&grant_type=x",
        f'{{"client_secret": "{DEVICE_CODE}"}}',
        f"Invalid device code {DEVICE_CODE}",
        "sealed k1:QWxhZGRpbjpvcGVuIHNlc2FtZQ0xMjM0NTY3ODkwYWJj",
    ],
)
def test_secret_shapes_are_scrubbed(text: str) -> None:
    cleaned = scrub(text)
    assert REDACTED in cleaned
    assert H07S_TOKEN not in cleaned
    assert DEVICE_CODE not in cleaned
    assert "QWxhZGRpbjpvcGVu" not in cleaned


def test_known_values_are_scrubbed_whatever_their_shape() -> None:
    assert scrub("bad credentials demo-client:demo-secret", ["demo-secret"]) == (
        f"bad credentials demo-client:{REDACTED}"
    )


@pytest.mark.parametrize(
    "text",
    [
        "Checkout form 8f8c0e12-3b4a-11ef-9a3b-0242ac120002 not found status=404",
        "trace_id=3aa70bc63974d1cdf2dc0cd63ccc18ba",
        "cursor 1732950000123456 is older than the 60-day event retention",
        "HTTP 408 Request Timeout (HTML error page) status=408",
        "sqlalchemy.exc.OperationalError: connection refused",
        'File "/srv/app/.venv/lib/python3.11/site-packages/httpx/_transports/default.py", line 72',
        "topic allegro.order-snapshots.dlq partition 3",
    ],
)
def test_ids_and_names_an_operator_needs_are_kept(text: str) -> None:
    assert scrub(text) == text


def test_the_service_log_filter_scrubs_messages_extra_fields_and_tracebacks() -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging("INFO", json_logs=True, stream=stream)
    try:
        log = logging.getLogger("tests.redaction")
        log.warning("refresh failed: %s", f"Invalid refresh token: {H07S_TOKEN}", extra={"body": DEVICE_CODE})
        try:
            raise ValueError(f"Access token expired: {H07S_TOKEN}")
        except ValueError:
            log.exception("run failed")
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["msg"] for line in lines] == [
        f"refresh failed: Invalid refresh token: {REDACTED}",
        "run failed",
    ]
    assert lines[0]["body"] == REDACTED
    assert "ValueError: Access token expired: [redacted]" in lines[1]["exc"]
    assert H07S_TOKEN not in stream.getvalue()
