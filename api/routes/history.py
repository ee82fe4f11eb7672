"""`GET /v1/users/{user_id}/sync-history`: the user's sync runs, newest first, keyset-paged."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Annotated
from uuid import UUID

import orjson
from fastapi import Query

from api.cursors import InvalidCursor
from api.deps import ConfigDep, Limit, SessionDep, TokenFilter, UserId, v1_router
from api.problems import FieldError, ProblemError, problem_responses
from api.schemas.orders import SyncRunOut, SyncRunPage
from core.redaction import scrub_optional
from core.states import SyncKind, SyncStatus
from db.queries.history import RunKeyset, list_sync_runs

router = v1_router("sync history")

Cursor = Annotated[
    str | None,
    Query(
        max_length=512, description="`next_cursor` of the previous page; only valid with the same filters."
    ),
]


def _scope(user_id: str, token_id: UUID | None, kind: str | None, status: str | None) -> str:
    """What a cursor is bound to: the user and every filter."""
    canonical = orjson.dumps(
        {"listing": "sync-history", "user_id": user_id, "token_id": token_id, "kind": kind, "status": status},
        option=orjson.OPT_SORT_KEYS,
        default=str,
    )
    return hashlib.sha256(canonical).hexdigest()[:32]


@router.get(
    "/sync-history", summary="Sync runs (keyset pagination)", responses=problem_responses(400, 401, 422)
)
async def get_sync_history(
    user_id: UserId,
    session: SessionDep,
    config: ConfigDep,
    token_id: TokenFilter = None,
    kind: Annotated[SyncKind | None, Query()] = None,
    status: Annotated[SyncStatus | None, Query()] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> SyncRunPage:
    """Runs of every token of the user (or of one), newest start first. Only runs that did work are
    recorded: a journal read that found no event is no run (the token's `last_polled_at` shows it).
    Runs recorded while paging never shift or repeat the following pages."""
    scope = _scope(user_id, token_id, kind, status)
    after = None
    if cursor is not None:
        try:
            after = config.cursors.decode_run(cursor, query=scope)
        except InvalidCursor as exc:
            errors = [FieldError(loc=["query", "cursor"], msg=str(exc), type="invalid_cursor")]
            raise ProblemError(400, str(exc), slug="invalid-cursor", errors=errors) from exc
    # One row more than asked tells whether another page exists, so the last page has no cursor.
    runs = await list_sync_runs(
        session, user_id=user_id, token_id=token_id, kind=kind, status=status, limit=limit + 1, after=after
    )
    next_cursor = None
    if len(runs) > limit:
        runs = runs[:limit]
        last = runs[-1]
        next_cursor = config.cursors.encode_run(RunKeyset(last.started_at, last.id), query=scope)
    # Errors are scrubbed before they reach Kafka; scrubbing again covers rows recorded before that.
    items = [
        SyncRunOut.model_validate(replace(run, error=scrub_optional(run.error)), from_attributes=True)
        for run in runs
    ]
    return SyncRunPage(items=items, next_cursor=next_cursor)
