"""The poller's two lists for order records: orders whose shipments and invoices are due a read
(`order_record_checks`), and waybills followed until their tracking is final (`pending_waybills`).

Both live in PostgreSQL so that a restart or another poller taking the account over loses nothing. An
entry leaves (or its due time moves) only after Kafka acknowledged what its read published
(`producers.records`). Every function takes the session first and leaves committing to the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


@dataclass(frozen=True, slots=True)
class DueCheck:
    """An order whose records are due a read."""

    checkout_form_id: str
    fingerprint: str
    reason: str
    noted_at: datetime


@dataclass(frozen=True, slots=True)
class DueWaybill:
    """A waybill whose tracking is due a read."""

    checkout_form_id: str
    carrier_id: str
    waybill: str
    added_at: datetime


async def note_forms(
    session: AsyncSession,
    token_id: UUID,
    fingerprints: dict[str, str],
    *,
    reason: str,
    now: datetime,
    force: bool,
) -> None:
    """Note forms by their record fingerprint: a new one, or one whose fingerprint moved, is due now;
    with `force` (a reconcile) every one is. A form already due keeps its place."""
    if not fingerprints:
        return
    await session.execute(
        text(
            """
            INSERT INTO order_record_checks AS c (token_id, checkout_form_id, fingerprint, reason, noted_at,
                due_at)
            SELECT :token_id, f, p, :reason, :now, :now
            FROM unnest(CAST(:forms AS text[]), CAST(:prints AS text[])) AS u(f, p)
            ON CONFLICT (token_id, checkout_form_id) DO UPDATE SET
                fingerprint = EXCLUDED.fingerprint,
                reason = EXCLUDED.reason,
                noted_at = EXCLUDED.noted_at,
                due_at = least(coalesce(c.due_at, EXCLUDED.due_at), EXCLUDED.due_at)
            WHERE c.fingerprint IS DISTINCT FROM EXCLUDED.fingerprint OR CAST(:force AS boolean)
            """
        ),
        {
            "token_id": token_id,
            "forms": list(fingerprints),
            "prints": list(fingerprints.values()),
            "reason": reason,
            "now": now,
            "force": force,
        },
    )


async def due_checks(session: AsyncSession, token_id: UUID, *, now: datetime, limit: int) -> list[DueCheck]:
    """Orders due a read, longest waiting first."""
    result = await session.execute(
        text(
            "SELECT checkout_form_id, fingerprint, reason, noted_at FROM order_record_checks"
            " WHERE token_id = :t AND due_at IS NOT NULL AND due_at <= :now ORDER BY due_at LIMIT :limit"
        ),
        {"t": token_id, "now": now, "limit": limit},
    )
    return [DueCheck(*row) for row in result]


async def checked(
    session: AsyncSession, token_id: UUID, checkout_form_id: str, *, now: datetime, next_due: datetime | None
) -> None:
    """Record a read: due again at `next_due` (None: not until the order's state moves)."""
    await session.execute(
        text(
            "UPDATE order_record_checks SET checked_at = :now, due_at = :next"
            " WHERE token_id = :t AND checkout_form_id = :f"
        ),
        {"t": token_id, "f": checkout_form_id, "now": now, "next": next_due},
    )


async def follow_waybills(
    session: AsyncSession,
    token_id: UUID,
    checkout_form_id: str,
    waybills: Sequence[tuple[str, str]],
    *,
    now: datetime,
    finished: frozenset[tuple[str, str]] = frozenset(),
) -> None:
    """Start following (carrier id, waybill) pairs of an order, due now; those followed already keep
    their schedule, and those in `finished` (already final in the store) are not added."""
    wanted = [pair for pair in dict.fromkeys(waybills) if pair not in finished]
    if not wanted:
        return
    await session.execute(
        text(
            """
            INSERT INTO pending_waybills (token_id, checkout_form_id, carrier_id, waybill, added_at, next_at)
            SELECT :t, :f, c, w, :now, :now FROM unnest(CAST(:carriers AS text[]), CAST(:waybills AS text[]))
                AS u(c, w)
            ON CONFLICT DO NOTHING
            """
        ),
        {
            "t": token_id,
            "f": checkout_form_id,
            "now": now,
            "carriers": [carrier for carrier, _ in wanted],
            "waybills": [waybill for _, waybill in wanted],
        },
    )


async def due_waybills(
    session: AsyncSession, token_id: UUID, *, now: datetime, limit: int
) -> list[DueWaybill]:
    """Waybills due a tracking read, longest waiting first."""
    result = await session.execute(
        text(
            "SELECT checkout_form_id, carrier_id, waybill, added_at FROM pending_waybills"
            " WHERE token_id = :t AND next_at <= :now ORDER BY next_at LIMIT :limit"
        ),
        {"t": token_id, "now": now, "limit": limit},
    )
    return [DueWaybill(*row) for row in result]


async def waybills_read(
    session: AsyncSession,
    token_id: UUID,
    *,
    done: Sequence[DueWaybill],
    later: Sequence[DueWaybill],
    next_at: datetime,
) -> None:
    """After a tracking read: `done` leave the list (final status or given up), `later` are due again."""
    for entries, statement in (
        (
            done,
            "DELETE FROM pending_waybills WHERE token_id = :t AND (checkout_form_id, carrier_id, waybill)"
            " IN (SELECT * FROM unnest(CAST(:f AS text[]), CAST(:c AS text[]), CAST(:w AS text[])))",
        ),
        (
            later,
            "UPDATE pending_waybills SET next_at = :next WHERE token_id = :t"
            " AND (checkout_form_id, carrier_id, waybill)"
            " IN (SELECT * FROM unnest(CAST(:f AS text[]), CAST(:c AS text[]), CAST(:w AS text[])))",
        ),
    ):
        if entries:
            await session.execute(
                text(statement),
                {
                    "t": token_id,
                    "next": next_at,
                    "f": [e.checkout_form_id for e in entries],
                    "c": [e.carrier_id for e in entries],
                    "w": [e.waybill for e in entries],
                },
            )


async def next_due(session: AsyncSession, token_id: UUID) -> datetime | None:
    """When the token's next record read or tracking read is due (None: nothing waits)."""
    result = await session.execute(
        text(
            "SELECT least("
            "(SELECT min(due_at) FROM order_record_checks WHERE token_id = :t AND due_at IS NOT NULL),"
            " (SELECT min(next_at) FROM pending_waybills WHERE token_id = :t))"
        ),
        {"t": token_id},
    )
    value: datetime | None = result.scalar()
    return value


async def stored_state(
    session: AsyncSession, token_id: UUID, checkout_form_id: str
) -> tuple[dict[tuple[str, str], bytes], frozenset[tuple[str, str]]]:
    """What the store holds for an order: the content hash of each current record by (kind, record_key),
    and the (carrier id, waybill) pairs whose tracking is final already."""
    result = await session.execute(
        text(
            "SELECT kind, record_key, content_hash, last_code FROM order_records"
            " WHERE token_id = :t AND checkout_form_id = :f"
        ),
        {"t": token_id, "f": checkout_form_id},
    )
    hashes: dict[tuple[str, str], bytes] = {}
    final: set[tuple[str, str]] = set()
    for kind, record_key, digest, last_code in result:
        hashes[(kind, record_key)] = digest
        if kind == "tracking" and last_code in ("DELIVERED", "RETURNED"):
            carrier_id, _, waybill = record_key.partition(":")
            final.add((carrier_id, waybill))
    return hashes, frozenset(final)


async def due_reads(connection: AsyncConnection | AsyncSession, *, now: datetime) -> int:
    """Record reads of every token that are due now: orders on the check list and followed waybills."""
    result = await connection.execute(
        text(
            "SELECT (SELECT count(*) FROM order_record_checks WHERE due_at <= :now)"
            " + (SELECT count(*) FROM pending_waybills WHERE next_at <= :now)"
        ),
        {"now": now},
    )
    return int(result.scalar_one())


async def tracking_hashes(
    session: AsyncSession, token_id: UUID, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], bytes]:
    """The stored content hash of each (checkout form id, tracking record key) that has one."""
    if not keys:
        return {}
    result = await session.execute(
        text(
            "SELECT checkout_form_id, record_key, content_hash FROM order_records"
            " WHERE token_id = :t AND kind = 'tracking' AND (checkout_form_id, record_key)"
            " IN (SELECT * FROM unnest(CAST(:f AS text[]), CAST(:k AS text[])))"
        ),
        {"t": token_id, "f": [form for form, _ in keys], "k": [key for _, key in keys]},
    )
    return {(form, key): digest for form, key, digest in result}
