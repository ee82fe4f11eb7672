"""Every Kafka message model round-trips and rejects malformed input with a clear reason."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest

from core.contract import (
    ContractError,
    OrderChange,
    RecordContent,
    SnapshotEnvelope,
    SyncRunRecord,
    decode_order_change,
    decode_revision_record,
    decode_snapshot,
    decode_sync_run,
    encode_order_change,
    encode_revision_record,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
FORM = '{"id":"d4096850-303d-11f0-9468-6d34c41cf924","revision":"bd4d65cd","note":null}'


def snapshot(**overrides: object) -> SnapshotEnvelope:
    fields: dict[str, object] = {
        "token_id": uuid.uuid4(),
        "user_id": "user-1",
        "seller_id": "44123456",
        "checkout_form_id": "d4096850-303d-11f0-9468-6d34c41cf924",
        "revision": "bd4d65cd",
        "updated_at": NOW,
        "bought_at": NOW,
        "status": "READY_FOR_PROCESSING",
        "total_amount": Decimal("50.97"),
        "currency": "PLN",
        "line_item_ids": ["d3fc9710-303d-11f0-9468-6d34c41cf924"],
        "fetched_at": NOW,
        "source": "journal",
        "event_ids": ["1747171697311448"],
        "sync_run_id": uuid.uuid4(),
        "checkout_form": FORM,
    }
    fields.update(overrides)
    return SnapshotEnvelope.model_validate(fields)


def test_snapshot_round_trips_with_the_form_text_unchanged() -> None:
    original = snapshot()
    decoded = decode_snapshot(original.encode())
    assert decoded == original
    assert decoded.checkout_form == FORM
    assert decoded.key == f"{original.token_id}:{original.checkout_form_id}"


def test_gone_snapshot_needs_no_form() -> None:
    gone = snapshot(checkout_form=None, revision=None, gone="merged")
    assert decode_snapshot(gone.encode()).gone == "merged"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"not json", "Invalid JSON"),
        (None, "empty message value"),
        (b"[]", "SnapshotEnvelope"),
        (b'{"schema_version": 1}', "token_id: Field required"),
    ],
)
def test_malformed_snapshot_is_rejected_with_a_reason(value: bytes | None, reason: str) -> None:
    with pytest.raises(ContractError, match=reason):
        decode_snapshot(value)


def test_unknown_schema_version_is_rejected() -> None:
    payload = orjson.loads(snapshot().encode())
    payload["schema_version"] = 2
    with pytest.raises(ContractError, match="schema_version"):
        decode_snapshot(orjson.dumps(payload))


def test_unknown_field_is_rejected() -> None:
    payload = orjson.loads(snapshot().encode())
    payload["access_token"] = "never on Kafka"
    with pytest.raises(ContractError, match="access_token"):
        decode_snapshot(orjson.dumps(payload))


def test_snapshot_without_form_or_gone_reason_is_rejected() -> None:
    payload = orjson.loads(snapshot().encode())
    payload["checkout_form"] = None
    with pytest.raises(ContractError, match="checkout_form and revision"):
        decode_snapshot(orjson.dumps(payload))


def test_form_that_is_not_an_object_is_rejected() -> None:
    payload = orjson.loads(snapshot().encode())
    payload["checkout_form"] = "[1, 2]"
    with pytest.raises(ContractError, match="JSON text of an object"):
        decode_snapshot(orjson.dumps(payload))


def test_naive_timestamp_is_rejected() -> None:
    payload = orjson.loads(snapshot().encode())
    payload["fetched_at"] = "2026-11-28T12:00:00"
    with pytest.raises(ContractError, match="fetched_at"):
        decode_snapshot(orjson.dumps(payload))


def test_sync_run_record_round_trips_and_validates_counts() -> None:
    record = SyncRunRecord(
        sync_run_id=uuid.uuid4(),
        token_id=uuid.uuid4(),
        user_id="user-1",
        kind="journal",
        phase="finished",
        at=NOW,
        started_at=NOW,
        finished_at=NOW,
        events_read=3,
        cursor_from="1",
        cursor_to="9",
    )
    assert decode_sync_run(record.encode()) == record
    assert record.key == str(record.token_id)
    payload = orjson.loads(record.encode())
    payload["events_read"] = -1
    with pytest.raises(ContractError, match="events_read"):
        decode_sync_run(orjson.dumps(payload))
    payload["events_read"] = 1
    payload["kind"] = "weekly"
    with pytest.raises(ContractError, match="kind"):
        decode_sync_run(orjson.dumps(payload))


def test_order_change_embeds_the_stored_form_as_an_object() -> None:
    token_id = uuid.uuid4()
    content = RecordContent(
        token_id, "d4096850-303d-11f0-9468-6d34c41cf924", "bd4d65cd", NOW, NOW, "backfill"
    )
    encoded = encode_order_change(
        content, change="created", user_id="user-1", seller_id="44123456", order_json=FORM
    )
    change = decode_order_change(encoded)
    assert isinstance(change, OrderChange)
    assert change.order == orjson.loads(FORM)
    assert change.token_id == token_id
    assert decode_order_change(change.encode()) == change
    with pytest.raises(ContractError, match="change"):
        decode_order_change(encoded.replace(b'"created"', b'"deleted"'))


def test_revision_record_round_trips_and_is_keyed_per_revision() -> None:
    token_id = uuid.uuid4()
    content = RecordContent(token_id, "d4096850-303d-11f0-9468-6d34c41cf924", "bd4d65cd", NOW, NOW, "journal")
    encoded = encode_revision_record(content, FORM)
    record = decode_revision_record(encoded)
    assert record.order == orjson.loads(FORM)
    digest = hashlib.sha256(FORM.encode()).digest()
    assert (
        record.key_for(digest) == f"{token_id}:d4096850-303d-11f0-9468-6d34c41cf924:bd4d65cd:{digest.hex()}"
    )
    with pytest.raises(ContractError, match="revision"):
        decode_revision_record(encoded.replace(b'"revision":"bd4d65cd",', b""))
