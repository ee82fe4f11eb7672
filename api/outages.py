"""503 while PostgreSQL is away: errors that say the database cannot be reached become a problem
document with `Retry-After`, instead of a 500 (or, in a streamed export, a reset connection).

The engine's errors come wrapped by SQLAlchemy (`DBAPIError.orig`, `connection_invalidated`), the raw
read pool's straight from asyncpg, and a refused connect as a plain OSError from either. Statement
errors of the same families (a constraint, a syntax error) still answer 500 and are logged.
"""

from __future__ import annotations

import logging

import asyncpg
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.responses import Response

from api.problems import on_unexpected, problem_response
from core.outages import database_unreachable

logger = logging.getLogger(__name__)

# Seconds a client should wait before trying again: PostgreSQL restarts take a few seconds; the probe
# `/readyz` tells when it is back.
RETRY_AFTER_SECONDS = 5


async def _on_database_error(request: Request, exc: Exception) -> Response:
    if not database_unreachable(exc):
        return await on_unexpected(request, exc)
    logger.warning(
        "database unavailable on %s %s: %s: %s",
        request.method,
        request.url.path,
        type(exc).__name__,
        str(exc).splitlines()[0] if str(exc) else "",
    )
    return problem_response(
        503,
        "the database is unavailable; retry later",
        slug="database-unavailable",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def install_outage_handlers(app: FastAPI) -> None:
    """Answer database outages with 503 + Retry-After (after `install_problem_handlers`)."""
    for family in (OSError, sqlalchemy.exc.SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError):
        app.add_exception_handler(family, _on_database_error)
