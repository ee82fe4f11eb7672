"""Everything one simulator instance owns; kept on the FastAPI app as app.state.sim, never in a module."""

from collections import Counter
from dataclasses import dataclass, field

from simulator.config import SimulatorConfig
from simulator.faults import FaultSettings, HiddenForm, RateLimiter
from simulator.oauth import OAuthServer
from simulator.orders import OrderBook
from simulator.records import RecordKeeper
from simulator.trickle import TrickleRunner


@dataclass(slots=True)
class RequestStats:
    """Counters of public API requests (`/auth` and `/order`, not `/_sim`)."""

    requests: Counter[str] = field(default_factory=Counter)
    total: int = 0
    rate_limited: int = 0

    def reset(self) -> None:
        """Zero every counter."""
        self.requests.clear()
        self.total = 0
        self.rate_limited = 0


class SimulatorState:
    """The simulator's world: orders, tokens, faults, limiter, counters, background generators."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.faults = FaultSettings(
            rate_limit_per_min=config.rate_limit_per_min, block_seconds=config.block_seconds
        )
        self.book = OrderBook(config, lambda: self.faults)
        self.oauth = OAuthServer(config)
        self.limiter = RateLimiter()
        self.stats = RequestStats()
        self.trickle = TrickleRunner(self.book)
        self.records = RecordKeeper(config.seed, config.records_requests_per_second)
        # Forms whose detail GET answers 404 for a while (`POST /_sim/faults/not-found`), by id.
        self.hidden_forms: dict[str, HiddenForm] = {}
