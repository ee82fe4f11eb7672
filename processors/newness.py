"""Which version of an order is current, and which snapshots are new content: the sink's one rule.

Content: two snapshots of an order are the same when their texts are (`core.documents.content_hash`);
the revision label alone does not decide it. Every distinct content enters the history once, with the
first copy to arrive (Kafka order): its capture time and source are what `order_revisions` and
`allegro.order-revisions` both hold. Later copies of a stored content change nothing.

Current: among an order's contents, the newest by (`updatedAt`, capture time) is current, a later arrival
winning a tie. `updatedAt` is Allegro's own clock for the order's changes, so it orders contents whatever
the poller's clocks say; but Allegro leaves it unchanged on fulfillment changes (reference/allegro
README, field case E05b), and there only the capture time orders them: a form fetched after another
fetch of the same order returned shows a state at least as new. The revision label orders nothing (it
is an opaque 8-hex value). Journal event ids were considered and not taken: only journal snapshots carry
them, so they cannot order a journal snapshot against a backfill or reconcile one.

Gone marks: a form fetched after it was marked missing upstream or superseded without a successor
answers again, which disproves the mark; a re-delivery of a snapshot fetched before the mark disproves
nothing. The mark a fetch is compared with is `StoredState.marked_at`, the latest such mark, which the
statements that clear marks compute with the same expression (`db.queries.sink`).

Every decision is made here, against the stored current version read before the batch's transaction;
PostgreSQL only checks that the version decided against is still the stored one (`db.queries.sink`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from db.queries.sink import ContentKey, Fetched, OrderKey, OrderRow, StoredState

_OLDEST = datetime.min.replace(tzinfo=UTC)
Newness = tuple[datetime, datetime]


def newness(updated_at: datetime | None, captured_at: datetime) -> Newness:
    """What orders two versions of one order: `updatedAt` (none counts as oldest), then capture time."""
    return (updated_at or _OLDEST, captured_at)


def supersedes(candidate: Newness, current: Newness) -> bool:
    """True when a version arriving now replaces the current one (a tie goes to the later arrival)."""
    return candidate >= current


@dataclass
class Plan:
    """What a batch writes: each order's new current version, the other new contents, what it skips."""

    current: dict[OrderKey, OrderRow] = field(default_factory=dict)
    history: list[OrderRow] = field(default_factory=list)
    skipped: int = 0
    # When each order not stored yet was first seen: the capture time of its first snapshot to arrive,
    # which is the same whichever batch that snapshot came in.
    first_seen: dict[OrderKey, datetime] = field(default_factory=dict)


def first_copies(rows: Iterable[OrderRow]) -> dict[ContentKey, OrderRow]:
    """The first copy (Kafka order) of each content among `rows`."""
    firsts: dict[ContentKey, OrderRow] = {}
    for row in rows:
        firsts.setdefault(row.content_key, row)
    return firsts


def plan_batch(
    firsts: Mapping[ContentKey, OrderRow],
    stored: Mapping[OrderKey, StoredState],
    known: set[ContentKey],
    received: int,
) -> Plan:
    """Decide a batch: `firsts` in Kafka order, `stored` the current versions, `known` the contents that
    `order_revisions` holds already, `received` how many form snapshots the batch held."""
    plan = Plan()
    newest: dict[OrderKey, Newness] = {
        key: newness(state.updated_at, state.captured_at) for key, state in stored.items()
    }
    new_contents = 0
    for content, row in firsts.items():
        key = content.order
        state = stored.get(key)
        if content in known or (state is not None and state.content_hash == content.content_hash):
            continue
        new_contents += 1
        if state is None:
            plan.first_seen.setdefault(key, row.fetched_at)
        candidate = newness(row.updated_at, row.fetched_at)
        if key not in newest or supersedes(candidate, newest[key]):
            if key in plan.current:
                plan.history.append(plan.current[key])
            plan.current[key] = row
            newest[key] = candidate
        else:
            plan.history.append(row)
    plan.skipped = received - new_contents
    return plan


def disproves(fetched_at: datetime, marked_at: datetime | None) -> bool:
    """True when a form fetched at `fetched_at` disproves its order's latest gone mark (None: no mark)."""
    return marked_at is not None and fetched_at > marked_at


def disproved_marks(
    rows: Sequence[OrderRow], stored: Mapping[OrderKey, StoredState], upserted: set[OrderKey]
) -> list[Fetched]:
    """The latest fetch of each marked order among `rows` that disproves its marks, for orders whose
    content is stored already (an upserted newer version clears the marks itself)."""
    latest: dict[OrderKey, datetime] = {}
    for row in rows:
        key = row.key
        state = stored.get(key)
        if state is None or key in upserted or not disproves(row.fetched_at, state.marked_at):
            continue
        latest[key] = max(latest.get(key, row.fetched_at), row.fetched_at)
    return [Fetched(key.token_id, key.checkout_form_id, fetched_at) for key, fetched_at in latest.items()]
