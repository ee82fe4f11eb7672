"""Checkout forms compressed with lz4 instead of pglz

A stored form (about 3 KB of JSONB) is over the TOAST threshold, so PostgreSQL compresses it on every
write, twice per new order (`orders` and `order_revisions`). With pglz that compression was the largest
single cost of the sink's upsert: the same bulk upsert of 20,000 orders ran at 6,400-6,800 orders/s with
pglz and 8,900-9,400 with lz4, for about 12 % more space. lz4 also decompresses faster for the API.

Only values written from now on use lz4; stored ones stay readable as they are. A server built without
lz4 (it is optional at build time) keeps pglz.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DOCUMENTS = (("orders", "order_data"), ("order_revisions", "order_data"))


def _set_compression(method: str) -> None:
    for table, column in _DOCUMENTS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {method}")


def upgrade() -> None:
    lz4_available = op.get_bind().exec_driver_sql(
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
    )
    if lz4_available.scalar():
        _set_compression("lz4")


def downgrade() -> None:
    _set_compression("pglz")
