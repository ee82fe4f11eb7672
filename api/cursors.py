"""Opaque keyset cursors: the last row's (sort value, id) bound to the query, signed with HMAC.

A cursor is `base64url(payload).base64url(mac)`, payload = JSON `[version, query hash, value, id]`
(orders: version 1, an integer id; sync runs: version 2, the run's start and its UUID).
The query hash covers the user, the sort and every filter, so a cursor only continues the query that
made it; a cursor that was altered, truncated or made for another query is a 400, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from db.queries.history import RunKeyset
from db.queries.orders import Keyset, OrderFilters, SortKey

_VERSION = 1
_RUN_VERSION = 2
_MAC_BYTES = 16


class InvalidCursor(ValueError):
    """The cursor is not one of ours, or not for this query."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def query_hash(*, user_id: str, sort: SortKey, filters: OrderFilters) -> str:
    """A short digest of everything that defines the order of a listing."""
    canonical = orjson.dumps(
        {"user_id": user_id, "sort": sort, "filters": asdict(filters)},
        option=orjson.OPT_SORT_KEYS,
        default=str,
    )
    return hashlib.sha256(canonical).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class CursorCodec:
    """Signs and checks cursors with the configured secret."""

    secret: bytes

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self.secret, payload, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, keyset: Keyset, *, query: str) -> str:
        """A cursor that continues `query` after `keyset`."""
        value = keyset.value.isoformat() if keyset.value is not None else None
        payload = orjson.dumps([_VERSION, query, value, keyset.id])
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def encode_run(self, keyset: RunKeyset, *, query: str) -> str:
        """A cursor that continues a sync-history `query` after `keyset`."""
        payload = orjson.dumps([_RUN_VERSION, query, keyset.started_at.isoformat(), str(keyset.id)])
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def decode_run(self, cursor: str, *, query: str) -> RunKeyset:
        """The keyset inside a cursor made by `encode_run` for the same query.

        Raises:
            InvalidCursor: altered, malformed, or made for another query or listing.
        """
        parsed = _parse_run(self._verified(cursor))
        if parsed[1] != query:
            raise InvalidCursor("the cursor belongs to another query (user or filters differ)")
        return RunKeyset(datetime.fromisoformat(parsed[2]), UUID(parsed[3]))

    def _verified(self, cursor: str) -> bytes:
        """The payload of a cursor signed with our secret."""
        encoded_payload, dot, encoded_mac = cursor.partition(".")
        try:
            payload, mac = _unb64(encoded_payload), _unb64(encoded_mac)
        except (binascii.Error, ValueError) as exc:
            raise InvalidCursor("the cursor is malformed") from exc
        if not dot or not hmac.compare_digest(mac, self._mac(payload)):
            raise InvalidCursor("the cursor was altered or was not issued by this service")
        return payload

    def decode(self, cursor: str, *, query: str) -> Keyset:
        """The keyset inside a cursor made by `encode` for the same query."""
        parsed = _parse(self._verified(cursor))
        if parsed[1] != query:
            raise InvalidCursor("the cursor belongs to another query (user, sort or filters differ)")
        return Keyset(
            value=datetime.fromisoformat(parsed[2]) if parsed[2] is not None else None, id=parsed[3]
        )


def _parse(payload: bytes) -> list[Any]:
    """Check the signed payload's shape; signed but malformed means a key was leaked or reused."""
    try:
        parsed = orjson.loads(payload)
        valid = (
            isinstance(parsed, list)
            and len(parsed) == 4
            and parsed[0] == _VERSION
            and isinstance(parsed[1], str)
            and (parsed[2] is None or isinstance(parsed[2], str))
            and isinstance(parsed[3], int)
        )
        if valid and parsed[2] is not None:
            datetime.fromisoformat(parsed[2])
    except (orjson.JSONDecodeError, ValueError) as exc:
        raise InvalidCursor("the cursor is malformed") from exc
    if not valid:
        raise InvalidCursor("the cursor is malformed")
    return list(parsed)


def _parse_run(payload: bytes) -> list[Any]:
    """Check a signed sync-run cursor's shape."""
    try:
        parsed = orjson.loads(payload)
        valid = (
            isinstance(parsed, list)
            and len(parsed) == 4
            and parsed[0] == _RUN_VERSION
            and isinstance(parsed[1], str)
            and isinstance(parsed[2], str)
            and isinstance(parsed[3], str)
        )
        if valid:
            datetime.fromisoformat(parsed[2])
            UUID(parsed[3])
    except (orjson.JSONDecodeError, ValueError) as exc:
        raise InvalidCursor("the cursor is malformed") from exc
    if not valid:
        raise InvalidCursor("the cursor is malformed")
    return list(parsed)
