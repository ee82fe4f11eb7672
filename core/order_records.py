"""The order-records contract: shipments, parcel tracking and invoices on `allegro.order-records`.

One message is one record as Allegro sent it, at one moment:
- `shipments`: the whole answer of `GET /order/checkout-forms/{id}/shipments` (`record_key` empty);
- `invoices`: the whole answer of `GET /order/checkout-forms/{id}/invoices` (`record_key` empty);
- `tracking`: one `waybills[]` item of `GET /order/carriers/{carrierId}/tracking`
  (`record_key` = `{carrierId}:{waybill}`; a carrier id never holds a colon).

The record travels as its JSON *text* (`document`), exactly as fetched, like a snapshot's form: it is the
document of record, stored and given back character for character. `content_sha256` is the SHA-256 of
that text (hex), and it is part of the key, `{token_id}:{checkout_form_id}:{kind}:{record_key}:{sha}`,
so that compaction keeps one message per distinct content of a record, i.e. every version; messages
are routed by `{token_id}:{checkout_form_id}`, so an order's records share a partition. Schema version 1;
a change that old consumers could not read gets a new version number.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints, ValidationError, model_validator

from core.contract import CheckoutFormId, ContractError, SyncKind

RECORDS_SCHEMA_VERSION: Literal[1] = 1
RecordKind = Literal["shipments", "invoices", "tracking"]
RECORD_KINDS: tuple[RecordKind, ...] = ("shipments", "invoices", "tracking")
RecordKey = Annotated[str, StringConstraints(max_length=200)]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


def document_sha256(document: str) -> str:
    """SHA-256 (hex) of a record's JSON text, UTF-8 encoded."""
    return hashlib.sha256(document.encode()).hexdigest()


def tracking_key(carrier_id: str, waybill: str) -> str:
    """The `record_key` of one waybill's tracking: `{carrierId}:{waybill}`."""
    return f"{carrier_id}:{waybill}"


def split_tracking_key(record_key: str) -> tuple[str, str]:
    """(carrier id, waybill) of a tracking `record_key`; raises ValueError without a colon."""
    carrier_id, separator, waybill = record_key.partition(":")
    if not separator:
        raise ValueError(f"not a tracking key: {record_key!r}")
    return carrier_id, waybill


class OrderRecordMessage(BaseModel):
    """One record of an order, on `allegro.order-records` (schema_version 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = RECORDS_SCHEMA_VERSION
    token_id: UUID
    user_id: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    seller_id: Annotated[str, StringConstraints(max_length=64)] = ""
    checkout_form_id: CheckoutFormId
    kind: RecordKind
    record_key: RecordKey = ""
    fetched_at: AwareDatetime
    source: SyncKind
    sync_run_id: UUID | None = None
    content_sha256: Sha256Hex
    document: str

    @model_validator(mode="after")
    def _consistent(self) -> OrderRecordMessage:
        if document_sha256(self.document) != self.content_sha256:
            raise ValueError("content_sha256 is not the SHA-256 of document")
        if (self.kind == "tracking") != bool(self.record_key):
            raise ValueError("record_key is set for tracking records only")
        if self.kind == "tracking":
            split_tracking_key(self.record_key)
        return self

    @classmethod
    def of(
        cls,
        *,
        token_id: UUID,
        user_id: str,
        seller_id: str,
        checkout_form_id: str,
        kind: RecordKind,
        record_key: str,
        document: str,
        fetched_at: datetime,
        source: SyncKind,
        sync_run_id: UUID | None,
    ) -> OrderRecordMessage:
        """A message for `document` with its hash filled in; raises pydantic's ValidationError."""
        return cls(
            token_id=token_id,
            user_id=user_id,
            seller_id=seller_id,
            checkout_form_id=checkout_form_id,
            kind=kind,
            record_key=record_key,
            fetched_at=fetched_at,
            source=source,
            sync_run_id=sync_run_id,
            content_sha256=document_sha256(document),
            document=document,
        )

    @property
    def key(self) -> str:
        """`{token_id}:{checkout_form_id}:{kind}:{record_key}:{content_sha256}`."""
        return f"{self.token_id}:{self.checkout_form_id}:{self.kind}:{self.record_key}:{self.content_sha256}"

    @property
    def route(self) -> str:
        """`{token_id}:{checkout_form_id}`: what chooses the partition."""
        return f"{self.token_id}:{self.checkout_form_id}"

    def encode(self) -> bytes:
        """The message as JSON bytes."""
        return orjson.dumps(self.model_dump(mode="json"))


def decode_order_record(value: bytes | str | None) -> OrderRecordMessage:
    """Parse and validate an order-record message; raises ContractError with a clear reason."""
    if value is None:
        raise ContractError("OrderRecordMessage: empty message value")
    try:
        return OrderRecordMessage.model_validate_json(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "message"
        raise ContractError(f"OrderRecordMessage: {where}: {first['msg']}") from exc
