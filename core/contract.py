"""The Kafka contract: message models of every topic, strict, versioned, orjson-encoded.

Keys are UTF-8 strings: `{token_id}:{checkout_form_id}` for order topics, `{token_id}` for sync runs,
`{token_id}:{checkout_form_id}:{revision}:{content_sha256_hex}` for revisions (one key per distinct
content: Allegro's revision label alone may name two contents, and compaction must keep both).
Tokens never appear here.

The checkout form travels in a snapshot as the JSON *text* Allegro returned (`checkout_form`), byte for
byte, not as a nested object: it is the document of record, stored and published as it is (escaped
U+0000 and lone surrogates included), and nothing on the hot path decodes and re-encodes a 3 KB document
it only passes on. The columns the processor needs (status, buyer, totals, line item ids) are extracted
once by the poller, which parses the form anyway; their texts hold U+FFFD where the form holds U+0000 or a
lone surrogate, which PostgreSQL's text columns and JSON encoders refuse.

`allegro.orders` and `allegro.order-revisions` records embed that same text as their `order` member.
Their decoders validate it as a JSON object; a consumer that needs the exact text (a replay) takes it
with `split_document`, since a JSON decoder may refuse (pydantic's) or alter what the form holds.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, NamedTuple, TypeVar
from uuid import UUID

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from core.documents import member_span
from core.order_fields import NAMES, ORDER_FIELDS, decimal_text

SCHEMA_VERSION: Literal[1] = 1

SyncKind = Literal["backfill", "journal", "reconcile", "resync"]
SnapshotSource = SyncKind
SyncPhase = Literal["started", "progress", "finished", "failed"]
ChangeType = Literal["created", "updated", "superseded"]
GoneReason = Literal["merged", "purged"]

CheckoutFormId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[0-9a-zA-Z-]+$")]
Revision = Annotated[str, StringConstraints(min_length=1, max_length=64)]
ShortText = Annotated[str, StringConstraints(max_length=256)]


class ContractError(ValueError):
    """A message that does not follow the contract; carries a reason fit for a DLQ header."""


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    schema_version: Literal[1] = SCHEMA_VERSION

    def encode(self) -> bytes:
        """The message as JSON bytes."""
        return orjson.dumps(self.model_dump(mode="json"))


if TYPE_CHECKING:

    class _OrderFields(_Message):
        """The order's fields (`core.order_fields`), one member each, read by name or `values_of`."""

        def __getattr__(self, name: str) -> Any: ...

else:
    _OrderFields = create_model(
        "_OrderFields",
        __base__=_Message,
        __module__=__name__,
        **{f.name: (f.python, Field(default_factory=list) if f.is_list else None) for f in ORDER_FIELDS},
    )


class SnapshotEnvelope(_OrderFields):
    """One fetched checkout form (or the news that it is gone upstream), on `allegro.order-snapshots`."""

    token_id: UUID
    user_id: ShortText
    seller_id: ShortText
    checkout_form_id: CheckoutFormId
    revision: Revision | None = None
    updated_at: AwareDatetime | None = None
    fetched_at: AwareDatetime
    source: SnapshotSource
    event_ids: list[ShortText] = Field(default_factory=list)
    sync_run_id: UUID
    checkout_form: str | None = Field(default=None, description="The form's JSON text, exactly as fetched.")
    gone: GoneReason | None = Field(default=None, description="Set when Allegro answered 404 for the form.")

    @property
    def key(self) -> str:
        """The Kafka key: one order's snapshots share a partition, hence stay in order."""
        return order_key(self.token_id, self.checkout_form_id)

    @field_validator("checkout_form")
    @classmethod
    def _looks_like_an_object(cls, value: str | None) -> str | None:
        # A cheap shape check; full JSON validity is PostgreSQL's to judge, and a row it rejects is
        # dead-lettered on its own by the processor.
        if value is not None and not (value.startswith("{") and value.endswith("}")):
            raise ValueError("checkout_form must be the JSON text of an object")
        return value

    @model_validator(mode="after")
    def _form_or_gone(self) -> SnapshotEnvelope:
        if self.gone is None and (self.checkout_form is None or self.revision is None):
            raise ValueError("a snapshot needs checkout_form and revision unless it says the form is gone")
        return self


class SyncRunRecord(_Message):
    """A sync run's lifecycle record, on `allegro.sync-runs`."""

    sync_run_id: UUID
    token_id: UUID
    user_id: ShortText
    kind: SyncKind
    phase: SyncPhase
    at: AwareDatetime
    started_at: AwareDatetime
    finished_at: AwareDatetime | None = None
    events_read: int = Field(default=0, ge=0)
    orders_fetched: int = Field(default=0, ge=0)
    orders_changed: int = Field(default=0, ge=0)
    requests_made: int = Field(default=0, ge=0)
    cursor_from: ShortText | None = None
    cursor_to: ShortText | None = None
    error: Annotated[str, StringConstraints(max_length=4000)] | None = None

    @property
    def key(self) -> str:
        """Records of one token share a partition."""
        return str(self.token_id)


class OrderChange(_OrderFields):
    """A real change of a stored order, on the compacted `allegro.orders` (latest state per order)."""

    change: ChangeType
    token_id: UUID
    user_id: ShortText
    seller_id: ShortText
    checkout_form_id: CheckoutFormId
    revision: Revision
    updated_at: AwareDatetime | None = None
    captured_at: AwareDatetime
    source: SnapshotSource
    superseded_at: AwareDatetime | None = None
    superseded_by: CheckoutFormId | None = None
    missing_upstream_since: AwareDatetime | None = None
    first_seen_at: AwareDatetime | None = None
    order: dict[str, Any]

    @property
    def key(self) -> str:
        """Same key as the snapshots, so compaction keeps the latest state of each order."""
        return order_key(self.token_id, self.checkout_form_id)


class RevisionRecord(_Message):
    """One stored revision, on the compacted `allegro.order-revisions`.

    Compaction keeps only the latest value per key, so `allegro.orders` alone would lose an order's
    history; keyed by revision, this topic keeps every revision forever, and a rebuild of
    `order_revisions` reads it.
    """

    token_id: UUID
    checkout_form_id: CheckoutFormId
    revision: Revision
    updated_at: AwareDatetime | None = None
    captured_at: AwareDatetime
    source: SnapshotSource
    order: dict[str, Any]

    def key_for(self, content_hash: bytes) -> str:
        """One key per revision content (`content_hash` of the form's text): compaction never drops
        history."""
        return revision_key(self.token_id, self.checkout_form_id, self.revision, content_hash)


def order_key(token_id: UUID | str, checkout_form_id: str) -> str:
    """The key of an order on every order topic."""
    return f"{token_id}:{checkout_form_id}"


def revision_key(
    token_id: UUID | str, checkout_form_id: str, revision: str, content_hash: bytes | None
) -> str:
    """The key of one revision content on `allegro.order-revisions` (rows stored before the content hash
    existed have none, and keep the key they were published under)."""
    base = f"{token_id}:{checkout_form_id}:{revision}"
    return base if content_hash is None else f"{base}:{content_hash.hex()}"


class RecordContent(NamedTuple):
    """What a change and a revision record both say: which content of which order, when and how it came."""

    token_id: UUID
    checkout_form_id: str
    revision: str
    updated_at: datetime | None
    captured_at: datetime
    source: str

    def members(self) -> dict[str, Any]:
        """These as the record's JSON members (with the schema version)."""
        return {"schema_version": SCHEMA_VERSION, **self._asdict(), "token_id": str(self.token_id)}


def encode_order_change(
    content: RecordContent,
    *,
    change: ChangeType,
    user_id: str,
    seller_id: str,
    order_json: str,
    superseded_at: datetime | None = None,
    superseded_by: str | None = None,
    missing_upstream_since: datetime | None = None,
    first_seen_at: datetime | None = None,
    fields: tuple[Any, ...] | None = None,
) -> bytes:
    """Encode an `OrderChange` around the stored form's JSON text without parsing it; `fields` are the
    order's field values in `core.order_fields.ORDER_FIELDS` order (None: none known)."""
    return orjson.dumps(
        {
            **content.members(),
            "change": change,
            "user_id": user_id,
            "seller_id": seller_id,
            "superseded_at": superseded_at,
            "superseded_by": superseded_by,
            "missing_upstream_since": missing_upstream_since,
            **(dict(zip(NAMES, fields, strict=True)) if fields is not None else {}),
            "first_seen_at": first_seen_at,
            "order": orjson.Fragment(order_json),
        },
        default=decimal_text,
    )


def encode_revision_record(content: RecordContent, order_json: str) -> bytes:
    """Encode a `RevisionRecord` around the stored form's JSON text without parsing it."""
    return orjson.dumps({**content.members(), "order": orjson.Fragment(order_json)})


M = TypeVar("M", bound=_Message)


def split_document(value: bytes | str | None) -> tuple[bytes, str]:
    """A change or revision record without its form (`"order": {}`), and the form's exact text.

    Raises ContractError when the value is not a JSON object with an `order` object."""
    if value is None:
        raise ContractError("empty message value")
    try:
        text = value.decode() if isinstance(value, bytes) else value
        span = member_span(text, "order")
    except ValueError as exc:  # UnicodeDecodeError included
        raise ContractError(f"not a JSON object: {exc}") from exc
    if span is None or not text.startswith("{", span[0]):
        raise ContractError("order: not a JSON object")
    start, end = span
    return (text[:start] + "{}" + text[end:]).encode(), text[start:end]


def _decode(model: type[M], value: bytes | str | None) -> M:
    if value is None:
        raise ContractError(f"{model.__name__}: empty message value")
    try:
        return model.model_validate_json(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "message"
        raise ContractError(f"{model.__name__}: {where}: {first['msg']}") from exc


def decode_snapshot(value: bytes | str | None) -> SnapshotEnvelope:
    """Parse and validate a snapshot envelope; raises ContractError with a clear reason."""
    return _decode(SnapshotEnvelope, value)


def decode_sync_run(value: bytes | str | None) -> SyncRunRecord:
    """Parse and validate a sync-run record; raises ContractError with a clear reason."""
    return _decode(SyncRunRecord, value)


def decode_order_change(value: bytes | str | None) -> OrderChange:
    """Parse and validate an order change; raises ContractError with a clear reason."""
    return _decode(OrderChange, value)


def decode_revision_record(value: bytes | str | None) -> RevisionRecord:
    """Parse and validate a revision record; raises ContractError with a clear reason."""
    return _decode(RevisionRecord, value)
