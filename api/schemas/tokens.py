"""Token (linked seller account) models; none of them has a field for a secret."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.schemas.common import Instant
from core.states import TokenStatus


class LinkStarted(BaseModel):
    """A link in progress: show the user `verification_uri_complete` (or the URI and the code)."""

    token_id: UUID
    status: Literal["pending"] = "pending"
    user_code: str = Field(examples=["cbt3zdu4g"])
    verification_uri: str = Field(examples=["https://allegro.pl/skojarz-aplikacje"])
    verification_uri_complete: str | None = Field(
        examples=["https://allegro.pl/skojarz-aplikacje?code=cbt3zdu4g"]
    )
    expires_at: datetime
    interval: int = Field(description="Seconds between the background polls of Allegro's token endpoint.")


class LinkState(BaseModel):
    """The device-flow state of a pending token."""

    user_code: str | None
    verification_uri: str | None
    verification_uri_complete: str | None
    expires_at: datetime | None
    interval: int | None


class BackfillState(BaseModel):
    """How far the 12-month backfill got."""

    progress: dict[str, Any] | None = Field(description="Per-window progress as the poller records it.")
    completed_at: datetime | None


class ResyncState(BaseModel):
    """The last resync request."""

    requested_at: datetime
    since: datetime | None
    source: str | None


class AccessDeniedState(BaseModel):
    """Why and since when Allegro refuses access, and when the poller tries again."""

    since: datetime | None = Field(description="First refusal of this streak.")
    next_attempt_at: datetime | None = Field(description="When the poller tries the account again.")
    attempts: int = Field(description="Refusals in a row; the wait doubles with each, up to a cap.")
    reason: str | None = Field(description="Allegro's answer, e.g. `AccessDenied` (as in `last_error`).")


class TokenSummary(BaseModel):
    """A linked (or linking) seller account and its sync state."""

    id: UUID
    user_id: str
    status: TokenStatus = Field(
        description="pending, active, access_denied (Allegro answers 403; retried at growing intervals, "
        "active again by itself once access works), needs_reauth (link again), unlinked, link_expired, "
        "link_denied."
    )
    seller_id: str | None
    login: str | None
    created_at: datetime
    updated_at: datetime
    link: LinkState | None = Field(description="Only while the token is pending.")
    last_sync_at: datetime | None
    last_success_at: datetime | None
    last_polled_at: datetime | None = Field(
        description="The last read of the account's order journal, whether it found events or not (written "
        "every few seconds); a read that found none leaves no sync run."
    )
    last_error: str | None = Field(description="The last failure, secrets removed; null after a success.")
    access_denied: AccessDeniedState | None = Field(description="Only while the token is access_denied.")
    last_event_at: datetime | None = Field(description="Time of the newest journal event seen.")
    journal_lag_seconds: float | None = Field(description="Now minus `last_event_at`.")
    event_cursor: str | None
    cursor_updated_at: datetime | None
    last_reconcile_at: datetime | None
    backfill: BackfillState
    sync_requested_at: datetime | None
    resync: ResyncState | None
    relinked_to: UUID | None = Field(
        default=None,
        description="On a `relinked` link request: the token of the same seller account that took the new "
        "credentials and goes on with its backup (same orders, same history).",
    )


class TokenDetail(TokenSummary):
    """A token with counts of what is stored for it."""

    orders_stored: int
    revisions_stored: int


class TokenList(BaseModel):
    """Every token of the user, newest first."""

    items: list[TokenSummary]


class NoOptions(BaseModel):
    """The body of a request that takes no options: none, or `{}`. Anything else is refused (422), so a
    client's misplaced option is not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class ResyncRequest(BaseModel):
    """Fetch everything again since a time: from Allegro, or replayed from Kafka."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"source": "allegro", "since": "2026-01-01T00:00:00Z"}]},
    )

    source: Literal["allegro", "kafka"]
    since: Instant

    @field_validator("since")
    @classmethod
    def _not_in_future(cls, value: datetime) -> datetime:
        if value > datetime.now(UTC):
            raise ValueError("since must not be in the future")
        return value


class SyncAccepted(BaseModel):
    """The request is recorded; the poller acts on it on its next round."""

    token_id: UUID
    kind: Literal["sync", "resync", "reconcile"]
    requested_at: datetime
    source: Literal["allegro", "kafka"] | None = None
    since: datetime | None = None
