"""CHECK constraints get the names the models give them

0001 and 0009 named three CHECK constraints through the naming convention twice
(`ck_user_tokens_ck_user_tokens_status`, `ck_sync_history_ck_sync_history_kind`,
`ck_form_retries_ck_form_retries_outcome`); they are renamed to `ck_<table>_<column>`, as the models
(`db.models`, values from `core.states`) and the error messages that name them have it. Their
definitions are unchanged.

A later migration that replaces one of them must name it as it is now, past alembic's naming
convention: `op.drop_constraint(op.f("ck_user_tokens_status"), "user_tokens", type_="check")` (a plain
"ck_user_tokens_status" is prefixed again by the convention, as 0006 and 0007 relied on) or raw SQL as
in 0008.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RENAMED = (
    ("user_tokens", "ck_user_tokens_ck_user_tokens_status", "ck_user_tokens_status"),
    ("sync_history", "ck_sync_history_ck_sync_history_kind", "ck_sync_history_kind"),
    ("form_retries", "ck_form_retries_ck_form_retries_outcome", "ck_form_retries_outcome"),
)


def _rename(table: str, old: str, new: str) -> None:
    # Only when the old name is there: a database created otherwise may already use the new one. The
    # names are the constants above, never input.
    op.execute(
        f"""
        DO $$ BEGIN
            IF EXISTS (SELECT 1 FROM pg_constraint WHERE conname = '{old}'
                       AND conrelid = '{table}'::regclass) THEN
                ALTER TABLE {table} RENAME CONSTRAINT {old} TO {new};
            END IF;
        END $$
        """  # noqa: S608
    )


def upgrade() -> None:
    for table, old, new in _RENAMED:
        _rename(table, old, new)


def downgrade() -> None:
    for table, old, new in _RENAMED:
        _rename(table, new, old)
