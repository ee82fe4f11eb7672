"""orders (user_id, checkout_form_id): one index probe for a user's order by id

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_orders_user_id_checkout_form_id", "orders", ["user_id", "checkout_form_id"])


def downgrade() -> None:
    op.drop_index("ix_orders_user_id_checkout_form_id", table_name="orders")
