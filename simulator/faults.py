"""Runtime fault settings and the per-client-id rate limiter."""

import math
from collections import deque
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field


class FaultSettings(BaseModel):
    """The whole fault configuration, as `GET /_sim/faults` shows it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate_limit_per_min: int = Field(default=9000, ge=1)
    block_seconds: float = Field(default=60.0, ge=0)
    retry_after: bool = True
    error_rate_5xx: float = Field(default=0.0, ge=0, le=1)
    latency_ms: int = Field(default=0, ge=0, le=60_000)
    burst_429: int = Field(default=0, ge=0)
    duplicate_events: float = Field(default=0.0, ge=0, le=1)
    reorder_events: float = Field(default=0.0, ge=0, le=1)
    drop_events: float = Field(default=0.0, ge=0, le=1)
    # The next N list pages that hold more than `short_page_drop` forms are served short: that many forms
    # from the middle of the page are left out and `count` says so, `totalCount` does not (field case
    # short-page: 97 of 100 forms, `totalCount` 250).
    short_pages: int = Field(default=0, ge=0)
    short_page_drop: int = Field(default=3, ge=1, le=99)
    # After this many more list pages, list requests wait until the setting changes (null: never hold),
    # so a test can change the world between two pages of a walk.
    hold_lists_after: int | None = Field(default=None, ge=0)


class FaultPatch(BaseModel):
    """A `PUT /_sim/faults` body: any subset of the settings."""

    model_config = ConfigDict(extra="forbid")

    rate_limit_per_min: int | None = Field(default=None, ge=1)
    block_seconds: float | None = Field(default=None, ge=0)
    retry_after: bool | None = None
    error_rate_5xx: float | None = Field(default=None, ge=0, le=1)
    latency_ms: int | None = Field(default=None, ge=0, le=60_000)
    burst_429: int | None = Field(default=None, ge=0)
    duplicate_events: float | None = Field(default=None, ge=0, le=1)
    reorder_events: float | None = Field(default=None, ge=0, le=1)
    drop_events: float | None = Field(default=None, ge=0, le=1)
    short_pages: int | None = Field(default=None, ge=0)
    short_page_drop: int | None = Field(default=None, ge=1, le=99)
    # -1 releases a hold (JSON null cannot be told from an absent field here).
    hold_lists_after: int | None = Field(default=None, ge=-1)

    def apply(self, current: FaultSettings) -> FaultSettings:
        """The settings with this patch's given fields replaced."""
        update = self.model_dump(exclude_none=True)
        if update.get("hold_lists_after") == -1:
            update["hold_lists_after"] = None
        return current.model_copy(update=update)


@dataclass(slots=True)
class HiddenForm:
    """A form whose detail GET answers 404 for a number of requests and/or until a moment passes."""

    requests: int
    until: float

    def hides(self, now: float) -> bool:
        """Whether this request gets a 404 (counts the request down)."""
        if self.requests > 0:
            self.requests -= 1
            return True
        return now < self.until

    def spent(self, now: float) -> bool:
        """True when it will hide nothing more."""
        return self.requests <= 0 and now >= self.until


@dataclass(slots=True)
class RateLimiter:
    """Sliding 60 s window per client id; going past the limit blocks the client id for a while."""

    windows: dict[str, deque[float]] = field(default_factory=dict)
    blocked_until: dict[str, float] = field(default_factory=dict)

    def admit(self, client_id: str, now: float, limit: int, block_seconds: float) -> float | None:
        """None if the request may pass, else the seconds the client id stays blocked."""
        until = self.blocked_until.get(client_id, 0.0)
        if now < until:
            return until - now
        window = self.windows.setdefault(client_id, deque())
        while window and window[0] <= now - 60.0:
            window.popleft()
        if len(window) >= limit:
            # Allegro blocks the whole client id once it passes its per-minute budget.
            self.blocked_until[client_id] = now + block_seconds
            window.clear()
            return block_seconds
        window.append(now)
        return None


def retry_after_header(seconds: float) -> str:
    """A Retry-After value in whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
