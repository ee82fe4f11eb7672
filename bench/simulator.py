"""Simulator list throughput over real HTTP: pages of 100 checkout forms per second.

`python -m bench.simulator [--orders 5000] [--seconds 5] [--concurrency 1]` starts `python -m simulator`
on a free loopback port, links a seller, then reads `GET /order/checkout-forms?limit=100` pages for a
bounded time. Baseline: the same client calling `GET /order/event-stats` (same auth and headers, tiny
body). Progress goes to stderr; the last stdout line is one JSON object.
"""

import argparse
import asyncio
import base64
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.environments import free_port

VENDOR = "application/vnd.allegro.public.v1+json"
TARGET_PAGES_PER_S = 50


def _log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


async def _wait_ready(client: httpx.AsyncClient, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            await client.get("/_sim/stats")
            return
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the simulator did not start") from None
            await asyncio.sleep(0.1)


async def _link(client: httpx.AsyncClient, orders: int) -> str:
    seller_id = (await client.post("/_sim/sellers", json={})).json()["seller_id"]
    started = time.perf_counter()
    await client.post(
        f"/_sim/sellers/{seller_id}/orders", json={"count": orders, "days_back": 330}, timeout=600
    )
    _log(f"generated {orders} orders in {time.perf_counter() - started:.1f} s")
    basic = {"Authorization": "Basic " + base64.b64encode(b"bench:bench").decode()}
    device = (await client.post("/auth/oauth/device", data={"client_id": "bench"}, headers=basic)).json()
    await client.post("/_sim/device/approve", json={"user_code": device["user_code"], "seller_id": seller_id})
    grant = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": device["device_code"],
    }
    token: str = (await client.post("/auth/oauth/token", data=grant, headers=basic)).json()["access_token"]
    return token


async def _measure(
    client: httpx.AsyncClient,
    token: str,
    path: str,
    offsets: list[int],
    seconds: float,
    concurrency: int,
    uncached: bool = False,
) -> tuple[float, int]:
    """Requests per second over `seconds`, and the bytes received."""
    headers = {"Authorization": f"Bearer {token}", "Accept": VENDOR, "User-Agent": "Bench/1.0"}
    done = received = 0
    deadline = time.perf_counter() + seconds

    async def worker(start: int) -> None:
        nonlocal done, received
        index = start
        while time.perf_counter() < deadline:
            params: dict[str, str | int] | None = None
            if offsets:
                params = {"limit": 100, "offset": offsets[index % len(offsets)]}
                if uncached:
                    # A new upper bound each time defeats the simulator's per-query result cache.
                    params["updatedAt.lte"] = f"2100-01-01T00:00:{index % 60:02d}.{index % 1000:03d}Z"
            response = await client.get(path, params=params, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"{path} answered {response.status_code}: {response.text[:200]}")
            done += 1
            received += len(response.content)
            index += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return done / (time.perf_counter() - started), received


def start_simulator(port: int) -> subprocess.Popen[bytes]:
    """`python -m simulator` on 127.0.0.1:`port` with a limit the benchmark cannot reach."""
    command = [
        sys.executable,
        "-m",
        "simulator",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--seed",
        "1",
        "--client-id",
        "bench",
        "--client-secret",
        "bench",
        "--rate-limit-per-min",
        "100000000",
    ]
    repo = Path(__file__).resolve().parents[1]
    return subprocess.Popen(command, cwd=repo, stdout=subprocess.DEVNULL)


async def run(
    process: subprocess.Popen[bytes], port: int, orders: int, seconds: float, concurrency: int
) -> dict[str, object]:
    """Measure list pages and the baseline against a started simulator."""
    limits = httpx.Limits(max_connections=concurrency + 2)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30, limits=limits) as client:
        await _wait_ready(client, process)
        token = await _link(client, orders)
        offsets = list(range(0, min(orders, 10_000) - 99, 100)) or [0]
        _log(f"reading list pages for {seconds} s (concurrency {concurrency})")
        pages_per_s, received = await _measure(
            client, token, "/order/checkout-forms", offsets, seconds, concurrency
        )
        _log(f"  {pages_per_s:.1f} pages/s, {received / seconds / 1e6:.1f} MB/s")
        uncached, _ = await _measure(
            client, token, "/order/checkout-forms", offsets, seconds, concurrency, uncached=True
        )
        _log(f"  uncached (new filter every request): {uncached:.1f} pages/s")
        _log(f"baseline: GET /order/event-stats for {seconds} s")
        baseline, _ = await _measure(client, token, "/order/event-stats", [], seconds, concurrency)
        _log(f"  {baseline:.1f} requests/s")
    return {
        "benchmark": "simulator.list_pages",
        "orders": orders,
        "concurrency": concurrency,
        "pages_per_s": round(pages_per_s, 1),
        "forms_per_s": round(pages_per_s * 100, 1),
        "uncached_pages_per_s": round(uncached, 1),
        "mb_per_s": round(received / seconds / 1e6, 2),
        "baseline_event_stats_per_s": round(baseline, 1),
        "ratio_pages_to_baseline": round(pages_per_s / baseline, 3),
        "target_pages_per_s": TARGET_PAGES_PER_S,
        "meets_target": pages_per_s >= TARGET_PAGES_PER_S,
    }


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.simulator")
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    port = free_port()
    process = start_simulator(port)
    try:
        seconds, concurrency = min(args.seconds, 120.0), max(1, min(args.concurrency, 16))
        result = asyncio.run(run(process, port, args.orders, seconds, concurrency))
    finally:
        process.terminate()
        process.wait(timeout=10)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
