"""The journal interval policy: back to the minimum on events, growing while quiet, bounded by class."""

from __future__ import annotations

import random

from core.settings import PollerSettings
from producers.schedule import FIRST_JITTER, JITTER, Cadence


def test_quiet_reads_grow_the_interval_to_the_bound_of_the_class_and_events_reset_it() -> None:
    cadence = Cadence(PollerSettings(), random.Random(1))
    assert (cadence.minimum, cadence.recent_maximum, cadence.maximum) == (5.0, 15.0, 240.0)
    # A first read starts at the bound of its class, or at the minimum when it read events.
    assert cadence.next_interval(None, events=0, recent=False) == 240.0
    assert cadence.next_interval(None, events=0, recent=True) == 15.0
    assert cadence.next_interval(None, events=3, recent=False) == 5.0
    seen, interval = [], 5.0
    for _ in range(7):
        interval = cadence.next_interval(interval, events=0, recent=False)
        seen.append(interval)
    assert seen == [10.0, 20.0, 40.0, 80.0, 160.0, 240.0, 240.0]
    # Recently active: capped at 15 s; and the first read with events brings it back to 5 s.
    assert cadence.next_interval(10.0, events=0, recent=True) == 15.0
    assert cadence.next_interval(240.0, events=1, recent=False) == 5.0


def test_the_fixed_schedule_reads_every_token_at_the_minimum_and_jitter_never_lengthens() -> None:
    fixed = Cadence(PollerSettings(journal_schedule="fixed"), random.Random(2))
    assert {fixed.next_interval(p, events=0, recent=False) for p in (None, 5.0, 240.0)} == {5.0}
    adaptive = Cadence(PollerSettings(), random.Random(3))
    spread = [adaptive.jittered(240.0) for _ in range(1000)]
    assert max(spread) <= 240.0 and min(spread) >= 240.0 * (1 - JITTER)
    assert max(spread) - min(spread) > 240.0 * JITTER / 2  # they do spread
    # A first interval spreads tokens found together over half their bound.
    first = [adaptive.jittered(240.0, first=True) for _ in range(1000)]
    assert max(first) <= 240.0 and min(first) >= 240.0 * (1 - FIRST_JITTER)
    assert max(first) - min(first) > 240.0 * FIRST_JITTER * 0.8


def test_bounds_given_out_of_order_count_as_the_bound_before_them() -> None:
    cadence = Cadence(
        PollerSettings(
            journal_interval_seconds=30.0,
            journal_interval_recent_max_seconds=10.0,
            journal_interval_max_seconds=20.0,
        )
    )
    assert (cadence.minimum, cadence.recent_maximum, cadence.maximum) == (30.0, 30.0, 30.0)
    assert (
        PollerSettings(
            journal_interval_seconds=30.0, journal_interval_max_seconds=20.0
        ).longest_journal_interval()
        == 30.0
    )
