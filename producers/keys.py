"""Key rotation: re-seal every token row's secrets with the current (first configured) key."""

from __future__ import annotations

from dataclasses import dataclass, replace
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.crypto import KeyRing
from db.queries import token_sync

BATCH = 500


@dataclass(frozen=True)
class RotationReport:
    """What a rotation did."""

    rows_scanned: int
    rows_updated: int
    values_resealed: int
    key_id: str


async def rotate_keys(sessions: async_sessionmaker[AsyncSession], keyring: KeyRing) -> RotationReport:
    """Re-seal values sealed with an older key; one transaction per batch of rows."""
    scanned = updated = resealed = 0
    after: UUID | None = None
    while True:
        async with sessions() as session, session.begin():
            rows = await token_sync.rows_with_secrets(session, after=after, limit=BATCH)
            for row in rows:
                values = {
                    name: getattr(row, name) for name in ("access_token", "refresh_token", "device_code")
                }
                stale = {k: v for k, v in values.items() if v is not None and keyring.needs_reseal(v)}
                if stale:
                    fresh = {k: keyring.seal(keyring.open(v)) for k, v in stale.items()}
                    await token_sync.save_sealed_secrets(
                        session,
                        replace(
                            row,
                            access_token=fresh.get("access_token", row.access_token),
                            refresh_token=fresh.get("refresh_token", row.refresh_token),
                            device_code=fresh.get("device_code", row.device_code),
                        ),
                    )
                    updated += 1
                    resealed += len(fresh)
            scanned += len(rows)
        if len(rows) < BATCH:
            return RotationReport(scanned, updated, resealed, keyring.current_key_id)
        after = rows[-1].id
