"""Forms stored as the exact text Allegro sent, with a content hash; order_data is the query copy

`order_json` (text) is the document of record: the form's JSON text exactly as fetched, which the API,
exports and Kafka records give back. PostgreSQL's jsonb refuses `\\u0000` and escaped lone surrogates,
and reorders keys and respaces what it keeps, so `orders.order_data` (jsonb) is now only a copy for
queries (with U+FFFD for what jsonb refuses, NULL where jsonb refuses the text altogether), and new
`order_revisions` rows have none (the sink's first load ran about a tenth slower with a second copy). `content_hash` (SHA-256
of `order_json`) tells whether a snapshot's content is stored already; a revision label alone does
not: the history keeps every distinct content, so its unique key takes the hash too. NULLS NOT DISTINCT
keeps rows stored before this migration (no text, no hash) unique by their revision as before.

Rows stored before keep `order_json` and `content_hash` NULL (readers fall back to `order_data::text`):
filling them would rewrite both tables for no gain, since a jsonb value's text is not what Allegro sent.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("orders", "order_revisions")
_OLD_UNIQUE = "uq_order_revisions_token_id_checkout_form_id_revision"
_NEW_UNIQUE = "uq_order_revisions_content"


def upgrade() -> None:
    lz4_available = op.get_bind().exec_driver_sql(
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
    )
    lz4 = bool(lz4_available.scalar())
    for table in _TABLES:
        op.add_column(table, sa.Column("order_json", sa.Text()))
        op.add_column(table, sa.Column("content_hash", postgresql.BYTEA()))
        op.alter_column(table, "order_data", nullable=True)
        if lz4:  # as 0005 did for order_data: the text is over the TOAST threshold too
            op.execute(f"ALTER TABLE {table} ALTER COLUMN order_json SET COMPRESSION lz4")
    op.execute(
        f"""ALTER TABLE order_revisions ADD CONSTRAINT {_NEW_UNIQUE}
        UNIQUE NULLS NOT DISTINCT (token_id, checkout_form_id, revision, content_hash)"""
    )
    op.drop_constraint(_OLD_UNIQUE, "order_revisions", type_="unique")


def downgrade() -> None:
    # Revisions that differ only in content keep the earliest captured one.
    op.execute(
        """DELETE FROM order_revisions r USING order_revisions o
        WHERE r.token_id = o.token_id AND r.checkout_form_id = o.checkout_form_id
            AND r.revision = o.revision AND (r.captured_at, r.id) > (o.captured_at, o.id)"""
    )
    op.create_unique_constraint(_OLD_UNIQUE, "order_revisions", ["token_id", "checkout_form_id", "revision"])
    op.drop_constraint(_NEW_UNIQUE, "order_revisions", type_="unique")
    for table in _TABLES:
        # A text jsonb refuses (U+0000, a lone surrogate, a number beyond numeric) is kept as a jsonb string.
        op.execute(
            f"""DO $$ DECLARE r record; BEGIN
                FOR r IN SELECT id, order_json FROM {table} WHERE order_data IS NULL LOOP
                    BEGIN
                        UPDATE {table} SET order_data = r.order_json::jsonb WHERE id = r.id;
                    EXCEPTION WHEN others THEN
                        UPDATE {table} SET order_data = to_jsonb(r.order_json) WHERE id = r.id;
                    END;
                END LOOP;
            END $$"""  # noqa: S608 - table names are constants
        )
        op.alter_column(table, "order_data", nullable=False)
        op.drop_column(table, "content_hash")
        op.drop_column(table, "order_json")
