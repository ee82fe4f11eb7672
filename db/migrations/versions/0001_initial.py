"""user_tokens, orders, order_revisions, sync_history

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "user_tokens",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("seller_id", sa.String(64)),
        sa.Column("login", sa.String(256)),
        sa.Column("status", sa.String(16), server_default="pending", nullable=False),
        sa.Column("access_token", sa.Text()),
        sa.Column("refresh_token", sa.Text()),
        sa.Column("access_expires_at", TS),
        sa.Column("scope", sa.Text()),
        sa.Column("device_code", sa.Text()),
        sa.Column("user_code", sa.String(32)),
        sa.Column("verification_uri", sa.Text()),
        sa.Column("verification_uri_complete", sa.Text()),
        sa.Column("device_expires_at", TS),
        sa.Column("device_interval", sa.Integer()),
        sa.Column("device_next_poll_at", TS),
        sa.Column("event_cursor", sa.String(32)),
        sa.Column("cursor_updated_at", TS),
        sa.Column("last_event_at", TS),
        sa.Column("backfill_progress", postgresql.JSONB()),
        sa.Column("backfill_completed_at", TS),
        sa.Column("last_reconcile_at", TS),
        sa.Column("last_sync_at", TS),
        sa.Column("last_success_at", TS),
        sa.Column("last_error", sa.Text()),
        sa.Column("sync_requested_at", TS),
        sa.Column("resync_requested_at", TS),
        sa.Column("resync_since", TS),
        sa.Column("resync_source", sa.String(16)),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_user_tokens"),
        sa.CheckConstraint(
            "status IN ('pending', 'active', 'needs_reauth', 'unlinked', 'link_expired', 'link_denied')",
            name="ck_user_tokens_status",
        ),
    )
    op.create_index(
        "uq_user_tokens_active_user_seller",
        "user_tokens",
        ["user_id", "seller_id"],
        unique=True,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_index("ix_user_tokens_user_id_created_at", "user_tokens", ["user_id", "created_at"])
    op.create_index("ix_user_tokens_status", "user_tokens", ["status"])

    op.create_table(
        "orders",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("token_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("checkout_form_id", sa.String(64), nullable=False),
        sa.Column("revision", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32)),
        sa.Column("fulfillment_status", sa.String(32)),
        sa.Column("buyer_login", sa.String(256)),
        sa.Column("bought_at", TS),
        sa.Column("updated_at", TS),
        sa.Column("total_amount", sa.Numeric(16, 2)),
        sa.Column("currency", sa.String(8)),
        sa.Column("line_item_ids", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("order_data", postgresql.JSONB(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("first_seen_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("last_synced_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("superseded_at", TS),
        sa.Column("superseded_by", sa.String(64)),
        sa.Column("missing_upstream_since", TS),
        sa.Column("pending_change", sa.String(16)),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
        sa.UniqueConstraint("token_id", "checkout_form_id", name="uq_orders_token_id_checkout_form_id"),
    )
    op.create_index(
        "ix_orders_user_id_updated_at_id",
        "orders",
        ["user_id", sa.text("updated_at DESC"), sa.text("id DESC")],
    )
    op.create_index(
        "ix_orders_user_id_bought_at_id", "orders", ["user_id", sa.text("bought_at DESC"), sa.text("id DESC")]
    )
    op.create_index("ix_orders_line_item_ids", "orders", ["line_item_ids"], postgresql_using="gin")
    op.create_index(
        "ix_orders_pending_change",
        "orders",
        ["token_id"],
        postgresql_where=sa.text("pending_change IS NOT NULL"),
    )

    op.create_table(
        "order_revisions",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("token_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("checkout_form_id", sa.String(64), nullable=False),
        sa.Column("revision", sa.String(64), nullable=False),
        sa.Column("updated_at", TS),
        sa.Column("order_data", postgresql.JSONB(), nullable=False),
        sa.Column("captured_at", TS, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_order_revisions"),
        sa.UniqueConstraint(
            "token_id",
            "checkout_form_id",
            "revision",
            name="uq_order_revisions_token_id_checkout_form_id_revision",
        ),
    )

    op.create_table(
        "sync_history",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("token_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("events_read", sa.Integer(), server_default="0", nullable=False),
        sa.Column("orders_fetched", sa.Integer(), server_default="0", nullable=False),
        sa.Column("orders_changed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("requests_made", sa.Integer(), server_default="0", nullable=False),
        sa.Column("cursor_from", sa.String(32)),
        sa.Column("cursor_to", sa.String(32)),
        sa.Column("error", sa.Text()),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sync_history"),
        sa.CheckConstraint(
            "kind IN ('backfill', 'journal', 'reconcile', 'resync')", name="ck_sync_history_kind"
        ),
        sa.CheckConstraint("status IN ('running', 'finished', 'failed')", name="ck_sync_history_status"),
    )
    op.create_index(
        "ix_sync_history_user_id_started_at", "sync_history", ["user_id", sa.text("started_at DESC")]
    )
    op.create_index(
        "ix_sync_history_token_id_started_at", "sync_history", ["token_id", sa.text("started_at DESC")]
    )


def downgrade() -> None:
    op.drop_table("sync_history")
    op.drop_table("order_revisions")
    op.drop_table("orders")
    op.drop_table("user_tokens")
