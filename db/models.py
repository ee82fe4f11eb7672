"""SQLAlchemy 2 models of the tables; ORM objects stay inside db/."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.order_fields import ORDER_FIELDS
from core.states import SyncKind, SyncStatus, TokenStatus

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TOKEN_STATUSES = tuple(TokenStatus)
SYNC_KINDS = tuple(SyncKind)
SYNC_STATUSES = tuple(SyncStatus)

Timestamp = DateTime(timezone=True)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UserToken(Base):
    """One linked (or linking) Allegro seller account of an external user."""

    __tablename__ = "user_tokens"
    __table_args__ = (
        CheckConstraint(_in("status", TOKEN_STATUSES), name="status"),
        # One active link per (user, seller): relinking the same seller replaces, never duplicates.
        Index(
            "uq_user_tokens_active_user_seller",
            "user_id",
            "seller_id",
            unique=True,
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_user_tokens_user_id_created_at", "user_id", "created_at"),
        Index("ix_user_tokens_status", "status"),
        # The poller's scan reads only rows changed since its last one.
        Index("ix_user_tokens_updated_at", "updated_at"),
    )

    id: Mapped[UUID] = mapped_column(PgUUID(as_uuid=True), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128))
    seller_id: Mapped[str | None] = mapped_column(String(64))
    login: Mapped[str | None] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16), server_default=TokenStatus.PENDING.value)
    # Encrypted values are `key_id:ciphertext`, so each carries the key it was sealed with.
    access_token: Mapped[str | None] = mapped_column(Text)
    refresh_token: Mapped[str | None] = mapped_column(Text)
    access_expires_at: Mapped[datetime | None] = mapped_column(Timestamp)
    scope: Mapped[str | None] = mapped_column(Text)
    device_code: Mapped[str | None] = mapped_column(Text)
    user_code: Mapped[str | None] = mapped_column(String(32))
    verification_uri: Mapped[str | None] = mapped_column(Text)
    verification_uri_complete: Mapped[str | None] = mapped_column(Text)
    device_expires_at: Mapped[datetime | None] = mapped_column(Timestamp)
    device_interval: Mapped[int | None] = mapped_column(Integer)
    device_next_poll_at: Mapped[datetime | None] = mapped_column(Timestamp)
    event_cursor: Mapped[str | None] = mapped_column(String(32))
    cursor_updated_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_event_at: Mapped[datetime | None] = mapped_column(Timestamp)
    backfill_progress: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    backfill_completed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_reconcile_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_sync_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_success_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # The last journal poll, quiet or not (written in batches, without touching updated_at).
    last_polled_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_error: Mapped[str | None] = mapped_column(Text)
    # While `access_denied` (a lasting 403): since when, the next attempt, attempts in a row so far.
    access_denied_since: Mapped[datetime | None] = mapped_column(Timestamp)
    access_retry_at: Mapped[datetime | None] = mapped_column(Timestamp)
    access_denied_attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    sync_requested_at: Mapped[datetime | None] = mapped_column(Timestamp)
    resync_requested_at: Mapped[datetime | None] = mapped_column(Timestamp)
    reconcile_requested_at: Mapped[datetime | None] = mapped_column(Timestamp)
    resync_since: Mapped[datetime | None] = mapped_column(Timestamp)
    resync_source: Mapped[str | None] = mapped_column(String(16))
    # Set on a `relinked` link request: the token of the same account that continues the backup.
    relinked_to: Mapped[UUID | None] = mapped_column(PgUUID(as_uuid=True), ForeignKey("user_tokens.id"))
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now(), onupdate=func.now())


class Order(Base):
    """The latest known state of one checkout form; never hard-deleted."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("token_id", "checkout_form_id"),
        # Keyset pagination: newest first within a user, id breaks ties.
        Index("ix_orders_user_id_updated_at_id", "user_id", text("updated_at DESC"), text("id DESC")),
        Index("ix_orders_user_id_bought_at_id", "user_id", text("bought_at DESC"), text("id DESC")),
        Index("ix_orders_user_id_checkout_form_id", "user_id", "checkout_form_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # No foreign key to user_tokens: orders must be restorable from Kafka into a database whose token
    # rows (which never travel on Kafka) are gone.
    token_id: Mapped[UUID] = mapped_column(PgUUID(as_uuid=True))
    user_id: Mapped[str] = mapped_column(String(128))
    checkout_form_id: Mapped[str] = mapped_column(String(64))
    revision: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # The order's fields (`core.order_fields`) are added below, one column each; the ones queries name:
    if TYPE_CHECKING:
        bought_at: Mapped[datetime | None]
        line_item_ids: Mapped[list[str]]
    # The form's JSON text exactly as fetched: the document of record (NULL in rows stored before 0006).
    order_json: Mapped[str | None] = mapped_column(Text)
    # SHA-256 of order_json: what "this content is stored" is decided by (core.documents).
    content_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    # A jsonb copy for queries only: U+FFFD where jsonb refuses a character, NULL where it refuses the text.
    order_data: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    source: Mapped[str] = mapped_column(String(16))
    first_seen_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    last_synced_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    superseded_at: Mapped[datetime | None] = mapped_column(Timestamp)
    superseded_by: Mapped[str | None] = mapped_column(String(64))
    missing_upstream_since: Mapped[datetime | None] = mapped_column(Timestamp)
    seller_id: Mapped[str | None] = mapped_column(String(64))


for _field in ORDER_FIELDS:
    # A list is never NULL (an empty array instead); every other field may be absent from a form.
    setattr(
        Order,
        _field.name,
        mapped_column(
            _field.column, nullable=not _field.is_list, server_default="{}" if _field.is_list else None
        ),
    )


class OrderLineItem(Base):
    """Which orders hold a line item: the merge check's lookup. A line item id survives a merge, so the
    forms sharing one are a merged form and its successor. Written with the order; rows of a deleted order
    are harmless (lookups join `orders`)."""

    __tablename__ = "order_line_items"

    token_id: Mapped[UUID] = mapped_column(PgUUID(as_uuid=True), primary_key=True)
    line_item_id: Mapped[str] = mapped_column(Text, primary_key=True)
    checkout_form_id: Mapped[str] = mapped_column(String(64), primary_key=True)


class OrderRevision(Base):
    """Append-only history: every distinct revision of every order, once."""

    __tablename__ = "order_revisions"
    # Every distinct content of a revision label; rows from before 0006 (no hash) stay unique by label.
    __table_args__ = (
        UniqueConstraint(
            "token_id",
            "checkout_form_id",
            "revision",
            "content_hash",
            name="uq_order_revisions_content",
            postgresql_nulls_not_distinct=True,
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    token_id: Mapped[UUID] = mapped_column(PgUUID(as_uuid=True))
    checkout_form_id: Mapped[str] = mapped_column(String(64))
    revision: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime | None] = mapped_column(Timestamp)
    order_json: Mapped[str | None] = mapped_column(Text)
    content_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Only rows stored before 0006 have it (then it is their only text); the history keeps order_json.
    order_data: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    captured_at: Mapped[datetime] = mapped_column(Timestamp)
    source: Mapped[str] = mapped_column(String(16))


class PublishOutbox(Base):
    """Transactional outbox: what a batch changed, written in its transaction, deleted once Kafka has
    acknowledged the messages, so a crash between commit and publish loses no change."""

    __tablename__ = "publish_outbox"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    payload: Mapped[str] = mapped_column(Text)


class SyncHistory(Base):
    """One row per sync run, written from `allegro.sync-runs`."""

    __tablename__ = "sync_history"
    __table_args__ = (
        CheckConstraint(_in("kind", SYNC_KINDS), name="kind"),
        CheckConstraint(_in("status", SYNC_STATUSES), name="status"),
        # Keyset paging, newest first: (started_at, id) within a user or a token.
        Index("ix_sync_history_user_id_started_at_id", "user_id", text("started_at DESC"), text("id DESC")),
        Index("ix_sync_history_token_id_started_at_id", "token_id", text("started_at DESC"), text("id DESC")),
        Index(
            "ix_sync_history_running", "token_id", "updated_at", postgresql_where=text("status = 'running'")
        ),
    )

    id: Mapped[UUID] = mapped_column(PgUUID(as_uuid=True), primary_key=True)
    token_id: Mapped[UUID] = mapped_column(PgUUID(as_uuid=True))
    user_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(Timestamp)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)
    events_read: Mapped[int] = mapped_column(Integer, server_default="0")
    orders_fetched: Mapped[int] = mapped_column(Integer, server_default="0")
    orders_changed: Mapped[int] = mapped_column(Integer, server_default="0")
    requests_made: Mapped[int] = mapped_column(Integer, server_default="0")
    cursor_from: Mapped[str | None] = mapped_column(String(32))
    cursor_to: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())


class FormRetry(Base):
    """A form that answered 404: retried with backoff until it answers or the confirmation window decides
    it merged (a successor shares its line items) or missing upstream. Never deleted: the evidence."""

    __tablename__ = "form_retries"
    __table_args__ = (
        CheckConstraint("outcome IN ('found', 'merged', 'missing')", name="outcome"),
        Index(
            "ix_form_retries_token_id_next_attempt_at",
            "token_id",
            "next_attempt_at",
            postgresql_where=text("outcome IS NULL"),
        ),
    )

    token_id: Mapped[UUID] = mapped_column(PgUUID(as_uuid=True), primary_key=True)
    checkout_form_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_missing_at: Mapped[datetime] = mapped_column(Timestamp)
    last_attempt_at: Mapped[datetime] = mapped_column(Timestamp)
    next_attempt_at: Mapped[datetime] = mapped_column(Timestamp)
    attempts: Mapped[int] = mapped_column(Integer, server_default="1")
    source: Mapped[str] = mapped_column(String(16))
    bought_at: Mapped[datetime | None] = mapped_column(Timestamp)
    line_item_ids: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    event_ids: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    outcome: Mapped[str | None] = mapped_column(String(16))
    decided_at: Mapped[datetime | None] = mapped_column(Timestamp)
    successor: Mapped[str | None] = mapped_column(String(64))
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class OrderRecord(Base):
    """The current version of one order record (core.order_records): the shipments answer, the invoices
    answer, or one waybill's tracking, as the exact JSON text Allegro sent. Never deleted: Allegro purges
    them with the order, the backup keeps them."""

    __tablename__ = "order_records"
    __table_args__ = (CheckConstraint("kind IN ('shipments', 'invoices', 'tracking')", name="kind"),)

    token_id: Mapped[UUID] = mapped_column(PgUUID(as_uuid=True), primary_key=True)
    checkout_form_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    # `{carrierId}:{waybill}` for tracking, empty for the per-order answers.
    record_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128))
    seller_id: Mapped[str | None] = mapped_column(String(64))
    document: Mapped[str] = mapped_column(Text)
    # SHA-256 of document (UTF-8).
    content_hash: Mapped[bytes] = mapped_column(LargeBinary)
    # When this content was fetched (the newest fetch wins); when the record was first fetched at all.
    fetched_at: Mapped[datetime] = mapped_column(Timestamp)
    first_fetched_at: Mapped[datetime] = mapped_column(Timestamp)
    source: Mapped[str] = mapped_column(String(16))
    # Read off the document for queries: the earliest shipment's createdAt and every `{carrierId}:{waybill}`
    # (shipments); the first DELIVERED status and the newest status code (tracking).
    shipped_at: Mapped[datetime | None] = mapped_column(Timestamp)
    waybills: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    delivered_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_code: Mapped[str | None] = mapped_column(String(32))


class OrderRecordVersion(Base):
    """Every distinct content an order record ever had, once, with when it was first fetched."""

    __tablename__ = "order_record_versions"

    token_id: Mapped[UUID] = mapped_column(PgUUID(as_uuid=True), primary_key=True)
    checkout_form_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    record_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    content_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128))
    document: Mapped[str] = mapped_column(Text)
    first_fetched_at: Mapped[datetime] = mapped_column(Timestamp)
    source: Mapped[str] = mapped_column(String(16))


class OrderRecordCheck(Base):
    """The poller's list of orders whose records (shipments, invoices) are to be read (producers.records):
    the state that made them interesting, and when a read is due (NULL: none)."""

    __tablename__ = "order_record_checks"
    __table_args__ = (
        Index(
            "ix_order_record_checks_token_id_due_at",
            "token_id",
            "due_at",
            postgresql_where=text("due_at IS NOT NULL"),
        ),
    )

    token_id: Mapped[UUID] = mapped_column(PgUUID(as_uuid=True), primary_key=True)
    checkout_form_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # `{fulfillment status}|{lineItemsSent}|{invoice required}` when last noted.
    fingerprint: Mapped[str] = mapped_column(String(160))
    reason: Mapped[str] = mapped_column(String(16))
    noted_at: Mapped[datetime] = mapped_column(Timestamp)
    checked_at: Mapped[datetime | None] = mapped_column(Timestamp)
    due_at: Mapped[datetime | None] = mapped_column(Timestamp)


class PendingWaybill(Base):
    """A waybill whose tracking is followed until a final status (DELIVERED, RETURNED) or given up."""

    __tablename__ = "pending_waybills"
    __table_args__ = (Index("ix_pending_waybills_token_id_next_at", "token_id", "next_at"),)

    token_id: Mapped[UUID] = mapped_column(PgUUID(as_uuid=True), primary_key=True)
    checkout_form_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    carrier_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    waybill: Mapped[str] = mapped_column(String(128), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(Timestamp)
    next_at: Mapped[datetime] = mapped_column(Timestamp)
