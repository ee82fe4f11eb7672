"""Linking seller accounts and managing their sync: `/v1/users/{user_id}/tokens[...]`."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from fastapi import Response

from allegro_api.errors import AllegroError, RateLimited
from allegro_api.retrying import is_transient
from allegro_api.tokens import DeviceAuthorization
from api.deps import ConfigDep, ResourcesDep, SessionDep, UserId, UserTokenDep, v1_router
from api.problems import ProblemError, problem_responses
from api.schemas.tokens import LinkStarted, NoOptions, ResyncRequest, SyncAccepted, TokenDetail, TokenList
from api.token_views import token_detail, token_summary
from core.states import TokenStatus
from db.queries.tokens import (
    NewLink,
    count_stored,
    create_pending_token,
    list_tokens,
    record_reconcile_request,
    record_resync_request,
    record_sync_request,
    unlink_token,
)

router = v1_router("tokens")


async def _start_device_flow(resources: ResourcesDep, scope: str) -> DeviceAuthorization:
    """Ask Allegro for a device code, mapping its failures to 503 (retry later: transient, as
    `allegro_api.retrying.classify` says) or 502 (refused); the reason shown is a code, never a body."""
    try:
        return await resources.allegro_auth.start_device_flow(scope)
    except RateLimited as exc:
        raise ProblemError(
            503,
            "Allegro is rate limiting this service; retry later",
            slug="allegro-unavailable",
            headers={"Retry-After": str(math.ceil(exc.pause_seconds))},
        ) from exc
    except AllegroError as exc:
        if is_transient(exc):
            raise ProblemError(
                503, "Allegro is unavailable; retry later", slug="allegro-unavailable"
            ) from exc
        reason = exc.code or (f"HTTP {exc.status}" if exc.status else type(exc).__name__)
        raise ProblemError(502, f"Allegro refused to start a link ({reason})", slug="allegro-error") from exc


@router.post(
    "/tokens",
    status_code=201,
    summary="Start linking an Allegro account (device flow)",
    responses=problem_responses(401, 422, 502, 503),
)
async def start_link(
    user_id: UserId,
    config: ConfigDep,
    resources: ResourcesDep,
    session: SessionDep,
    response: Response,
    options: NoOptions | None = None,
) -> LinkStarted:
    """Start the device flow; the poller finishes it in the background once the user approves."""
    device = await _start_device_flow(resources, config.settings.allegro.scope)
    issued_at = datetime.now(UTC)
    link = NewLink(
        sealed_device_code=config.keyring.seal(device.device_code),
        user_code=device.user_code,
        verification_uri=device.verification_uri,
        verification_uri_complete=device.verification_uri_complete,
        expires_at=device.expires_at(issued_at),
        interval_seconds=device.interval,
        next_poll_at=issued_at + timedelta(seconds=device.interval),
    )
    token = await create_pending_token(session, user_id=user_id, link=link)
    await session.commit()
    response.headers["Location"] = f"/v1/users/{user_id}/tokens/{token.id}"
    return LinkStarted(
        token_id=token.id,
        user_code=device.user_code,
        verification_uri=device.verification_uri,
        verification_uri_complete=device.verification_uri_complete,
        expires_at=link.expires_at,
        interval=device.interval,
    )


@router.get("/tokens", summary="List the user's tokens", responses=problem_responses(401, 422))
async def get_tokens(user_id: UserId, session: SessionDep) -> TokenList:
    """Every token of the user, newest first, unlinked ones included."""
    now = datetime.now(UTC)
    return TokenList(items=[token_summary(t, now=now) for t in await list_tokens(session, user_id=user_id)])


@router.get("/tokens/{token_id}", summary="A token's state", responses=problem_responses(401, 404, 422))
async def get_token_state(token: UserTokenDep, session: SessionDep) -> TokenDetail:
    """State, last sync, journal lag, cursor, backfill progress and stored counts."""
    counts = await count_stored(session, token_id=token.id)
    return token_detail(token, counts, now=datetime.now(UTC))


@router.delete(
    "/tokens/{token_id}",
    status_code=204,
    summary="Unlink (orders are kept)",
    responses=problem_responses(401, 404, 422),
)
async def delete_token(token: UserTokenDep, session: SessionDep) -> Response:
    """Stop syncing and wipe the token's secrets; stored orders stay. Unlinking twice is fine."""
    await unlink_token(session, user_id=token.user_id, token_id=token.id)
    await session.commit()
    return Response(status_code=204)


def _require_active(token: UserTokenDep) -> None:
    if token.status != TokenStatus.ACTIVE:
        raise ProblemError(
            409, f"the token is {token.status}; only active tokens sync", slug="token-not-active"
        )


@router.post(
    "/tokens/{token_id}/sync",
    status_code=202,
    summary="Sync now",
    responses=problem_responses(401, 404, 409, 422),
)
async def request_sync(
    token: UserTokenDep, session: SessionDep, options: NoOptions | None = None
) -> SyncAccepted:
    """Record a request for an immediate journal sync; the poller picks it up."""
    _require_active(token)
    updated = await record_sync_request(
        session, user_id=token.user_id, token_id=token.id, now=datetime.now(UTC)
    )
    if updated is None or updated.sync_requested_at is None:
        raise ProblemError(409, "the token stopped being active", slug="token-not-active")
    await session.commit()
    return SyncAccepted(token_id=token.id, kind="sync", requested_at=updated.sync_requested_at)


@router.post(
    "/tokens/{token_id}/reconcile",
    status_code=202,
    summary="Reconcile now",
    responses=problem_responses(401, 404, 409, 422, 503),
)
async def request_reconcile(
    token: UserTokenDep, session: SessionDep, options: NoOptions | None = None
) -> SyncAccepted:
    """Record a request for a reconciliation (forms updated since the last one, listed again) on the
    poller's next cycle, instead of waiting for POLLER__RECONCILE_INTERVAL_SECONDS."""
    _require_active(token)
    now = datetime.now(UTC)
    if not await record_reconcile_request(session, user_id=token.user_id, token_id=token.id, now=now):
        raise ProblemError(409, "the token stopped being active", slug="token-not-active")
    await session.commit()
    return SyncAccepted(token_id=token.id, kind="reconcile", requested_at=now)


@router.post(
    "/tokens/{token_id}/resync",
    status_code=202,
    summary="Resync from Allegro or Kafka since a time",
    responses=problem_responses(401, 404, 409, 422),
)
async def request_resync(token: UserTokenDep, body: ResyncRequest, session: SessionDep) -> SyncAccepted:
    """Record a resync request: refetch from Allegro, or replay `allegro.orders`, since `since`."""
    _require_active(token)
    updated = await record_resync_request(
        session,
        user_id=token.user_id,
        token_id=token.id,
        source=body.source,
        since=body.since,
        now=datetime.now(UTC),
    )
    if updated is None or updated.resync_requested_at is None:
        raise ProblemError(409, "the token stopped being active", slug="token-not-active")
    await session.commit()
    return SyncAccepted(
        token_id=token.id,
        kind="resync",
        requested_at=updated.resync_requested_at,
        source=body.source,
        since=body.since,
    )
