"""Fleet polling: a token's last journal poll, and sync-history indexes for keyset paging

`user_tokens.last_polled_at` is when the poller last read the token's journal, quiet or not. Quiet polls
write nothing per poll: the poller keeps the time in memory and writes many tokens' times in one
statement every few seconds (`db.queries.token_polls`), without touching `updated_at`, which the
poller's scan uses to find rows changed by others.

`sync_history` is paged newest first by `(started_at, id)` (a keyset, like orders): the per-user and
per-token indexes gain `id` so that a page is one index range whatever its depth. `user_tokens` gains
an index on `updated_at` for the poller's scan of rows changed since the last scan.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("user_tokens", sa.Column("last_polled_at", sa.DateTime(timezone=True)))
    op.create_index("ix_user_tokens_updated_at", "user_tokens", ["updated_at"])
    op.drop_index("ix_sync_history_user_id_started_at", table_name="sync_history")
    op.drop_index("ix_sync_history_token_id_started_at", table_name="sync_history")
    op.create_index(
        "ix_sync_history_user_id_started_at_id",
        "sync_history",
        ["user_id", sa.text("started_at DESC"), sa.text("id DESC")],
    )
    op.create_index(
        "ix_sync_history_token_id_started_at_id",
        "sync_history",
        ["token_id", sa.text("started_at DESC"), sa.text("id DESC")],
    )


def downgrade() -> None:
    op.drop_index("ix_sync_history_token_id_started_at_id", table_name="sync_history")
    op.drop_index("ix_sync_history_user_id_started_at_id", table_name="sync_history")
    op.create_index(
        "ix_sync_history_token_id_started_at", "sync_history", ["token_id", sa.text("started_at DESC")]
    )
    op.create_index(
        "ix_sync_history_user_id_started_at", "sync_history", ["user_id", sa.text("started_at DESC")]
    )
    op.drop_index("ix_user_tokens_updated_at", table_name="user_tokens")
    op.drop_column("user_tokens", "last_polled_at")
