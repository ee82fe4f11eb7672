"""A reproducible stream of snapshots with duplicates, out-of-order revisions and re-deliveries."""

from __future__ import annotations

import random
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import asyncpg

from core.contract import decode_order_change
from tests.processors.factory import snapshot


@dataclass
class Scenario:
    """The messages to send and what PostgreSQL and `allegro.orders` must hold afterwards."""

    token_id: uuid.UUID
    messages: list[dict[str, Any]]
    newest: dict[str, str]
    revisions: set[tuple[str, str]]


def build_scenario(messages: int, *, seed: int) -> Scenario:
    """About `messages` snapshots: 1-4 revisions per order, shuffled, ~25 % duplicates and re-deliveries."""
    rng = random.Random(seed)
    token_id = uuid.uuid4()
    orders = max(1, int(messages / 3.1))
    values: list[dict[str, Any]] = []
    newest: dict[str, str] = {}
    revisions: set[tuple[str, str]] = set()
    for index in range(orders):
        form = f"f{index:06d}"
        count = rng.randint(1, 4)
        newest[form] = f"r{count}"
        revisions |= {(form, f"r{v}") for v in range(1, count + 1)}
        values += [snapshot(token_id, form, v) for v in range(1, count + 1)]
    rng.shuffle(values)  # revisions of one order now arrive in any order
    duplicates = rng.sample(values, k=min(len(values), max(0, messages - len(values)) // 2))
    redeliveries = rng.sample(values, k=min(len(values), max(0, messages - len(values) - len(duplicates))))
    for value in duplicates:
        values.insert(rng.randrange(len(values)), value)
    return Scenario(token_id, values + redeliveries, newest, revisions)


async def check_database(database_url: str, scenario: Scenario) -> None:
    """orders holds exactly the newest revision of every order; order_revisions every revision once."""
    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        rows = await conn.fetch(
            "SELECT checkout_form_id, revision FROM orders WHERE token_id = $1",
            scenario.token_id,
        )
        assert {r[0]: r[1] for r in rows} == scenario.newest
        history = await conn.fetch(
            "SELECT checkout_form_id, revision FROM order_revisions WHERE token_id = $1", scenario.token_id
        )
        pairs = [(r[0], r[1]) for r in history]
        assert len(pairs) == len(set(pairs))
        assert set(pairs) == scenario.revisions
    finally:
        await conn.close()


def check_changes(records: list[Any], scenario: Scenario, *, exactly_once: bool) -> None:
    """One `created` per order, no change published twice, and each order's last message is its newest."""
    changes = [decode_order_change(r.value) for r in records]
    mine = [c for c in changes if c.token_id == scenario.token_id]
    created = Counter(c.checkout_form_id for c in mine if c.change == "created")
    last = {c.checkout_form_id: c.revision for c in mine}
    assert last == scenario.newest
    assert set(created) == set(scenario.newest)
    if exactly_once:
        assert max(created.values()) == 1
        published = Counter((c.checkout_form_id, c.revision, c.change) for c in mine)
        assert published.most_common(1)[0][1] == 1
        # Revisions of one order only ever go up on the topic (grouped in one pass, in topic order).
        ranks: dict[str, list[int]] = defaultdict(list)
        for c in mine:
            ranks[c.checkout_form_id].append(int(c.revision[1:]))
        for form in scenario.newest:
            assert ranks[form] == sorted(set(ranks[form])), form
