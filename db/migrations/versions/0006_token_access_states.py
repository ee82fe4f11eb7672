"""Token status access_denied, with the backoff of its probes

A lasting 403 (`AccessDenied`: scope or account problems, allegro-api #12884, #11939) used to leave the
token `active`, retried every journal interval with only `last_error` showing it. The token now becomes
`access_denied`; the poller tries it again at growing intervals (`access_retry_at`, the n-th attempt in
a row `access_denied_attempts`) and makes it `active` again by itself when a run works.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEFORE = ("pending", "active", "needs_reauth", "unlinked", "link_expired", "link_denied")
_AFTER = (*_BEFORE, "access_denied")


def _status_check(values: tuple[str, ...]) -> str:
    return "status IN (" + ", ".join(f"'{value}'" for value in values) + ")"


def upgrade() -> None:
    op.drop_constraint("ck_user_tokens_status", "user_tokens", type_="check")
    op.create_check_constraint("ck_user_tokens_status", "user_tokens", _status_check(_AFTER))
    op.add_column("user_tokens", sa.Column("access_denied_since", sa.DateTime(timezone=True)))
    op.add_column("user_tokens", sa.Column("access_retry_at", sa.DateTime(timezone=True)))
    op.add_column(
        "user_tokens",
        sa.Column("access_denied_attempts", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    op.execute("UPDATE user_tokens SET status = 'active' WHERE status = 'access_denied'")
    op.drop_column("user_tokens", "access_denied_attempts")
    op.drop_column("user_tokens", "access_retry_at")
    op.drop_column("user_tokens", "access_denied_since")
    op.drop_constraint("ck_user_tokens_status", "user_tokens", type_="check")
    op.create_check_constraint("ck_user_tokens_status", "user_tokens", _status_check(_BEFORE))
