"""Process-wide tuning shared by the long-running services (poller, processor, API)."""

from __future__ import annotations

import asyncio
import ctypes
import functools
import gc
from collections.abc import Callable

import uvloop


def freeze_start_up_objects(*, young_threshold: int | None = None) -> None:
    """Keep the cyclic garbage collector from rescanning what lives as long as the process.

    Our hot paths allocate many short-lived containers (a list page of 100 checkout forms decodes into
    tens of thousands of dicts and lists), so CPython collects often, and every collection that reached
    the oldest generation walked all the imported modules, models and clients again. Measured on a
    100-form page: decoding and validating took 48 µs per form, 21 µs once they were frozen.

    `young_threshold` replaces CPython's 700 allocations between young collections. The worker takes
    50,000; the poller keeps the default: with 50,000, cyclic garbage holding response bodies lived long
    enough to add about 95 MB to its resident memory at 1M orders.

    Call once start-up (imports, settings, app construction) is done: what exists then moves to the
    permanent generation, which collections skip."""
    gc.collect()
    gc.freeze()
    if young_threshold is not None:
        gc.set_threshold(young_threshold, *gc.get_threshold()[1:])


def use_uvloop() -> None:
    """Make every event loop created from now on a uvloop loop.

    Our services are event-loop bound: the worker handles each consumed message through a few tasks and
    futures of Faust's, and all of them write megabytes per second to sockets. In bench.sink the worker
    spent about 11 % less CPU per order on uvloop than on asyncio's own loop (side by side, 30,000
    orders). Call it before the service creates its loop (Faust's worker and its consumer thread create
    theirs from the policy)."""
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to hand back this way
        return None
    return trim


def release_free_memory() -> None:
    """Hand the C heap's free pages back to the operating system (glibc's `malloc_trim`), if it is glibc.

    The worker's messages (3 KB values, their encoded copies, Kafka's send buffers) live outside Python's
    small-object allocator. A burst of them left freed memory in the heap that glibc kept: the worker's
    resident memory after a load sat anywhere from 0 to 80 MB above the same idle worker's, depending on
    the largest burst of the run, and 120 MB of a 265 MB worker was such free heap once it was idle.
    A trim takes milliseconds."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
