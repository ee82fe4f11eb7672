"""Token encryption at rest: sealed values name their key, open only with it, and rotate."""

from __future__ import annotations

import base64

import pytest

from core.crypto import CryptoError, KeyRing

OLD = "old:" + base64.b64encode(b"o" * 32).decode()
NEW = "new:" + base64.b64encode(b"n" * 32).decode()


def test_sealed_value_opens_and_carries_its_key_id() -> None:
    ring = KeyRing.parse(OLD)
    sealed = ring.seal("refresh-token")
    assert sealed.startswith("old:")
    assert "refresh-token" not in sealed
    assert ring.open(sealed) == "refresh-token"
    assert ring.seal("refresh-token") != sealed


def test_rotation_opens_old_values_and_seals_with_the_new_key() -> None:
    sealed_old = KeyRing.parse(OLD).seal("token")
    rotated = KeyRing.parse(f"{NEW},{OLD}")
    assert rotated.needs_reseal(sealed_old)
    assert rotated.open(sealed_old) == "token"
    resealed = rotated.seal(rotated.open(sealed_old))
    assert not rotated.needs_reseal(resealed)
    with pytest.raises(CryptoError, match="unknown key id 'new'"):
        KeyRing.parse(OLD).open(resealed)


def test_tampered_value_does_not_open() -> None:
    ring = KeyRing.parse(OLD)
    sealed = ring.seal("token")
    kid, body = sealed.split(":")
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[-1] ^= 1
    with pytest.raises(CryptoError, match="does not open"):
        ring.open(f"{kid}:{base64.urlsafe_b64encode(bytes(raw)).decode()}")


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("", "at least one"),
        ("nokey", "key_id:base64key"),
        ("k:!!!", "not valid base64"),
        ("k:YWJj", "16, 24 or 32"),
    ],
)
def test_bad_key_specs_are_refused(spec: str, reason: str) -> None:
    with pytest.raises(CryptoError, match=reason):
        KeyRing.parse(spec)
