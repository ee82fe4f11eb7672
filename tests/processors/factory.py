"""Snapshot envelopes for the processor tests: small forms, controllable revisions and times."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from processors.messages import RawMessage

BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)
SYNC_RUN = uuid.UUID(int=7)


def form_json(
    form_id: str, revision: str, *, line_items: list[str], status: str = "READY_FOR_PROCESSING"
) -> str:
    """A small checkout form's JSON text."""
    return orjson.dumps(
        {
            "id": form_id,
            "status": status,
            "revision": revision,
            "lineItems": [{"id": item} for item in line_items],
        }
    ).decode()


def snapshot(
    token_id: uuid.UUID,
    form_id: str,
    version: int,
    *,
    line_items: list[str] | None = None,
    gone: str | None = None,
    fetched_offset: int = 0,
    checkout_form: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An envelope for revision `r{version}` updated `version` minutes after BASE_TIME."""
    items = line_items if line_items is not None else [f"{form_id}-li"]
    revision = f"r{version}"
    envelope: dict[str, Any] = {
        "schema_version": 1,
        "token_id": str(token_id),
        "user_id": "user-1",
        "seller_id": "seller-1",
        "checkout_form_id": form_id,
        "fetched_at": (BASE_TIME + timedelta(minutes=version, seconds=fetched_offset)).isoformat(),
        "source": "journal",
        "sync_run_id": str(SYNC_RUN),
    }
    if gone is None:
        envelope |= {
            "revision": revision,
            "updated_at": (BASE_TIME + timedelta(minutes=version)).isoformat(),
            "status": "READY_FOR_PROCESSING",
            "buyer_login": "buyer",
            "total_amount": "12.50",
            "currency": "PLN",
            "line_item_ids": items,
            "checkout_form": checkout_form or form_json(form_id, revision, line_items=items),
        }
    else:
        envelope["gone"] = gone
    return envelope | extra


def raw(values: Sequence[dict[str, Any] | bytes], *, topic: str = "snapshots") -> list[RawMessage]:
    """Raw messages at consecutive offsets of partition 0."""
    messages = []
    for offset, value in enumerate(values):
        data = value if isinstance(value, bytes) else orjson.dumps(value)
        key = (
            None if isinstance(value, bytes) else f"{value['token_id']}:{value['checkout_form_id']}".encode()
        )
        messages.append(RawMessage(topic, 0, offset, key, data, ()))
    return messages
