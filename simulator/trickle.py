"""Steady background traffic per seller: new purchases and changes at given rates."""

import asyncio
import contextlib
from dataclasses import dataclass

from simulator.mutations import mutate_random
from simulator.orders import OrderBook

_TICK_SECONDS = 0.1


@dataclass(frozen=True, slots=True)
class TrickleRates:
    """Orders created and orders changed per second."""

    new_per_s: float
    changes_per_s: float


class TrickleRunner:
    """One asyncio task per seller; all are cancelled when the app shuts down."""

    def __init__(self, book: OrderBook) -> None:
        self._book = book
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.rates: dict[str, TrickleRates] = {}

    async def start(self, seller_id: str, rates: TrickleRates) -> None:
        """Start (or restart with new rates) the generator of one seller."""
        await self.stop(seller_id)
        self.rates[seller_id] = rates
        self._tasks[seller_id] = asyncio.create_task(self._run(seller_id, rates), name=f"trickle-{seller_id}")

    async def stop(self, seller_id: str) -> bool:
        """Stop one seller's generator; False if none ran."""
        task = self._tasks.pop(seller_id, None)
        self.rates.pop(seller_id, None)
        if task is None:
            return False
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return True

    async def stop_all(self) -> None:
        """Stop every generator (app shutdown)."""
        for seller_id in list(self._tasks):
            await self.stop(seller_id)

    async def _run(self, seller_id: str, rates: TrickleRates) -> None:
        seller = self._book.sellers[seller_id]
        owed_new = owed_changes = 0.0
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(_TICK_SECONDS)
            now = loop.time()
            # Carry fractions over so low rates (0.3/s) still come out right on average.
            owed_new += rates.new_per_s * (now - last)
            owed_changes += rates.changes_per_s * (now - last)
            last = now
            for _ in range(int(owed_new)):
                self._book.create_live_order(seller)
            owed_new -= int(owed_new)
            if int(owed_changes):
                mutate_random(self._book, seller, int(owed_changes))
            owed_changes -= int(owed_changes)
