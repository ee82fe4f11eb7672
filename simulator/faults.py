"""Runtime fault settings and the per-client-id rate limiter."""

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ScriptedError(BaseModel):
    """An error answered instead of the real response, to requests whose path starts with `path`.

    `echo` makes the body repeat the request's credentials (bearer token; refresh token or device
    code and client secret on the token endpoint), as Allegro's own bodies sometimes do.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(pattern=r"^/(order|auth/oauth)/", examples=["/order/events"])
    grant_type: Literal["refresh_token", "device_code"] | None = Field(
        default=None, description="On /auth/oauth/token: only this grant (default: any)."
    )
    status: int = Field(ge=400, le=599)
    code: str | None = Field(default=None, max_length=64, description="Error code; a default per status.")
    html: bool = Field(default=False, description="An HTML error page (text/html), as a proxy sends.")
    echo: bool = False
    count: int | None = Field(default=None, ge=1, description="Answers left; null: until replaced.")


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
    errors: tuple[ScriptedError, ...] = ()
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
    errors: list[ScriptedError] | None = None
    short_pages: int | None = Field(default=None, ge=0)
    short_page_drop: int | None = Field(default=None, ge=1, le=99)
    # -1 releases a hold (JSON null cannot be told from an absent field here).
    hold_lists_after: int | None = Field(default=None, ge=-1)

    def apply(self, current: FaultSettings) -> FaultSettings:
        """The settings with this patch's given fields replaced (`errors` replaces the whole list;
        `hold_lists_after: -1` releases a hold)."""
        update = {
            name: getattr(self, name) for name in self.model_fields_set if getattr(self, name) is not None
        }
        if "errors" in update:
            update["errors"] = tuple(update["errors"])
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
