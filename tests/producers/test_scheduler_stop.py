"""The scheduler stops when cancelled, even when the cancellation lands as it is being woken."""

from __future__ import annotations

import asyncio
import uuid
from typing import cast

from core.settings import PollerSettings
from producers.metrics import PollerMetrics
from producers.schedule import Scheduler
from producers.sync import SyncContext
from producers.token_work import PollLedger, TokenWork


def _work() -> TokenWork:
    # Added due in an hour and never polled here, so it needs no context.
    return TokenWork(cast(SyncContext, None), uuid.uuid4(), PollLedger())


async def test_a_cancellation_that_arrives_with_a_wake_up_stops_the_scheduler() -> None:
    for _ in range(5):
        scheduler = Scheduler(PollerSettings(), PollerMetrics.create())
        scheduler.add(_work(), delay=3600)
        running = asyncio.create_task(scheduler.run())
        await asyncio.sleep(0.05)  # waiting for the entry due in an hour
        scheduler.add(_work(), delay=3600)  # wakes the scheduler...
        running.cancel()  # ...as the stop arrives
        done, _ = await asyncio.wait([running], timeout=2)
        assert done, "the scheduler went on after it was cancelled"
        assert running.cancelled()
