"""Token rows to response models; the row type has no secret, so nothing secret can slip through."""

from __future__ import annotations

from datetime import datetime

from api.schemas.tokens import (
    AccessDeniedState,
    BackfillState,
    LinkState,
    ResyncState,
    TokenDetail,
    TokenSummary,
)
from core.redaction import scrub_optional
from core.states import TokenStatus
from db.queries.tokens import StoredCounts, TokenView


def token_summary(token: TokenView, *, now: datetime) -> TokenSummary:
    """The public state of a token."""
    link = None
    if token.status == TokenStatus.PENDING:
        link = LinkState(
            user_code=token.user_code,
            verification_uri=token.verification_uri,
            verification_uri_complete=token.verification_uri_complete,
            expires_at=token.device_expires_at,
            interval=token.device_interval,
        )
    resync = None
    if token.resync_requested_at is not None:
        resync = ResyncState(
            requested_at=token.resync_requested_at, since=token.resync_since, source=token.resync_source
        )
    # Stored errors are scrubbed when written; scrubbing again keeps rows written before that safe too.
    last_error = scrub_optional(token.last_error)
    access_denied = None
    if token.status == TokenStatus.ACCESS_DENIED:
        access_denied = AccessDeniedState(
            since=token.access_denied_since,
            next_attempt_at=token.access_retry_at,
            attempts=token.access_denied_attempts,
            reason=last_error,
        )
    lag = (now - token.last_event_at).total_seconds() if token.last_event_at is not None else None
    return TokenSummary(
        id=token.id,
        user_id=token.user_id,
        status=token.status,
        seller_id=token.seller_id,
        login=token.login,
        created_at=token.created_at,
        updated_at=token.updated_at,
        link=link,
        last_sync_at=token.last_sync_at,
        last_success_at=token.last_success_at,
        last_polled_at=token.last_polled_at,
        last_error=last_error,
        access_denied=access_denied,
        last_event_at=token.last_event_at,
        journal_lag_seconds=lag,
        event_cursor=token.event_cursor,
        cursor_updated_at=token.cursor_updated_at,
        last_reconcile_at=token.last_reconcile_at,
        backfill=BackfillState(progress=token.backfill_progress, completed_at=token.backfill_completed_at),
        sync_requested_at=token.sync_requested_at,
        resync=resync,
        relinked_to=token.relinked_to,
    )


def token_detail(token: TokenView, counts: StoredCounts, *, now: datetime) -> TokenDetail:
    """The public state of a token with its stored counts."""
    summary = token_summary(token, now=now)
    return TokenDetail(**summary.model_dump(), orders_stored=counts.orders, revisions_stored=counts.revisions)
