"""Process-wide runtime tuning of the services."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import weakref
from collections.abc import Iterator

import pytest
import uvloop

from core.runtime import freeze_start_up_objects, use_uvloop


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


class _Node:
    def __init__(self) -> None:
        self.me = self


@pytest.mark.usefixtures("restored_collector")
def test_start_up_objects_are_out_of_the_collectors_generations() -> None:
    gc.unfreeze()
    survivor = _Node()
    freeze_start_up_objects()
    assert gc.get_freeze_count() > 0
    # Frozen objects are in no generation the collector walks.
    assert not any(survivor is tracked for tracked in gc.get_objects())


@pytest.mark.usefixtures("restored_collector")
def test_cyclic_garbage_made_later_is_still_collected() -> None:
    freeze_start_up_objects()
    cycle = _Node()
    alive = weakref.ref(cycle)
    del cycle
    assert alive() is not None  # reference counting alone cannot free a cycle
    gc.collect()
    assert alive() is None


@pytest.mark.usefixtures("restored_collector")
def test_a_process_may_collect_young_garbage_less_often() -> None:
    freeze_start_up_objects(young_threshold=50_000)
    assert gc.get_threshold()[0] == 50_000


def test_loops_made_after_use_uvloop_are_uvloop_loops() -> None:
    policy = asyncio.get_event_loop_policy()
    try:
        use_uvloop()
        loop = asyncio.new_event_loop()
        try:
            assert isinstance(loop, uvloop.Loop)
            assert loop.run_until_complete(asyncio.sleep(0, result="ran")) == "ran"
        finally:
            loop.close()
    finally:
        asyncio.set_event_loop_policy(policy)


def test_free_heap_left_between_live_objects_goes_back_to_the_os() -> None:
    # In a fresh interpreter: this process's heap, shaped by every test before, would blur the figures.
    # Large values interleaved with survivors (over 512 bytes, so glibc's heap holds them too, not
    # Python's small-object arenas): once the large ones are freed the heap is full of holes glibc
    # keeps, as only a free top of the heap is returned by itself.
    script = """
import psutil
from core.runtime import release_free_memory
pairs = [(bytes(48 * 1024), bytes(1024)) for _ in range(3000)]  # about 140 MB
survivors = [small for _, small in pairs]
del pairs
before = psutil.Process().memory_info().rss
release_free_memory()
print(before, psutil.Process().memory_info().rss, len(survivors))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    before, after, _ = (int(part) for part in done.stdout.split())
    assert before - after > 64 * 2**20, (before, after)
