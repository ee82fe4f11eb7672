"""`python -m bench.api`: the REST API under uvicorn on 127.0.0.1, against the orders of bench.load_orders.

Measures, in one run: `GET …/orders/{id}` latency and throughput at N concurrent keep-alive clients;
a keyset page deep in the list against the first page, beside OFFSET at the same depth (SQL); and the
server's peak resident memory while it streams an export of ~100k orders. The load client is a minimal
HTTP/1.1 client on asyncio streams, so the client's own CPU cost (same 2 cores) stays small.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import httpx
import orjson
import psutil

from api.cursors import CursorCodec, query_hash
from bench.load_orders import BENCH_USER
from core.settings import get_settings
from db.engine import asyncpg_dsn
from db.queries.orders import Keyset, OrderFilters
from tests.environments import free_port

API_KEY = "bench-api-key"
CURSOR_SECRET = "bench-cursor-secret"  # noqa: S105 - a throwaway secret of the bench server
TARGET_P99_MS = 25.0
TARGET_DEPTH_RATIO = 2.0


def log(message: str) -> None:
    """Progress on stderr."""
    print(message, file=sys.stderr, flush=True)


@contextmanager
def api_server(port: int, workers: int = 1) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m api` in a subprocess, stopped on exit."""
    env = {**os.environ, "API__KEYS": API_KEY, "API__CURSOR_SECRET": CURSOR_SECRET, "LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "api", "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    command += ["--workers", str(workers)]
    process = subprocess.Popen(command, env=env)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


async def wait_until_ready(base_url: str) -> None:
    """Poll /healthz until the server answers."""
    async with httpx.AsyncClient(base_url=base_url) as client:
        for _ in range(200):
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise SystemExit("the API did not start")


async def keep_alive_worker(
    port: int, paths: list[str], offset: int, deadline: float, latencies: list[float], warmup_until: float
) -> None:
    """One client: request after request on one connection until the deadline, recording latencies."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    index = offset
    try:
        while (started := time.perf_counter()) < deadline:
            path = paths[index % len(paths)]
            index += 1
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {API_KEY}\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head[:200].decode(errors="replace"))
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            if started >= warmup_until:
                latencies.append(time.perf_counter() - started)
    finally:
        writer.close()


async def measure_get_order(port: int, paths: list[str], clients: int, seconds: float) -> dict[str, Any]:
    """Latency percentiles and throughput of single-order reads at `clients` concurrent connections."""
    latencies: list[float] = []
    warmup_until = time.perf_counter() + 2.0
    deadline = warmup_until + seconds
    await asyncio.gather(
        *(keep_alive_worker(port, paths, i * 997, deadline, latencies, warmup_until) for i in range(clients))
    )
    latencies.sort()
    return {
        "clients": clients,
        "requests": len(latencies),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        "requests_per_s": round(len(latencies) / seconds),
        "target_p99_ms": TARGET_P99_MS,
    }


async def timed_get(client: httpx.AsyncClient, path: str, params: dict[str, str], repeat: int) -> float:
    """Median milliseconds of `repeat` sequential requests."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = await client.get(path, params=params)
        response.raise_for_status()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 2)


async def timed_sql(conn: asyncpg.Connection, sql: str, args: tuple[Any, ...], repeat: int) -> float:
    """Median milliseconds of a query."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await conn.fetch(sql, *args)
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 2)


_COLUMNS = "SELECT id, token_id, checkout_form_id, order_data::text FROM orders WHERE user_id = $1"
_ORDER = " ORDER BY updated_at DESC, id DESC"
DEPTH_ROW_SQL = "SELECT updated_at, id FROM orders WHERE user_id = $1" + _ORDER + " OFFSET $2 LIMIT 1"  # noqa: S608
KEYSET_SQL = _COLUMNS + " AND (updated_at, id) < ($2, $3)" + _ORDER + " LIMIT 50"
OFFSET_SQL = _COLUMNS + _ORDER + " OFFSET $2 LIMIT 50"
LARGEST_SELLER_SQL = (
    "SELECT token_id, count(*) FROM orders WHERE user_id = $1 GROUP BY token_id ORDER BY 2 DESC LIMIT 1"
)


async def measure_depth(
    client: httpx.AsyncClient, conn: asyncpg.Connection, depth: int, repeat: int
) -> dict[str, Any]:
    """First page against a page `depth` rows deep: through the API (keyset) and in SQL (keyset, OFFSET)."""
    value, row_id = await conn.fetchrow(DEPTH_ROW_SQL, BENCH_USER, depth - 1)
    scope = query_hash(user_id=BENCH_USER, sort="updated_at", filters=OrderFilters())
    cursor = CursorCodec(CURSOR_SECRET.encode()).encode(Keyset(value, row_id), query=scope)
    path = f"/v1/users/{BENCH_USER}/orders"
    first_ms = await timed_get(client, path, {"limit": "50"}, repeat)
    deep_ms = await timed_get(client, path, {"limit": "50", "cursor": cursor}, repeat)
    keyset_sql_ms = await timed_sql(conn, KEYSET_SQL, (BENCH_USER, value, row_id), repeat)
    offset_sql_ms = await timed_sql(conn, OFFSET_SQL, (BENCH_USER, depth), max(3, repeat // 10))
    plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + KEYSET_SQL, BENCH_USER, value, row_id))
    return {
        "depth": depth,
        "first_page_ms": first_ms,
        "deep_page_ms": deep_ms,
        "deep_over_first": round(deep_ms / first_ms, 2),
        "target_ratio": TARGET_DEPTH_RATIO,
        "sql_keyset_deep_ms": keyset_sql_ms,
        "sql_offset_deep_ms": offset_sql_ms,
        "offset_over_keyset": round(offset_sql_ms / keyset_sql_ms, 1),
        "keyset_uses_index": "ix_orders_user_id_updated_at_id" in plan and "Sort" not in plan,
    }


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of the server and its worker processes."""
    return process.memory_info().rss + sum(
        child.memory_info().rss for child in process.children(recursive=True)
    )


async def measure_export(base_url: str, server_pid: int, token_id: str) -> dict[str, Any]:
    """Peak RSS of the server while it streams every order of one bench token as NDJSON."""
    server = psutil.Process(server_pid)
    before = tree_rss(server)
    peak, received, lines = before, 0, 0
    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=600) as client:
        params = {"format": "ndjson", "token_id": token_id}
        async with client.stream("GET", f"/v1/users/{BENCH_USER}/orders/export", params=params) as response:
            response.raise_for_status()
            async for chunk in response.aiter_bytes():
                received += len(chunk)
                lines += chunk.count(b"\n")
                peak = max(peak, tree_rss(server))
    seconds = time.perf_counter() - started
    mb = 1024 * 1024
    return {
        "orders": lines,
        "body_mb": round(received / mb, 1),
        "seconds": round(seconds, 1),
        "orders_per_s": round(lines / seconds),
        "rss_before_mb": round(before / mb, 1),
        "rss_peak_mb": round(peak / mb, 1),
        "rss_growth_mb": round((peak - before) / mb, 1),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the server, run the three measurements, stop it."""
    conn = await asyncpg.connect(asyncpg_dsn(get_settings().database.url.get_secret_value()))
    try:
        total = await conn.fetchval("SELECT count(*) FROM orders WHERE user_id = $1", BENCH_USER)
        if total < args.depth + 50:
            raise SystemExit(f"{BENCH_USER} has {total} orders; run python -m bench.load_orders first")
        ids = [
            r[0]
            for r in await conn.fetch(
                "SELECT checkout_form_id FROM orders TABLESAMPLE SYSTEM (1) WHERE user_id = $1 LIMIT $2",
                BENCH_USER,
                args.sample_ids,
            )
        ]
        token_id, token_orders = await conn.fetchrow(LARGEST_SELLER_SQL, BENCH_USER)
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        with api_server(port, args.workers) as server:
            await wait_until_ready(base_url)
            paths = [f"/v1/users/{BENCH_USER}/orders/{form_id}" for form_id in ids]
            log(f"GET orders/{{id}}: {args.clients} clients for {args.seconds}s over {len(ids)} ids")
            get_order = await measure_get_order(port, paths, args.clients, args.seconds)
            log(f"  {get_order}")
            log(f"keyset page at depth {args.depth} vs first page, and OFFSET in SQL")
            headers = {"Authorization": f"Bearer {API_KEY}"}
            async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as client:
                depth = await measure_depth(client, conn, args.depth, args.repeat)
            log(f"  {depth}")
            log(f"export of token {token_id} ({token_orders} orders)")
            export = await measure_export(base_url, server.pid, str(token_id))
            log(f"  {export}")
    finally:
        await conn.close()
    return {
        "orders_of_user": total,
        "get_order": {**get_order, "p99_over_target": round(get_order["p99_ms"] / TARGET_P99_MS, 2)},
        "keyset": depth,
        "export": export,
    }


def main() -> None:
    """Parse options, run, print the figures as the last stdout line."""
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--sample-ids", type=int, default=5000)
    parser.add_argument("--depth", type=int, default=900_000)
    parser.add_argument("--repeat", type=int, default=30, help="sequential repetitions of each page timing")
    args = parser.parse_args()
    print(orjson.dumps(run_fast(run(args))).decode())


def run_fast(main: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """Run on uvloop when installed: the load client shares the 2 cores with the server it measures."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    result: dict[str, Any] = uvloop.run(main)
    return result


if __name__ == "__main__":
    main()
