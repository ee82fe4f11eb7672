"""Which failures are outages: PostgreSQL or Kafka cannot be reached right now, and trying the same thing
again later is expected to work. One classification for every process (the worker's batch retries, the
poller's scans and start-up, the API's 503s), so they agree on what is worth waiting out.

Anything else (a wrong statement, a constraint, a defect) is not an outage: callers log it loudly.
Allegro's answers are classified apart, by `allegro_api.retrying.classify` (a 5xx there is transient,
a 403 or a dead refresh token changes the account's state).
"""

from __future__ import annotations

import asyncpg
import sqlalchemy.exc
from aiokafka.errors import KafkaError

# asyncpg's errors for a connection that is gone, could not be made, or is refused for now. SQLAlchemy
# wraps them (`DBAPIError.orig`, its `__cause__`); the raw pools raise them as they are.
_UNREACHABLE_ASYNCPG: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # class 08: the connection is gone or could not be made
    asyncpg.CannotConnectNowError,  # starting up or shutting down
    asyncpg.AdminShutdownError,  # `pg_ctl stop -m fast` closed our sessions
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,  # e.g. the connection was closed under us
)

# SQLSTATE classes of an outage rather than a wrong statement: 08 (connection exception) and 57P (the
# server shutting down or starting up, e.g. 57P01 admin_shutdown when `pg_ctl stop` ends our session).
_OUTAGE_SQLSTATES = ("08", "57P")


def database_unreachable(exc: BaseException) -> bool:
    """Whether `exc` (or what SQLAlchemy or asyncpg wrapped in it) says PostgreSQL cannot be reached."""
    if isinstance(exc, (OSError, sqlalchemy.exc.TimeoutError, *_UNREACHABLE_ASYNCPG)):
        return True
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        if exc.connection_invalidated or isinstance(
            exc, sqlalchemy.exc.InterfaceError | sqlalchemy.exc.OperationalError
        ):
            return True
        orig = exc.orig.__cause__ if exc.orig is not None else None
        if orig is not None and isinstance(orig, (OSError, *_UNREACHABLE_ASYNCPG)):
            return True
    return sqlstate(exc).startswith(_OUTAGE_SQLSTATES)


def kafka_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the Kafka cluster cannot serve us right now: aiokafka's errors (no broker, a
    request timed out, a leader or coordinator moving) and refused or reset connections."""
    return isinstance(exc, KafkaError | OSError | TimeoutError)


def is_outage(exc: BaseException) -> bool:
    """Whether waiting for PostgreSQL or Kafka and trying again is expected to succeed."""
    return database_unreachable(exc) or kafka_unavailable(exc)


def sqlstate(exc: BaseException) -> str:
    """The PostgreSQL SQLSTATE an error carries (through SQLAlchemy's wrapper and asyncpg's), or ''."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            break
        code = getattr(seen, "sqlstate", None)
        if isinstance(code, str):
            return code
        seen = getattr(seen, "orig", None) or seen.__cause__
    return ""
