"""Relinking an account continues its backup: `relinked` link requests point at the token they renewed

Linking a seller account that the user already linked (after `needs_reauth`, after an unlink, or twice in
a row) used to activate the new row and unlink the old one, so the seller's orders were stored a second
time under the new token id. Now the existing token takes the new credentials and keeps its orders,
revisions, cursor and backfill; the new row ends as `relinked`, with `relinked_to` naming that token.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEFORE = ("pending", "active", "needs_reauth", "unlinked", "link_expired", "link_denied", "access_denied")
_AFTER = (*_BEFORE, "relinked")


def _status_check(statuses: tuple[str, ...]) -> str:
    return "status IN ({})".format(", ".join(f"'{status}'" for status in statuses))


def upgrade() -> None:
    op.add_column(
        "user_tokens",
        sa.Column(
            "relinked_to",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("user_tokens.id", name="fk_user_tokens_relinked_to_user_tokens"),
            nullable=True,
        ),
    )
    op.drop_constraint("ck_user_tokens_status", "user_tokens", type_="check")
    op.create_check_constraint("ck_user_tokens_status", "user_tokens", _status_check(_AFTER))


def downgrade() -> None:
    op.execute("UPDATE user_tokens SET status = 'unlinked' WHERE status = 'relinked'")
    op.drop_constraint("ck_user_tokens_status", "user_tokens", type_="check")
    op.create_check_constraint("ck_user_tokens_status", "user_tokens", _status_check(_BEFORE))
    op.drop_column("user_tokens", "relinked_to")
