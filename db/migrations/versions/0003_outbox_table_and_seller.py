"""Outbox in a table of its own; orders.seller_id

The outbox column on `orders` made every acknowledged change rewrite the order row and every index on it
(the partial index on the column ruled out a HOT update); one narrow row per batch costs an insert and a
delete. `seller_id` lets a change be published without its token row.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_orders_pending_change", table_name="orders")
    op.drop_column("orders", "pending_change")
    op.add_column("orders", sa.Column("seller_id", sa.String(64)))
    # A merge check looks line items up for every new order; with fastupdate, each lookup also scans the
    # index's pending list of recent inserts, which cost more than the whole batch upsert.
    op.execute("ALTER INDEX ix_orders_line_item_ids SET (fastupdate = off)")
    op.create_table(
        "publish_outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_publish_outbox"),
    )


def downgrade() -> None:
    op.execute("ALTER INDEX ix_orders_line_item_ids RESET (fastupdate)")
    op.drop_table("publish_outbox")
    op.drop_column("orders", "seller_id")
    op.add_column("orders", sa.Column("pending_change", sa.String(16)))
    op.create_index(
        "ix_orders_pending_change",
        "orders",
        ["token_id"],
        postgresql_where=sa.text("pending_change IS NOT NULL"),
    )
