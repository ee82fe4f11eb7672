"""Order records: shipments, parcel tracking and invoices with their history; the poller's work lists

`order_records` holds the current version of each record (the exact JSON text Allegro sent, its SHA-256,
and a few columns read off it for queries), `order_record_versions` every distinct content once. Both
are filled by the worker from `allegro.order-records` and rebuilt from it by replay; nothing is deleted.
`order_record_checks` (orders whose shipments and invoices are due a read) and `pending_waybills`
(waybills followed until a final tracking status) are the poller's lists, so a restart loses nothing.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _key_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("token_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("checkout_form_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("record_key", sa.String(200), nullable=False),
    ]


def upgrade() -> None:
    stamp = sa.DateTime(timezone=True)
    op.create_table(
        "order_records",
        *_key_columns(),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("seller_id", sa.String(64)),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("content_hash", postgresql.BYTEA(), nullable=False),
        sa.Column("fetched_at", stamp, nullable=False),
        sa.Column("first_fetched_at", stamp, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("shipped_at", stamp),
        sa.Column("waybills", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("delivered_at", stamp),
        sa.Column("last_code", sa.String(32)),
        sa.CheckConstraint("kind IN ('shipments', 'invoices', 'tracking')", name="kind"),
        sa.PrimaryKeyConstraint(
            "token_id", "checkout_form_id", "kind", "record_key", name="pk_order_records"
        ),
    )
    op.create_table(
        "order_record_versions",
        *_key_columns(),
        sa.Column("content_hash", postgresql.BYTEA(), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("first_fetched_at", stamp, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint(
            "token_id",
            "checkout_form_id",
            "kind",
            "record_key",
            "content_hash",
            name="pk_order_record_versions",
        ),
    )
    op.create_table(
        "order_record_checks",
        sa.Column("token_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("checkout_form_id", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(160), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("noted_at", stamp, nullable=False),
        sa.Column("checked_at", stamp),
        sa.Column("due_at", stamp),
        sa.PrimaryKeyConstraint("token_id", "checkout_form_id", name="pk_order_record_checks"),
    )
    op.create_index(
        "ix_order_record_checks_token_id_due_at",
        "order_record_checks",
        ["token_id", "due_at"],
        postgresql_where=sa.text("due_at IS NOT NULL"),
    )
    op.create_table(
        "pending_waybills",
        sa.Column("token_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("checkout_form_id", sa.String(64), nullable=False),
        sa.Column("carrier_id", sa.String(64), nullable=False),
        sa.Column("waybill", sa.String(128), nullable=False),
        sa.Column("added_at", stamp, nullable=False),
        sa.Column("next_at", stamp, nullable=False),
        sa.PrimaryKeyConstraint(
            "token_id", "checkout_form_id", "carrier_id", "waybill", name="pk_pending_waybills"
        ),
    )
    op.create_index("ix_pending_waybills_token_id_next_at", "pending_waybills", ["token_id", "next_at"])


def downgrade() -> None:
    op.drop_index("ix_pending_waybills_token_id_next_at", table_name="pending_waybills")
    op.drop_table("pending_waybills")
    op.drop_index("ix_order_record_checks_token_id_due_at", table_name="order_record_checks")
    op.drop_table("order_record_checks")
    op.drop_table("order_record_versions")
    op.drop_table("order_records")
