"""Snapshot envelopes built from fetched checkout forms (or from the news that a form is gone)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
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
    """The envelope of a fetched form: its JSON text plus the order's fields (`core.order_fields`)."""
    facts = snapshot.facts
    return _envelope(
        identity,
        facts.id,
        (source, sync_run_id, fetched_at, event_ids),
        revision=facts.revision,
        updated_at=facts.updated_at,
        checkout_form=snapshot.raw.decode(),
        **facts.columns,
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
    # The one order field a gone form still has: where the poller looks for its successor.
    return _envelope(
        identity,
        checkout_form_id,
        (source, sync_run_id, fetched_at, event_ids),
        gone=reason,
        bought_at=bought_at,
    )


def _envelope(
    identity: TokenIdentity,
    checkout_form_id: str,
    run: tuple[SnapshotSource, UUID, datetime, Sequence[str]],
    **members: Any,
) -> SnapshotEnvelope:
    """An envelope of the token's form; `run` is (source, sync run, fetch time, journal event ids)."""
    source, sync_run_id, fetched_at, event_ids = run
    return SnapshotEnvelope(
        token_id=identity.token_id,
        user_id=identity.user_id,
        seller_id=identity.seller_id,
        checkout_form_id=checkout_form_id,
        fetched_at=fetched_at,
        source=source,
        event_ids=list(event_ids),
        sync_run_id=sync_run_id,
        **members,
    )
