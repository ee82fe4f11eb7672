"""ASGI middleware: a `trace-id` on every response and per-route counters of public traffic."""

import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from simulator.state import RequestStats


class TraceAndStatsMiddleware:
    """Adds `trace-id`; counts `/auth` and `/order` requests by method, route template and status."""

    def __init__(self, app: ASGIApp, stats: RequestStats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wrap one request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_with_trace(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"trace-id", secrets.token_hex(16).encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_trace)
        finally:
            path: str = scope["path"]
            if not path.startswith("/_sim"):
                route = scope.get("route")
                template = getattr(route, "path", path)
                self.stats.requests[f"{scope['method']} {template} {status}"] += 1
                self.stats.total += 1
