"""Dependencies as named types: resources, the request's session, the caller's key, path and query inputs.

Every dependency is `async def` even when it does not await: FastAPI runs plain `def` dependencies in a
thread pool, which costs more than the work they do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from api.problems import ProblemError
from api.resources import AppConfig, Resources
from api.schemas.common import CHECKOUT_FORM_ID_PATTERN, USER_ID_PATTERN
from db.queries.tokens import TokenView, get_token


async def get_config(request: Request) -> AppConfig:
    """The app's configuration, set by the factory."""
    config: AppConfig = request.app.state.config
    return config


async def get_resources(request: Request) -> Resources:
    """The app's open connections, set by the lifespan."""
    resources: Resources = request.app.state.resources
    return resources


ConfigDep = Annotated[AppConfig, Depends(get_config)]
ResourcesDep = Annotated[Resources, Depends(get_resources)]

# Declares the scheme in the OpenAPI document; the check itself reads the header (own messages).
_bearer = HTTPBearer(auto_error=False, description="A service API key: `Authorization: Bearer <key>`.")


async def require_api_key(
    request: Request,
    config: ConfigDep,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """401 unless the request carries one of the configured API keys."""
    config.api_keys.check(request.headers.get("authorization"))


async def get_session(resources: ResourcesDep) -> AsyncIterator[AsyncSession]:
    """One session, hence one transaction, per request; writes commit explicitly, the rest rolls back."""
    async with resources.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_read_pool(resources: ResourcesDep) -> asyncpg.Pool:
    """The plain asyncpg pool for hot single-statement reads (no transaction, no ORM)."""
    return resources.reads


ReadPoolDep = Annotated[asyncpg.Pool, Depends(get_read_pool)]

UserId = Annotated[
    str,
    Path(
        pattern=USER_ID_PATTERN,
        description="The platform's own user id; everything below it is scoped to it.",
        examples=["user-42"],
    ),
]
TokenId = Annotated[UUID, Path(description="A token id returned when linking started.")]
CheckoutFormId = Annotated[
    str, Path(pattern=CHECKOUT_FORM_ID_PATTERN, examples=["29738e61-7f6a-11e8-ac45-09db60ede9d6"])
]
TokenFilter = Annotated[
    UUID | None, Query(description="Only this token's data (the default covers all the user's tokens).")
]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size, 1 to 500.")]


async def load_user_token(user_id: UserId, token_id: TokenId, session: SessionDep) -> TokenView:
    """The path's token if it belongs to the path's user, else 404 (another user's token is not found)."""
    token = await get_token(session, user_id=user_id, token_id=token_id)
    if token is None:
        raise ProblemError(404, f"no token {token_id} for user {user_id}")
    return token


UserTokenDep = Annotated[TokenView, Depends(load_user_token)]


V1_PREFIX = "/v1/users/{user_id}"


def v1_router(tag: str) -> APIRouter:
    """A router under `/v1/users/{user_id}` whose every route needs an API key.

    The prefix is the router's own (not given when including it) so each route's `path` is the full
    template, which the metrics label requests with.
    """
    return APIRouter(prefix=V1_PREFIX, tags=[tag], dependencies=[Depends(require_api_key)])
