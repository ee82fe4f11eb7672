"""Sync runs that nobody ended: status `abandoned`, an index of the runs still `running`; reconcile-now

A run is `running` from its `started` record until its `finished` or `failed` one. A poller killed
mid-run sends neither, so the run stayed `running` forever. Such runs are now closed as `abandoned`
(by the poller that takes the token over, or by the sweep of runs silent for longer than their lease);
the partial index keeps both lookups off the full table, which grows by one row per run.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _replace_status_check(statuses: str) -> None:
    # 0001 named it through the naming convention twice (ck_sync_history_ck_sync_history_status); the
    # replacement gets the name the models give it, so either may exist here.
    op.execute("ALTER TABLE sync_history DROP CONSTRAINT IF EXISTS ck_sync_history_ck_sync_history_status")
    op.execute("ALTER TABLE sync_history DROP CONSTRAINT IF EXISTS ck_sync_history_status")
    op.execute(
        f"ALTER TABLE sync_history ADD CONSTRAINT ck_sync_history_status CHECK (status IN ({statuses}))"
    )


def upgrade() -> None:
    # An operator's reconcile-now request (`POST .../reconcile`), cleared by the poller once it ran.
    op.execute("ALTER TABLE user_tokens ADD COLUMN reconcile_requested_at timestamptz")
    _replace_status_check("'running', 'finished', 'failed', 'abandoned'")
    op.execute(
        "CREATE INDEX ix_sync_history_running ON sync_history (token_id, updated_at) WHERE status = 'running'"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE user_tokens DROP COLUMN reconcile_requested_at")
    op.execute("DROP INDEX ix_sync_history_running")
    op.execute("UPDATE sync_history SET status = 'failed' WHERE status = 'abandoned'")
    _replace_status_check("'running', 'finished', 'failed'")
