"""End-to-end benchmark: simulator → poller → Kafka → processor → PostgreSQL, every process on this machine.

Phases, all in one run on fresh topics and a dedicated database (`<name>_bench`):
1. ceiling: how fast the simulator alone serves 100-form list pages (the upstream limit), measured now;
2. throughput: N orders across T linked sellers, from the moment every link is active until every order
   is a row, against that ceiling and the 2,000 orders/s target;
3. latency: new orders at a steady rate; snapshot produced (Kafka timestamp) → row committed, and
   order bought (simulator clock) → row committed, p50/p99;
4. memory: resident memory of poller, worker and API after the load (and after `--memory-orders` more).

Usage: python -m bench.pipeline [--tokens 4] [--orders 10000] [--rate 200] [--latency-seconds 10]
Progress goes to stderr; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench._common import fresh_topics
from cli.processes import ProcessGroup, wait_for_port
from core.settings import KafkaSettings, Settings, get_settings
from core.topics import partition_ids
from db.engine import async_url, asyncpg_dsn
from db.migrate import create_database, downgrade, sibling_database_url, upgrade
from tests.environments import free_port, service_env

API_KEY = "bench-api-key"
TARGET_ORDERS_PER_S = 2000


def log(message: str) -> None:
    """Progress on stderr."""
    print(f"[pipeline] {message}", file=sys.stderr, flush=True)


async def simulator_ceiling(sim: httpx.AsyncClient, seconds: float) -> float:
    """Forms per second the simulator serves in 100-form list pages over one connection."""
    seller = (await sim.post("/_sim/sellers", json={"login": "ceiling"})).json()["seller_id"]
    generated = await sim.post(f"/_sim/sellers/{seller}/orders", json={"count": 2000, "days_back": 300})
    generated.raise_for_status()
    device = await sim.post(
        "/auth/oauth/device", auth=("demo-client", "demo-secret"), data={"client_id": "demo-client"}
    )
    code = device.json()
    await sim.post("/_sim/device/approve", json={"user_code": code["user_code"], "seller_id": seller})
    granted = await sim.post(
        "/auth/oauth/token",
        auth=("demo-client", "demo-secret"),
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": code["device_code"],
        },
    )
    token = granted.json()["access_token"]
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.allegro.public.v1+json",
        "User-Agent": "AllegroOrdersBackup-bench/1.0 (+https://example.invalid)",
    }
    pages, deadline, offset = 0, time.monotonic() + seconds, 0
    started = time.monotonic()
    while time.monotonic() < deadline:
        page = await sim.get(
            "/order/checkout-forms", params={"limit": 100, "offset": offset}, headers=headers
        )
        page.raise_for_status()
        pages += 1
        offset = (offset + 100) % 1900
    return pages * 100 / (time.monotonic() - started)


async def link_all(sim: httpx.AsyncClient, api: httpx.AsyncClient, sellers: list[str]) -> list[str]:
    """Link every seller through the API's device flow, approved through the simulator."""
    token_ids = []
    for index, seller in enumerate(sellers):
        started = await api.post(f"/v1/users/bench-user-{index % 4}/tokens")
        started.raise_for_status()
        body = started.json()
        await sim.post("/_sim/device/approve", json={"user_code": body["user_code"], "seller_id": seller})
        token_ids.append(str(body["token_id"]))
    return token_ids


async def wait_rows(dsn: str, expected: int, limit_s: float, group: ProcessGroup) -> float:
    """Wait until `orders` holds `expected` rows; returns when that happened (monotonic).

    Counts incrementally by primary key while far from the goal: a full count(*) every poll would cost
    the machine more than some of the processes it measures. Concurrent transactions commit out of id
    order, so rows committed behind the highest id seen are missed by that count; from 90 % of the goal
    on, it counts the whole table.
    """
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + limit_s
        last_report = 0.0
        count, last_id = 0, 0
        while time.monotonic() < deadline:
            dead = group.dead()
            if dead:
                raise RuntimeError(f"{[c.name for c in dead]} died; logs in {group.log_dir}")
            if count < 0.9 * expected:
                row = await conn.fetchrow("SELECT count(*), max(id) FROM orders WHERE id > $1", last_id)
                count += row[0]
                last_id = row[1] or last_id
            else:
                count = await conn.fetchval("SELECT count(*) FROM orders")
            if count >= expected:
                return time.monotonic()
            if time.monotonic() - last_report > 5:
                log(f"{count}/{expected} orders stored")
                last_report = time.monotonic()
            await asyncio.sleep(0.25)
    finally:
        await conn.close()
    raise TimeoutError(f"fewer than {expected} orders after {limit_s:.0f} s")


async def snapshot_times(kafka: KafkaSettings, since_ms: int) -> dict[str, float]:
    """Earliest Kafka timestamp (s) of each order key's snapshot produced after `since_ms`."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(kafka.snapshots_topic, p)
            for p in await partition_ids(kafka.bootstrap_servers, kafka.snapshots_topic)
        ]
        consumer.assign(partitions)
        starts = await consumer.offsets_for_times(dict.fromkeys(partitions, since_ms))
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            found = starts.get(tp)
            consumer.seek(tp, found.offset if found else ends[tp])
        times: dict[str, float] = {}
        remaining = {tp for tp in partitions if await consumer.position(tp) < ends[tp]}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, messages in batches.items():
                for message in messages:
                    key = (message.key or b"").decode()
                    times.setdefault(key, message.timestamp / 1000)
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return times
    finally:
        await consumer.stop()


async def latency(dsn: str, kafka: KafkaSettings, since: float) -> dict[str, float]:
    """Snapshot → row and bought → row latencies (ms) of the orders first seen after `since`."""
    produced = await snapshot_times(kafka, int(since * 1000))
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            # Commit time of the transaction that created the row (track_commit_timestamp is on in the
            # launcher's cluster); first_seen_at is the poller's fetch time, before Kafka.
            "SELECT token_id::text || ':' || checkout_form_id AS key,"
            " extract(epoch FROM pg_xact_commit_timestamp(xmin)) AS seen,"
            " extract(epoch FROM bought_at) AS bought"
            " FROM orders WHERE first_seen_at >= to_timestamp($1)",
            since,
        )
    finally:
        await conn.close()
    snapshot_ms = [(float(r["seen"]) - produced[r["key"]]) * 1000 for r in rows if r["key"] in produced]
    bought_ms = [(float(r["seen"]) - float(r["bought"])) * 1000 for r in rows if r["bought"] is not None]
    return {
        "latency_orders": len(rows),
        "latency_matched_snapshots": len(snapshot_ms),
        "snapshot_to_row_p50_ms": _pct(snapshot_ms, 50),
        "snapshot_to_row_p99_ms": _pct(snapshot_ms, 99),
        "bought_to_row_p50_ms": _pct(bought_ms, 50),
        "bought_to_row_p99_ms": _pct(bought_ms, 99),
    }


def _pct(values: list[float], pct: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100)[pct - 1], 1)


def cpu_seconds(group: ProcessGroup) -> dict[str, float]:
    """CPU time (user + system) each service process has used so far."""
    times = {}
    for c in group.children:
        if c.process.poll() is None:
            used = psutil.Process(c.process.pid).cpu_times()
            times[c.name] = used.user + used.system
    return times


def cpu_ms_per_1000(before: dict[str, float], after: dict[str, float], orders: int) -> dict[str, float]:
    """CPU milliseconds each process spent per 1,000 orders between two `cpu_seconds` readings: where
    the pipeline's 2 cores go."""
    return {
        name: round((after[name] - before.get(name, 0.0)) * 1e6 / max(orders, 1), 1)
        for name in after
        if name in before
    }


# The worker hands free heap back to the OS every 10 s (core.runtime.release_free_memory): memory is read
# after a quiet spell, so both readings compare what the processes hold, not how large the last burst was.
SETTLE_SECONDS = 12.0


async def settled_resident_mb(group: ProcessGroup) -> dict[str, float]:
    """Resident memory of each service process, in MB, after `SETTLE_SECONDS` without new orders."""
    await asyncio.sleep(SETTLE_SECONDS)
    return resident_mb(group)


def resident_mb(group: ProcessGroup) -> dict[str, float]:
    """Resident memory of each service process, in MB."""
    return {
        c.name: round(psutil.Process(c.process.pid).memory_info().rss / 2**20, 1)
        for c in group.children
        if c.process.poll() is None
    }


def main() -> None:
    """Run the phases and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=4, help="linked sellers (default 4)")
    parser.add_argument(
        "--orders", type=int, default=10_000, help="orders across all sellers (default 10,000)"
    )
    parser.add_argument("--rate", type=float, default=200.0, help="new orders/s in the latency phase")
    parser.add_argument("--latency-seconds", type=float, default=10.0, help="length of the latency phase")
    parser.add_argument(
        "--memory-orders", type=int, default=0, help="extra orders for the memory-growth phase"
    )
    parser.add_argument(
        "--timeout", type=float, default=1800.0, help="give up after this many seconds a phase"
    )
    args = parser.parse_args()
    # A SIGTERM (a `timeout`, a CI runner) unwinds like Ctrl-C, so the process group stops its children.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(json.dumps(asyncio.run(run(args))))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """The benchmark proper, on topics of its own (deleted at the end, after every process stopped)."""
    settings = get_settings()
    async with fresh_topics(settings.kafka.bootstrap_servers) as kafka:
        return await measure(args, settings, kafka)


async def measure(args: argparse.Namespace, settings: Settings, kafka: KafkaSettings) -> dict[str, Any]:
    """Throughput, latency and memory of the whole pipeline."""
    database_url = sibling_database_url(async_url(settings.database.url.get_secret_value()), "bench")
    await asyncio.to_thread(create_database, database_url)
    await asyncio.to_thread(downgrade, database_url)
    await asyncio.to_thread(upgrade, database_url)
    workdir = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    sim_port, api_port = free_port(), free_port()
    env = service_env(kafka, database_url, f"http://127.0.0.1:{sim_port}", api_port, workdir)
    env |= {"API__KEYS": API_KEY, "LOG_LEVEL": "WARNING", "POLLER__RECONCILE_INTERVAL_SECONDS": "3600"}
    group = ProcessGroup(workdir / "logs")
    dsn = asyncpg_dsn(database_url)
    try:
        sim_proc = group.start(
            "simulator",
            [
                "simulator",
                "--host",
                "127.0.0.1",
                "--port",
                str(sim_port),
                "--seed",
                "3",
                "--device-interval",
                "0",
                "--log-level",
                "warning",
            ],
            env,
        )
        wait_for_port("127.0.0.1", sim_port, 30, sim_proc)
        sim = httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim_port}", timeout=600)
        ceiling = await simulator_ceiling(sim, 5.0)
        log(f"simulator ceiling: {ceiling:.0f} forms/s in list pages")
        sellers = [
            (await sim.post("/_sim/sellers", json={"login": f"bench-{i}"})).json()["seller_id"]
            for i in range(args.tokens)
        ]
        per_seller = args.orders // args.tokens
        for seller in sellers:
            made = await sim.post(
                f"/_sim/sellers/{seller}/orders", json={"count": per_seller, "days_back": 330}
            )
            made.raise_for_status()
        total = per_seller * args.tokens
        log(f"generated {total} orders for {args.tokens} sellers")

        group.start("processor", ["processors", "worker"], env)
        group.start("poller", ["producers"], env)
        api_proc = group.start("api", ["api"], env)
        wait_for_port("127.0.0.1", api_port, 60, api_proc)
        api = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{api_port}", headers={"Authorization": f"Bearer {API_KEY}"}
        )
        started = time.monotonic()
        cpu_at_start = cpu_seconds(group)
        await link_all(sim, api, sellers)
        finished = await wait_rows(dsn, total, args.timeout, group)
        throughput = total / (finished - started)
        load_cpu = cpu_ms_per_1000(cpu_at_start, cpu_seconds(group), total)
        log(f"throughput: {throughput:.0f} orders/s; CPU ms per 1,000 orders: {load_cpu}")
        memory_at_load = await settled_resident_mb(group)

        await sim.post("/_sim/stats/reset")
        since = time.time()
        cpu_at_trickle = cpu_seconds(group)
        per_seller_rate = args.rate / args.tokens
        for seller in sellers:
            await sim.post(
                f"/_sim/sellers/{seller}/trickle", json={"new_per_s": per_seller_rate, "changes_per_s": 0}
            )
        await asyncio.sleep(args.latency_seconds)
        for seller in sellers:
            await sim.delete(f"/_sim/sellers/{seller}/trickle")
        await asyncio.sleep(3)
        latencies = await latency(dsn, kafka, since)
        trickle_cpu = cpu_ms_per_1000(cpu_at_trickle, cpu_seconds(group), int(latencies["latency_orders"]))
        log(f"latency: {latencies}; CPU ms per 1,000 orders: {trickle_cpu}")
        requests = (await sim.get("/_sim/stats")).json()
        log(f"Allegro requests in the latency phase: {requests}")

        memory: dict[str, Any] = {"at_load": memory_at_load}
        if args.memory_orders:
            # More sellers, linked the same way: their backfills bring the store to the larger size.
            extra = args.memory_orders // args.tokens
            more = [
                (await sim.post("/_sim/sellers", json={"login": f"bench-more-{i}"})).json()["seller_id"]
                for i in range(args.tokens)
            ]
            for seller in more:
                made = await sim.post(
                    f"/_sim/sellers/{seller}/orders", json={"count": extra, "days_back": 330}
                )
                made.raise_for_status()
            count = await asyncpg_fetch_count(dsn)
            log(f"memory phase: {extra * args.tokens} more orders for {args.tokens} more sellers")
            await link_all(sim, api, more)
            await wait_rows(dsn, count + extra * args.tokens, args.timeout, group)
            memory["after_more"] = await settled_resident_mb(group)
            memory["orders_after_more"] = await asyncpg_fetch_count(dsn)
            memory["growth_mb"] = {
                name: round(memory["after_more"][name] - memory_at_load.get(name, 0.0), 1)
                for name in memory["after_more"]
            }
        return {
            "benchmark": "pipeline",
            "tokens": args.tokens,
            "orders": total,
            "orders_per_s": round(throughput, 1),
            "target_orders_per_s": TARGET_ORDERS_PER_S,
            "ratio_to_target": round(throughput / TARGET_ORDERS_PER_S, 2),
            "load_cpu_ms_per_1000_orders": load_cpu,
            "baseline_simulator_forms_per_s": round(ceiling, 1),
            "ratio_to_simulator_ceiling": round(throughput / ceiling, 2),
            "latency_rate_per_s": args.rate,
            **latencies,
            "latency_phase_cpu_ms_per_1000_orders": trickle_cpu,
            "latency_phase_allegro_requests": requests["total"],
            "latency_phase_requests_per_1000_orders": round(
                requests["total"] * 1000 / max(latencies["latency_orders"], 1), 1
            ),
            "resident_mb": memory,
            "measured_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        }
    finally:
        group.stop_all()


async def asyncpg_fetch_count(dsn: str) -> int:
    """Rows in `orders` now."""
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM orders"))
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
