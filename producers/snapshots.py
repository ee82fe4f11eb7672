"""Snapshot envelopes built from fetched checkout forms (or from the news that a form is gone)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from allegro_api import FormSnapshot
from core.contract import GoneReason, SnapshotEnvelope, SnapshotSource


@dataclass(frozen=True, slots=True)
class TokenIdentity:
    """Who a snapshot belongs to."""

    token_id: UUID
    user_id: str
    seller_id: str


def form_envelope(
    identity: TokenIdentity,
    snapshot: FormSnapshot,
    *,
    source: SnapshotSource,
    sync_run_id: UUID,
    fetched_at: datetime,
    event_ids: Sequence[str] = (),
) -> SnapshotEnvelope:
    """The envelope of a fetched form: its JSON text plus the columns the processor indexes."""
    facts = snapshot.facts
    return SnapshotEnvelope(
        token_id=identity.token_id,
        user_id=identity.user_id,
        seller_id=identity.seller_id,
        checkout_form_id=facts.id,
        revision=facts.revision,
        updated_at=facts.updated_at,
        bought_at=facts.bought_at,
        status=facts.status,
        fulfillment_status=facts.fulfillment_status,
        buyer_login=facts.buyer_login,
        total_amount=facts.total_amount,
        currency=facts.currency,
        line_item_ids=list(facts.line_item_ids),
        fetched_at=fetched_at,
        source=source,
        event_ids=list(event_ids),
        sync_run_id=sync_run_id,
        checkout_form=snapshot.raw.decode(),
    )


def gone_envelope(
    identity: TokenIdentity,
    checkout_form_id: str,
    *,
    reason: GoneReason,
    bought_at: datetime | None,
    source: SnapshotSource,
    sync_run_id: UUID,
    fetched_at: datetime,
    event_ids: Sequence[str] = (),
) -> SnapshotEnvelope:
    """The envelope saying a form was decided gone (`producers.missing`): never a delete, only a mark.

    `merged` when a successor shares its line items, `purged` (missing upstream) otherwise; a single 404
    is never enough for either."""
    return SnapshotEnvelope(
        token_id=identity.token_id,
        user_id=identity.user_id,
        seller_id=identity.seller_id,
        checkout_form_id=checkout_form_id,
        bought_at=bought_at,
        fetched_at=fetched_at,
        source=source,
        event_ids=list(event_ids),
        sync_run_id=sync_run_id,
        gone=reason,
    )
