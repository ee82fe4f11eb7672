"""Forms that answered 404: retried with backoff, then decided (found, merged, missing) with the evidence

A single `CheckoutFormNotFoundException` is not proof that a form is gone: Allegro answers 404 for a
live order now and then, and for a new order for a while after its first event (field cases
transient-404, not-yet-visible). The poller records each such form here and GETs it again with backoff;
only after a confirmation window does it decide that the form was merged (a successor shares its line
items) or is missing upstream (purged). Rows are never deleted: a decided row is the evidence.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import UUID as PgUUID

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "form_retries",
        sa.Column("token_id", PgUUID(as_uuid=True), nullable=False),
        sa.Column("checkout_form_id", sa.String(64), nullable=False),
        sa.Column("first_missing_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("bought_at", sa.DateTime(timezone=True)),
        sa.Column("line_item_ids", ARRAY(sa.Text()), nullable=False, server_default="{}"),
        sa.Column("event_ids", ARRAY(sa.Text()), nullable=False, server_default="{}"),
        sa.Column("outcome", sa.String(16)),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("successor", sa.String(64)),
        sa.Column("evidence", JSONB()),
        sa.PrimaryKeyConstraint("token_id", "checkout_form_id", name="pk_form_retries"),
        sa.CheckConstraint("outcome IN ('found', 'merged', 'missing')", name="ck_form_retries_outcome"),
    )
    op.create_index(
        "ix_form_retries_token_id_next_attempt_at",
        "form_retries",
        ["token_id", "next_attempt_at"],
        postgresql_where=sa.text("outcome IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_form_retries_token_id_next_attempt_at", table_name="form_retries")
    op.drop_table("form_retries")
