"""Token encryption at rest: AES-GCM with a key id sealed into every value, so keys can rotate.

A sealed value is `key_id:base64url(nonce || ciphertext)`. The first configured key seals; every
configured key opens. Rotation = put the new key first, re-seal every row, then drop the old key.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE_BYTES = 12


class CryptoError(ValueError):
    """A value could not be sealed or opened (unknown key id, tampered or truncated value)."""


@dataclass(frozen=True)
class KeyRing:
    """The configured keys, newest (sealing) key first."""

    keys: tuple[tuple[str, bytes], ...]

    @classmethod
    def parse(cls, spec: str) -> KeyRing:
        """Parse `kid:base64key[,kid:base64key...]`; keys must be 16, 24 or 32 bytes."""
        keys: list[tuple[str, bytes]] = []
        for part in filter(None, (p.strip() for p in spec.split(","))):
            kid, sep, encoded = part.partition(":")
            if not sep or not kid:
                raise CryptoError("each key must be written as key_id:base64key")
            try:
                key = base64.b64decode(encoded, validate=True)
            except ValueError as exc:
                raise CryptoError(f"key {kid!r} is not valid base64") from exc
            if len(key) not in (16, 24, 32):
                raise CryptoError(f"key {kid!r} must be 16, 24 or 32 bytes, not {len(key)}")
            keys.append((kid, key))
        if not keys:
            raise CryptoError("at least one encryption key is required")
        if len({kid for kid, _ in keys}) != len(keys):
            raise CryptoError("key ids must be unique")
        return cls(tuple(keys))

    @property
    def current_key_id(self) -> str:
        """The id of the key that seals new values."""
        return self.keys[0][0]

    def seal(self, plaintext: str) -> str:
        """Encrypt with the current key."""
        kid, key = self.keys[0]
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), kid.encode())
        return f"{kid}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, value: str) -> str:
        """Decrypt a sealed value with the key it names."""
        kid, sep, encoded = value.partition(":")
        key = dict(self.keys).get(kid)
        if not sep or key is None:
            raise CryptoError(f"value sealed with unknown key id {kid!r}")
        try:
            raw = base64.urlsafe_b64decode(encoded)
            return AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], kid.encode()).decode()
        except (InvalidTag, ValueError) as exc:
            raise CryptoError(f"value sealed with key {kid!r} does not open (tampered or wrong key)") from exc

    def needs_reseal(self, value: str) -> bool:
        """True when the value was sealed with a key other than the current one."""
        return not value.startswith(self.current_key_id + ":")
