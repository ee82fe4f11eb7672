"""Process-wide runtime tuning of the services."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from core.runtime import YOUNG_COLLECTION_THRESHOLD, tune_garbage_collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_start_up_objects_are_frozen_and_young_collections_are_rarer() -> None:
    gc.unfreeze()
    survivor = {"lives": "as long as the process"}
    tune_garbage_collector()
    assert gc.get_threshold()[0] == YOUNG_COLLECTION_THRESHOLD
    assert gc.get_freeze_count() > 0
    # Frozen objects are out of every generation the collector walks.
    assert not any(survivor is tracked for tracked in gc.get_objects())


class _Node:
    def __init__(self) -> None:
        self.me = self


@pytest.mark.usefixtures("restored_collector")
def test_cyclic_garbage_is_still_collected() -> None:
    tune_garbage_collector()
    cycle = _Node()
    alive = weakref.ref(cycle)
    del cycle
    assert alive() is not None  # reference counting alone cannot free a cycle
    gc.collect()
    assert alive() is None
