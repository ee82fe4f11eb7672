"""The states a linked account and a sync run go through, named once.

The database's CHECK constraints (`db.models`, created by the migrations), the API's schemas
(`api.schemas.common`) and the Kafka contract (`core.contract.SyncKind`) take their values from these
enums; `tests/foundation/test_states.py` fails when one of them drifts.
"""

from __future__ import annotations

from enum import StrEnum


class TokenStatus(StrEnum):
    """A linked account's state (`user_tokens.status`).

    pending: linking; active: syncing; access_denied: Allegro answers 403 (scope or account problem),
    tried again at growing intervals, active again by itself once access works; needs_reauth: the seller
    must link again; unlinked; link_expired / link_denied: a link that never completed; relinked: a link
    request for an account the user had linked before, whose token (`relinked_to`) took the credentials.
    """

    PENDING = "pending"
    ACTIVE = "active"
    NEEDS_REAUTH = "needs_reauth"
    UNLINKED = "unlinked"
    LINK_EXPIRED = "link_expired"
    LINK_DENIED = "link_denied"
    ACCESS_DENIED = "access_denied"
    RELINKED = "relinked"


class SyncKind(StrEnum):
    """What a sync run does (`sync_history.kind`, `allegro.sync-runs`' `kind`)."""

    BACKFILL = "backfill"
    JOURNAL = "journal"
    RECONCILE = "reconcile"
    RESYNC = "resync"


class SyncStatus(StrEnum):
    """Where a sync run stands (`sync_history.status`)."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    ABANDONED = "abandoned"
