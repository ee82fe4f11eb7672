"""Service API keys: `Authorization: Bearer <key>`, compared in constant time against every key."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from api.problems import ProblemError

_REALM = 'Bearer realm="allegro-orders-backup"'
_CHALLENGE = {"WWW-Authenticate": _REALM}
_REJECTED = {"WWW-Authenticate": _REALM + ', error="invalid_token"'}


@dataclass(frozen=True, slots=True)
class ApiKeys:
    """The accepted keys, as bytes."""

    keys: tuple[bytes, ...]

    @classmethod
    def parse(cls, spec: str) -> ApiKeys:
        """Comma-separated keys; at least one is required."""
        keys = tuple(part.strip().encode() for part in spec.split(",") if part.strip())
        if not keys:
            raise ValueError("API__KEYS must list at least one key")
        return cls(keys)

    def accepts(self, presented: str) -> bool:
        """True when the key matches one of ours; every key is compared, so timing reveals nothing."""
        candidate = presented.encode()
        matched = False
        for key in self.keys:
            matched |= hmac.compare_digest(candidate, key)
        return matched

    def check(self, authorization: str | None) -> None:
        """Raise a 401 problem unless the header carries an accepted bearer key."""
        if authorization is None:
            raise ProblemError(401, "missing Authorization: Bearer <api key>", headers=_CHALLENGE)
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise ProblemError(401, "the Authorization header must be `Bearer <api key>`", headers=_CHALLENGE)
        if not self.accepts(credentials.strip()):
            raise ProblemError(401, "unknown API key", headers=_REJECTED)
