"""Opaque keyset cursors: the last row's (sort value, id) bound to the query, signed (itsdangerous).

A cursor is itsdangerous's URL-safe signed form of the JSON `[version, query hash, value, id]`
(`base64url(payload).base64url(HMAC-SHA256)`, the key derived from `API__CURSOR_SECRET` and a salt of
its own). Orders' cursors are version 1 with an integer id; sync runs' are version 2, the run's start and
its UUID. The query hash covers the user, the sort and every filter, so a cursor only continues the
query that made it; a cursor that was altered, truncated or made for another query raises
`InvalidCursor` (a 400), never anything else.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from itsdangerous import BadData, URLSafeSerializer

from db.queries.history import RunKeyset
from db.queries.orders import Keyset, OrderFilters, SortKey

_VERSION = 1
_RUN_VERSION = 2
_SALT = "orders-cursor"


class InvalidCursor(ValueError):
    """The cursor is not one of ours, or not for this query."""


def query_hash(*, user_id: str, sort: SortKey, filters: OrderFilters) -> str:
    """A short digest of everything that defines the order of a listing."""
    canonical = orjson.dumps(
        {"user_id": user_id, "sort": sort, "filters": asdict(filters)},
        option=orjson.OPT_SORT_KEYS,
        default=str,
    )
    return hashlib.sha256(canonical).hexdigest()[:32]


@dataclass(frozen=True)
class CursorCodec:
    """Signs and checks cursors with the configured secret."""

    secret: bytes
    _signer: URLSafeSerializer = field(init=False, repr=False)

    def __post_init__(self) -> None:
        signer = URLSafeSerializer(self.secret, salt=_SALT, signer_kwargs={"digest_method": hashlib.sha256})
        object.__setattr__(self, "_signer", signer)

    def encode(self, keyset: Keyset, *, query: str) -> str:
        """A cursor that continues `query` after `keyset`."""
        value = keyset.value.isoformat() if keyset.value is not None else None
        return self._signed([_VERSION, query, value, keyset.id])

    def decode(self, cursor: str, *, query: str) -> Keyset:
        """The keyset inside a cursor made by `encode` for the same query; raises InvalidCursor."""
        parsed = _parse(self._verified(cursor))
        if parsed[1] != query:
            raise InvalidCursor("the cursor belongs to another query (user, sort or filters differ)")
        return Keyset(
            value=datetime.fromisoformat(parsed[2]) if parsed[2] is not None else None, id=parsed[3]
        )

    def encode_run(self, keyset: RunKeyset, *, query: str) -> str:
        """A cursor that continues a sync-history `query` after `keyset`."""
        return self._signed([_RUN_VERSION, query, keyset.started_at.isoformat(), str(keyset.id)])

    def decode_run(self, cursor: str, *, query: str) -> RunKeyset:
        """The keyset inside a cursor made by `encode_run` for the same query.

        Raises:
            InvalidCursor: altered, malformed, or made for another query or listing.
        """
        parsed = _parse_run(self._verified(cursor))
        if parsed[1] != query:
            raise InvalidCursor("the cursor belongs to another query (user or filters differ)")
        return RunKeyset(datetime.fromisoformat(parsed[2]), UUID(parsed[3]))

    def _signed(self, payload: list[Any]) -> str:
        """The URL-safe signed form of a JSON payload."""
        return self._signer.dumps(payload)

    def _verified(self, cursor: str) -> Any:
        """The JSON payload of a cursor signed with our secret (its shape not yet checked)."""
        try:
            return self._signer.loads(cursor)
        except BadData as exc:
            raise InvalidCursor("the cursor was altered or was not issued by this service") from exc
        except UnicodeError as exc:
            raise InvalidCursor("the cursor is malformed") from exc


def _parse(parsed: Any) -> list[Any]:
    """Check the signed payload's shape; signed but malformed means a key was leaked or reused."""
    valid = (
        isinstance(parsed, list)
        and len(parsed) == 4
        and parsed[0] == _VERSION
        and isinstance(parsed[1], str)
        and (parsed[2] is None or isinstance(parsed[2], str))
        and isinstance(parsed[3], int)
    )
    if valid and parsed[2] is not None:
        try:
            datetime.fromisoformat(parsed[2])
        except ValueError as exc:
            raise InvalidCursor("the cursor is malformed") from exc
    if not valid:
        raise InvalidCursor("the cursor is malformed")
    return list(parsed)


def _parse_run(parsed: Any) -> list[Any]:
    """Check a signed sync-run cursor's shape."""
    valid = (
        isinstance(parsed, list)
        and len(parsed) == 4
        and parsed[0] == _RUN_VERSION
        and isinstance(parsed[1], str)
        and isinstance(parsed[2], str)
        and isinstance(parsed[3], str)
    )
    if not valid:
        raise InvalidCursor("the cursor is malformed")
    try:
        datetime.fromisoformat(parsed[2])
        UUID(parsed[3])
    except ValueError as exc:
        raise InvalidCursor("the cursor is malformed") from exc
    return list(parsed)
