"""The order's delivery method name as a column (`orders.delivery_method_name`), for filtering

`core.order_fields` declares it: read off the form's `delivery.method.name`. Stored orders get it from
their query copy (`order_data`), whose texts hold U+FFFD where the form holds U+0000 or a lone surrogate,
as the poller's extraction does; orders stored without a query copy (jsonb refused their text) keep it
NULL until their next revision is stored.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("delivery_method_name", sa.Text()))
    op.execute(
        """UPDATE orders SET delivery_method_name = order_data #>> '{delivery,method,name}'
        WHERE jsonb_typeof(order_data #> '{delivery,method,name}') = 'string'"""
    )


def downgrade() -> None:
    op.drop_column("orders", "delivery_method_name")
