"""`GET /v1/users/{user_id}/sync-history`: the user's sync runs, newest first."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import Query

from api.deps import Limit, SessionDep, TokenFilter, UserId, v1_router
from api.problems import problem_responses
from api.schemas.orders import SyncRunOut, SyncRunPage
from core.redaction import scrub_optional
from core.states import SyncKind, SyncStatus
from db.queries.history import list_sync_runs

router = v1_router("sync history")


@router.get("/sync-history", summary="Sync runs", responses=problem_responses(401, 422))
async def get_sync_history(
    user_id: UserId,
    session: SessionDep,
    token_id: TokenFilter = None,
    kind: Annotated[SyncKind | None, Query()] = None,
    status: Annotated[SyncStatus | None, Query()] = None,
    limit: Limit = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> SyncRunPage:
    """Runs of every token of the user (or of one), newest start first."""
    # One row more than asked tells whether another page exists.
    runs = await list_sync_runs(
        session, user_id=user_id, token_id=token_id, kind=kind, status=status, limit=limit + 1, offset=offset
    )
    # Errors are scrubbed before they reach Kafka; scrubbing again covers rows recorded before that.
    items = [
        SyncRunOut.model_validate(replace(run, error=scrub_optional(run.error)), from_attributes=True)
        for run in runs[:limit]
    ]
    return SyncRunPage(items=items, next_offset=offset + limit if len(runs) > limit else None)
