"""HTTP transport benchmark: client CPU per `GET /order/events` (a quiet journal poll's one request).

Starts the simulator on a loopback port, links `--sellers` sellers in bulk, then makes `--requests`
journal reads per seller at once (one connection each) through: httpx with its own transport
(httpcore), httpx over aiohttp (`httpx_aiohttp.AiohttpTransport`, what the poller uses), the poller's
`AllegroClient.events` on that (retries, metrics, parsing, its cached URLs and cookie-less client) and
plain aiohttp (the floor), each on uvloop as the poller runs; then `--spaced` requests of the poller's
client one at a time, back to back and 45 ms apart (an idle process woken for each). Reports this
process's CPU milliseconds per request (user + system), measured in the same run.

Usage: python -m bench.transport [--sellers 16] [--requests 100] [--spaced 300] [--port 18110]
The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import httpx
import uvloop
from httpx_aiohttp import AiohttpTransport
from prometheus_client import CollectorRegistry

from allegro_api.client import AllegroClient, ResponseObserver
from allegro_api.http import allegro_http_client
from cli.processes import wait_for_port
from producers.metrics import PollerMetrics

# The gap between one-at-a-time requests: about a quiet poll every 45 ms, 3,000 sellers' worth.
SPACING = 0.045

HEADERS = {
    "Accept": "application/vnd.allegro.public.v1+json",
    "User-Agent": "bench/1.0 (+https://example.invalid)",
}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _observer() -> ResponseObserver:
    """The poller's response metrics, on a registry of this run's own."""
    metrics = PollerMetrics.create(CollectorRegistry())
    return metrics.observe_response


async def _measure(tokens: list[str], per_token: int, get: Callable[[str], Awaitable[None]]) -> float:
    """CPU ms per request of `get` over every token at once."""

    async def reads(token: str, count: int) -> None:
        for _ in range(count):
            await get(token)

    await asyncio.gather(*(reads(token, 5) for token in tokens))  # connections opened, caches warm
    before = _cpu()
    await asyncio.gather(*(reads(token, per_token) for token in tokens))
    return (_cpu() - before) * 1000 / (len(tokens) * per_token)


async def _one_at_a_time(
    tokens: list[str], count: int, gap: float, get: Callable[[str], Awaitable[None]]
) -> float:
    """CPU ms per request of `count` requests made one after another, `gap` seconds apart."""
    before = _cpu()
    for index in range(count):
        await get(tokens[index % len(tokens)])
        if gap:
            await asyncio.sleep(gap)
    return (_cpu() - before) * 1000 / count


async def run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    """Every client in turn against the simulator at `url`."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as control:
        fleet = (await control.post("/_sim/fleet", json={"count": args.sellers})).json()["sellers"]
    tokens = [seller["access_token"] for seller in fleet]
    limits = httpx.Limits(max_connections=len(tokens), max_keepalive_connections=len(tokens))
    results: dict[str, float] = {}
    for name, transport in (
        ("httpx_httpcore", None),
        ("httpx_over_aiohttp", AiohttpTransport(limits=limits)),
    ):
        client = httpx.AsyncClient(base_url=url, timeout=30, limits=limits, transport=transport)
        async with client:

            async def get(token: str, client: httpx.AsyncClient = client) -> None:
                headers = {**HEADERS, "Authorization": f"Bearer {token}"}
                answer = await client.get("/order/events", params={"limit": 1000}, headers=headers)
                answer.raise_for_status()

            results[name] = await _measure(tokens, args.requests, get)
    # The poller's own client: retries, metrics, answer parsing, cached URLs, no cookie jar.
    async with allegro_http_client(timeout_seconds=30, transport=AiohttpTransport(limits=limits)) as http:
        allegro = AllegroClient(http, api_url=url, user_agent=HEADERS["User-Agent"], observer=_observer())

        async def events(token: str) -> None:
            await allegro.events(access_token=token, limit=1000)

        results["allegro_client"] = await _measure(tokens, args.requests, events)
        # One request at a time, back to back and then with the process idle between requests (as a
        # poller's quiet reads are when few are due at once): what waking up costs.
        spaced = {gap: await _one_at_a_time(tokens, args.spaced, gap, events) for gap in (0.0, SPACING)}
    connector = aiohttp.TCPConnector(limit=len(tokens))
    async with aiohttp.ClientSession(url, connector=connector) as session:

        async def plain(token: str) -> None:
            headers = {**HEADERS, "Authorization": f"Bearer {token}"}
            async with session.get("/order/events", params={"limit": "1000"}, headers=headers) as answer:
                answer.raise_for_status()
                await answer.read()

        results["aiohttp"] = await _measure(tokens, args.requests, plain)
    return {
        "benchmark": "transport",
        "requests": args.sellers * args.requests,
        "cpu_ms_per_request": {name: round(value, 3) for name, value in results.items()},
        "httpx_over_aiohttp_vs_httpcore": round(results["httpx_over_aiohttp"] / results["httpx_httpcore"], 3),
        "allegro_client_one_at_a_time_cpu_ms": {
            "back_to_back": round(spaced[0.0], 3),
            f"{SPACING * 1000:.0f}_ms_apart": round(spaced[SPACING], 3),
        },
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def main() -> None:
    """Parse options, run, print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.transport", description=__doc__.split("\n")[0])
    parser.add_argument("--sellers", type=int, default=16, help="sellers read at once (default 16)")
    parser.add_argument("--requests", type=int, default=100, help="reads per seller per client (default 100)")
    parser.add_argument("--port", type=int, default=18110, help="the simulator's loopback port")
    parser.add_argument(
        "--spaced", type=int, default=300, help="requests made one at a time, back to back and spaced"
    )
    args = parser.parse_args()
    simulator = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--port", str(args.port), "--device-interval", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port("127.0.0.1", args.port, 60)
        uvloop.install()
        print(json.dumps(asyncio.run(run(args, f"http://127.0.0.1:{args.port}"))))
    finally:
        simulator.terminate()
        simulator.wait()


if __name__ == "__main__":
    main()
