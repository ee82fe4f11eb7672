"""Fleet benchmark: N linked sellers on one client id, the adaptive journal schedule against the fixed one.

For each schedule (the fixed 5 s one first, as the baseline, then the adaptive one), in one run on
fresh topics and a database of its own (`<name>_fleet`), every process on this machine on loopback:
1. the simulator, the processor, the API and one poller start; the poller runs `--idle-baseline`
   seconds without any seller (its fixed cost: group heartbeats, scans, metrics);
2. the simulator creates and links N sellers in bulk (`POST /_sim/fleet`); their token rows are written
   straight into the database as a linked, backfilled account looks (sealed with the configured key);
   sellers of the active classes carry the time of their last event, as rows of a running platform do.
   After `--warmup` seconds (every seller polled at least once) a quiet phase of `--quiet-phase` seconds
   without purchases measures what quiet polls cost: all of the poller's CPU over the quiet polls it
   made, and that less the cost without sellers; then the measurement window of `--duration` s begins;
3. during the window, sellers buy on a skewed mix (`POST /_sim/live-orders`): the `minute` class (1 %)
   about once a minute each, the `hour` class (10 %) about once an hour each, and `--idle-sales-per-min`
   purchases at sellers of the idle rest (a seller idle so far that sells);
4. freshness of each purchase: bought (simulator clock) → its row visible in the database the API reads
   (polled every 0.5 s; a sample is then read through the API), per mix class and per actual activity:
   `active_within_hour` when the seller's previous sale (its row's last event, or an earlier purchase of
   the run) is at most an hour before this one, `not_active_within_hour` otherwise, and `all`; after the
   window the run waits up to `--drain` seconds for the last purchases.
Figures of the window: Allegro requests per minute and 429s (simulator counters), poller CPU (cores)
and resident memory, poller CPU per poll, PostgreSQL transactions per minute in the bench database
(pg_stat_database; pg_stat_statements is not assumed), `sync_history` rows per minute, polls by outcome.

Usage: python -m bench.fleet [--sellers 10000] [--duration 180] [--warmup 90] [--quiet-phase 60]
       [--schedules fixed,adaptive]
Progress goes to stderr; the last stdout line is one JSON object, with adaptive/fixed ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import signal
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

from bench._common import fresh_topics
from cli.processes import Child, ProcessGroup, wait_for_port
from core.crypto import KeyRing
from core.settings import KafkaSettings, Settings, get_settings
from db.engine import async_url, asyncpg_dsn
from db.migrate import create_database, downgrade, sibling_database_url, upgrade
from tests.environments import service_env

API_KEY = "bench-api-key"
CLASSES = ("minute", "hour", "idle")
ACTIVITY = ("active_within_hour", "not_active_within_hour", "all")
# A seller "active within the last hour" (the targets' class) sold at most this long before a purchase.
RECENT_SECONDS = 3600.0
LINK_CHUNK = 2_000


def log(message: str) -> None:
    """Progress on stderr."""
    print(f"[fleet] {message}", file=sys.stderr, flush=True)


@dataclass
class Fleet:
    """The linked sellers: seller id → (user id, class); seller id → time of its last sale (epoch s)."""

    sellers: dict[str, tuple[str, str]] = field(default_factory=dict)
    last_sale: dict[str, float] = field(default_factory=dict)

    def of_class(self, name: str) -> list[str]:
        """Seller ids of one activity class."""
        return [seller for seller, (_user, kind) in self.sellers.items() if kind == name]


@dataclass
class Purchase:
    """One purchase made in the window, and when its row became visible."""

    seller_id: str
    form_id: str
    kind: str
    bought: float
    recent: bool
    visible: float | None = None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__.split("\n")[0])
    parser.add_argument("--sellers", type=int, default=10_000, help="linked sellers (default 10,000)")
    parser.add_argument("--duration", type=float, default=180.0, help="measurement window per schedule, s")
    parser.add_argument("--warmup", type=float, default=90.0, help="seconds before the quiet phase begins")
    parser.add_argument(
        "--idle-baseline", type=float, default=30.0, help="seconds measuring the poller before any seller"
    )
    parser.add_argument(
        "--quiet-phase", type=float, default=60.0, help="seconds without purchases measuring quiet polls"
    )
    parser.add_argument("--drain", type=float, default=300.0, help="longest wait for the last purchases, s")
    parser.add_argument("--minute-share", type=float, default=0.01, help="sellers buying ~once a minute")
    parser.add_argument("--hour-share", type=float, default=0.10, help="sellers buying ~once an hour")
    parser.add_argument("--idle-sales-per-min", type=float, default=20.0, help="purchases at idle sellers")
    parser.add_argument("--budget", type=int, default=8000, help="ALLEGRO__REQUESTS_PER_MINUTE")
    parser.add_argument(
        "--schedules", default="fixed,adaptive", help="comma separated, run in this order (default both)"
    )
    parser.add_argument("--port-base", type=int, default=18100, help="first of 4 loopback ports used")
    parser.add_argument("--seed", type=int, default=17)
    return parser.parse_args(argv)


def main() -> None:
    """Run every schedule and print the figures."""
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(json.dumps(asyncio.run(run(args))))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Each schedule on topics and a database of its own, one after the other."""
    settings = get_settings()
    results: dict[str, Any] = {}
    for schedule in args.schedules.split(","):
        async with fresh_topics(settings.kafka.bootstrap_servers) as kafka:
            results[schedule] = await measure(args, settings, kafka, schedule)
        log(f"{schedule}: {json.dumps(results[schedule])}")
    summary: dict[str, Any] = {
        "benchmark": "fleet",
        "sellers": args.sellers,
        "duration_s": args.duration,
        "budget_per_min": args.budget,
        **results,
        "measured_at": datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    if "fixed" in results and "adaptive" in results:
        summary["adaptive_vs_fixed"] = ratios(results["adaptive"], results["fixed"])
    return summary


def ratios(new: dict[str, Any], base: dict[str, Any]) -> dict[str, float | None]:
    """new / base for every number both have (freshness per class flattened)."""
    out: dict[str, float | None] = {}
    for key in ("requests_per_min", "poller_cpu_cores", "poller_rss_mb", "pg_xacts_per_min"):
        out[key] = _ratio(new.get(key), base.get(key))
    out["sync_history_rows_per_min"] = _ratio(
        new["sync_history_rows_per_min"], base["sync_history_rows_per_min"]
    )
    for kind in CLASSES:
        for stat in ("p50_s", "p99_s", "max_s"):
            out[f"freshness_{kind}_{stat}"] = _ratio(
                new["freshness"][kind].get(stat), base["freshness"][kind].get(stat)
            )
    for kind in ACTIVITY:
        for stat in ("p50_s", "p99_s", "max_s"):
            out[f"freshness_{kind}_{stat}"] = _ratio(
                new["freshness_by_activity"][kind].get(stat), base["freshness_by_activity"][kind].get(stat)
            )
    return out


def _ratio(a: Any, b: Any) -> float | None:
    if not isinstance(a, int | float) or not isinstance(b, int | float) or not b:
        return None
    return round(a / b, 3)


async def measure(
    args: argparse.Namespace, settings: Settings, kafka: KafkaSettings, schedule: str
) -> dict[str, Any]:
    """One schedule: build the fleet, run the window, collect the figures."""
    database_url = sibling_database_url(async_url(settings.database.url.get_secret_value()), "fleet")
    await asyncio.to_thread(create_database, database_url)
    await asyncio.to_thread(downgrade, database_url)
    await asyncio.to_thread(upgrade, database_url)
    dsn = asyncpg_dsn(database_url)
    workdir = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    sim_port, api_port, metrics_port, web_port = (args.port_base + i for i in range(4))
    sim_url = f"http://127.0.0.1:{sim_port}"
    # A client id of the run's own, so that its budget is this run's alone.
    client_id = f"fleet-{uuid.uuid4().hex[:8]}"
    env = service_env(kafka, database_url, sim_url, api_port, workdir) | {
        "ALLEGRO__CLIENT_ID": client_id,
        "API__KEYS": API_KEY,
        "LOG_LEVEL": "WARNING",
        "PROCESSOR__METRICS_PORT": str(web_port),
        "ALLEGRO__REQUESTS_PER_MINUTE": str(args.budget),
        # The service's defaults, not the short intervals of the end-to-end tests.
        "POLLER__JOURNAL_INTERVAL_SECONDS": "5",
        "POLLER__JOURNAL_INTERVAL_RECENT_MAX_SECONDS": "15",
        "POLLER__JOURNAL_INTERVAL_MAX_SECONDS": "240",
        "POLLER__POLL_FLUSH_SECONDS": "10",
        "POLLER__LINK_POLL_SECONDS": "1",
        "POLLER__RECONCILE_INTERVAL_SECONDS": "86400",
        "POLLER__RECONCILE_OVERLAP_SECONDS": "3600",
        "POLLER__JOURNAL_SCHEDULE": schedule,
    }
    group = ProcessGroup(workdir / "logs")
    log(f"{schedule}: {args.sellers} sellers; logs in {group.log_dir}")
    try:
        sim_proc = group.start(
            "simulator",
            [
                "simulator",
                *("--port", str(sim_port), "--seed", str(args.seed), "--device-interval", "0"),
                *("--client-id", client_id),
            ],
            env,
        )
        wait_for_port("127.0.0.1", sim_port, 60, sim_proc)
        async with httpx.AsyncClient(base_url=sim_url, timeout=600) as sim:
            group.start("processor", ["processors", "worker"], env)
            api_proc = group.start("api", ["api"], env)
            poller = group.start("poller", ["producers", "run", "--metrics-port", str(metrics_port)], env)
            wait_for_port("127.0.0.1", api_port, 120, api_proc)
            wait_for_port("127.0.0.1", metrics_port, 120, poller)
            baseline = await _without_sellers(args, group, poller)
            fleet = await build_fleet(sim, dsn, settings, args)
            figures = await window(args, sim, dsn, fleet, group, poller, metrics_port, api_port)
            return figures | {
                "without_sellers": baseline,
                "quiet_phase": _marginal(figures["quiet_phase"], baseline),
            }
    finally:
        group.stop_all()


async def build_fleet(
    sim: httpx.AsyncClient, dsn: str, settings: Settings, args: argparse.Namespace
) -> Fleet:
    """Create and link the sellers in the simulator; write their token rows."""
    rng = random.Random(args.seed)
    started = time.monotonic()
    linked: list[dict[str, Any]] = []
    while len(linked) < args.sellers:
        count = min(LINK_CHUNK, args.sellers - len(linked))
        answer = await sim.post("/_sim/fleet", json={"count": count, "login_prefix": f"f{len(linked)}"})
        answer.raise_for_status()
        linked += answer.json()["sellers"]
    minute = round(args.sellers * args.minute_share)
    hour = round(args.sellers * args.hour_share)
    order = list(range(args.sellers))
    rng.shuffle(order)
    kinds = ["idle"] * args.sellers
    for i in order[:minute]:
        kinds[i] = "minute"
    for i in order[minute : minute + hour]:
        kinds[i] = "hour"
    keyring = KeyRing.parse(settings.crypto.keys.get_secret_value())
    now = datetime.now(UTC)
    fleet = Fleet()
    rows = []
    for index, (seller, kind) in enumerate(zip(linked, kinds, strict=True)):
        user_id = f"fleet-user-{index}"
        fleet.sellers[seller["seller_id"]] = (user_id, kind)
        # What a running platform's rows hold: active sellers' last events lie within their cadence.
        last_event = {
            "minute": now - timedelta(seconds=rng.uniform(0, 60)),
            "hour": now - timedelta(seconds=rng.uniform(0, 3600)),
        }.get(kind)
        if last_event is not None:
            fleet.last_sale[seller["seller_id"]] = last_event.timestamp()
        rows.append(
            (
                uuid.uuid4(),
                user_id,
                seller["seller_id"],
                seller["login"],
                keyring.seal(seller["access_token"]),
                keyring.seal(seller["refresh_token"]),
                now + timedelta(seconds=int(seller["expires_in"])),
                seller["scope"],
                now,
                last_event,
            )
        )
    conn = await asyncpg.connect(dsn)
    try:
        await conn.executemany(
            "INSERT INTO user_tokens (id, user_id, seller_id, login, status, access_token, refresh_token,"
            " access_expires_at, scope, cursor_updated_at, backfill_progress, backfill_completed_at,"
            " last_reconcile_at, last_event_at, last_success_at)"
            " VALUES ($1, $2, $3, $4, 'active', $5, $6, $7, $8, $9,"
            ' \'{"reason": "bench.fleet: linked without history"}\'::jsonb, $9, $9, $10, $9)',
            rows,
        )
    finally:
        await conn.close()
    log(
        f"{args.sellers} sellers linked and stored in {time.monotonic() - started:.1f}s ({minute} minute, "
        f"{hour} hour, {args.sellers - minute - hour} idle)"
    )
    return fleet


async def window(
    args: argparse.Namespace,
    sim: httpx.AsyncClient,
    dsn: str,
    fleet: Fleet,
    group: ProcessGroup,
    poller: Child,
    metrics_port: int,
    api_port: int,
) -> dict[str, Any]:
    """Warm up, then buy during the window and collect every figure."""
    conn = await asyncpg.connect(dsn)
    metrics = httpx.AsyncClient(base_url=f"http://127.0.0.1:{metrics_port}", timeout=30)
    try:
        await _sleep_watching(args.warmup, group, "warm-up", metrics)
        quiet = await _quiet_phase(args, sim, conn, group, poller, metrics)
        await sim.post("/_sim/stats/reset")
        before = await _counters(conn, poller, metrics)
        purchases: list[Purchase] = []
        watcher = asyncio.create_task(_watch(conn, purchases))
        await _buy(args, sim, fleet, purchases, group)
        after = await _counters(conn, poller, metrics)
        requests = (await sim.get("/_sim/stats")).json()
        rss_mb = psutil.Process(poller.process.pid).memory_info().rss / 2**20
        deadline = time.monotonic() + args.drain
        while any(p.visible is None for p in purchases) and time.monotonic() < deadline:
            await asyncio.sleep(1)
            if group.dead():
                raise RuntimeError(f"{[c.name for c in group.dead()]} died; logs in {group.log_dir}")
        watcher.cancel()
        api_checked = await _through_api(api_port, fleet, purchases)
    finally:
        await metrics.aclose()
        await conn.close()
    minutes = args.duration / 60
    polls = {k: after["polls"].get(k, 0) - before["polls"].get(k, 0) for k in after["polls"]}
    all_polls = sum(polls.values())
    cpu = after["cpu"] - before["cpu"]
    # The bench's own reads of the database (two a second) are not the service's.
    bench_xacts = after["bench_queries"] - before["bench_queries"]
    return {
        "requests_per_min": round(requests["total"] / minutes),
        "requests": requests["requests"],
        "rate_limited_429": requests["rate_limited"],
        "poller_cpu_cores": round(cpu / args.duration, 3),
        "poller_rss_mb": round(rss_mb, 1),
        "poller_cpu_ms_per_poll": round(cpu * 1000 / all_polls, 3) if all_polls else None,
        "polls_per_min": {k: round(v / minutes) for k, v in polls.items()},
        "pg_xacts_per_min": round((after["xacts"] - before["xacts"] - bench_xacts) / minutes),
        "pg_rows_written_per_min": round((after["written"] - before["written"]) / minutes),
        "sync_history_rows_per_min": round((after["history"] - before["history"]) / minutes, 1),
        "purchases": len(purchases),
        "freshness": {kind: _freshness([p for p in purchases if p.kind == kind]) for kind in CLASSES},
        "freshness_by_activity": {
            "active_within_hour": _freshness([p for p in purchases if p.recent]),
            "not_active_within_hour": _freshness([p for p in purchases if not p.recent]),
            "all": _freshness(purchases),
        },
        "read_through_api": api_checked,
        "quiet_phase": quiet,
    }


async def _without_sellers(args: argparse.Namespace, group: ProcessGroup, poller: Child) -> dict[str, Any]:
    """The poller's CPU while it owns no seller (group heartbeats, scans, metrics): its fixed cost."""
    if args.idle_baseline <= 0:
        return {}
    await asyncio.sleep(5)  # past the start-up
    before = _cpu(poller)
    await asyncio.sleep(args.idle_baseline)
    if group.dead():
        raise RuntimeError(f"{[c.name for c in group.dead()]} died; logs in {group.log_dir}")
    used = _cpu(poller) - before
    log(f"poller without sellers: {used / args.idle_baseline:.4f} core")
    return {"seconds": args.idle_baseline, "poller_cpu_cores": round(used / args.idle_baseline, 4)}


def _marginal(quiet: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """The quiet phase's CPU per quiet poll less the process's cost without sellers."""
    if not quiet or not baseline or not quiet.get("quiet_polls"):
        return quiet
    extra = (quiet["poller_cpu_cores"] - baseline["poller_cpu_cores"]) * quiet["seconds"]
    return quiet | {
        "poller_cpu_ms_per_quiet_poll_beyond_fixed": round(extra * 1000 / quiet["quiet_polls"], 3)
    }


def _cpu(child: Child) -> float:
    used = psutil.Process(child.process.pid).cpu_times()
    return float(used.user + used.system)


async def _quiet_phase(
    args: argparse.Namespace,
    sim: httpx.AsyncClient,
    conn: asyncpg.Connection,
    group: ProcessGroup,
    poller: Child,
    metrics: httpx.AsyncClient,
) -> dict[str, Any]:
    """`--quiet-phase` seconds without purchases: the poller's CPU over the polls it made then."""
    if args.quiet_phase <= 0:
        return {}
    await sim.post("/_sim/stats/reset")
    before = await _counters(conn, poller, metrics)
    await _sleep_watching(args.quiet_phase, group, "quiet phase", metrics)
    after = await _counters(conn, poller, metrics)
    requests = (await sim.get("/_sim/stats")).json()
    minutes = args.quiet_phase / 60
    polls = {k: after["polls"].get(k, 0) - before["polls"].get(k, 0) for k in after["polls"]}
    quiet_polls = polls.get("quiet", 0)
    cpu = after["cpu"] - before["cpu"]
    return {
        "seconds": args.quiet_phase,
        "requests_per_min": round(requests["total"] / minutes),
        "polls_per_min": {k: round(v / minutes) for k, v in polls.items()},
        "quiet_polls": quiet_polls,
        "poller_cpu_cores": round(cpu / args.quiet_phase, 4),
        "poller_cpu_system_share": round((after["cpu_system"] - before["cpu_system"]) / cpu, 3)
        if cpu
        else None,
        # Every CPU second of the process (scans, flushes, group heartbeats included) over the quiet polls.
        "poller_cpu_ms_per_quiet_poll": round(cpu * 1000 / quiet_polls, 3) if quiet_polls else None,
        "sync_history_rows": after["history"] - before["history"],
        "pg_xacts_per_min": round(
            (after["xacts"] - before["xacts"] - (after["bench_queries"] - before["bench_queries"])) / minutes
        ),
    }


async def _sleep_watching(seconds: float, group: ProcessGroup, what: str, metrics: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        dead = group.dead()
        if dead:
            raise RuntimeError(f"{[c.name for c in dead]} died; logs in {group.log_dir}")
        polls = await _polls(metrics)
        log(f"{what}: {deadline - time.monotonic():.0f}s left; polls so far {polls}")
        await asyncio.sleep(min(15.0, max(0.0, deadline - time.monotonic())))


async def _buy(
    args: argparse.Namespace,
    sim: httpx.AsyncClient,
    fleet: Fleet,
    purchases: list[Purchase],
    group: ProcessGroup,
) -> None:
    """Purchases at exponential intervals per class for the window's length."""
    rng = random.Random(args.seed + 1)
    members = {kind: fleet.of_class(kind) for kind in CLASSES}
    rates = {
        "minute": len(members["minute"]) / 60.0,
        "hour": len(members["hour"]) / 3600.0,
        "idle": args.idle_sales_per_min / 60.0,
    }
    idle_left = list(members["idle"])
    rng.shuffle(idle_left)
    start = time.monotonic()
    next_at = {
        kind: start + rng.expovariate(rate) for kind, rate in rates.items() if rate > 0 and members[kind]
    }
    last_report = start
    while True:
        now = time.monotonic()
        if now - start >= args.duration:
            return
        due: list[tuple[str, str]] = []
        for kind, at in list(next_at.items()):
            while at <= now:
                if kind == "idle":
                    if not idle_left:
                        break
                    due.append((idle_left.pop(), kind))
                else:
                    due.append((rng.choice(members[kind]), kind))
                at += rng.expovariate(rates[kind])
            next_at[kind] = at
        if due:
            answer = await sim.post("/_sim/live-orders", json={"seller_ids": [seller for seller, _ in due]})
            answer.raise_for_status()
            for (seller, kind), made in zip(due, answer.json()["orders"], strict=True):
                bought = datetime.fromisoformat(made["bought_at"].replace("Z", "+00:00")).timestamp()
                previous = fleet.last_sale.get(seller)
                recent = previous is not None and bought - previous <= RECENT_SECONDS
                fleet.last_sale[seller] = bought
                purchases.append(Purchase(seller, made["id"], kind, bought, recent))
        if now - last_report > 15:
            last_report = now
            visible = sum(p.visible is not None for p in purchases)
            log(f"window: {now - start:.0f}s; {len(purchases)} purchases, {visible} visible")
            if group.dead():
                raise RuntimeError(f"{[c.name for c in group.dead()]} died; logs in {group.log_dir}")
        await asyncio.sleep(0.2)


_QUERIES = {"count": 0}


async def _watch(conn: asyncpg.Connection, purchases: list[Purchase]) -> None:
    """Every 0.5 s: which pending purchases have a row now."""
    while True:
        pending = {p.form_id: p for p in purchases if p.visible is None}
        if pending:
            _QUERIES["count"] += 1
            rows = await conn.fetch(
                "SELECT checkout_form_id FROM orders WHERE checkout_form_id = ANY($1::text[])", list(pending)
            )
            seen = time.time()
            for row in rows:
                pending[row["checkout_form_id"]].visible = seen
        await asyncio.sleep(0.5)


async def _counters(conn: asyncpg.Connection, poller: Child, metrics: httpx.AsyncClient) -> dict[str, Any]:
    used = psutil.Process(poller.process.pid).cpu_times()
    stats = await conn.fetchrow(
        "SELECT xact_commit + xact_rollback AS xacts, tup_inserted + tup_updated + tup_deleted AS written"
        " FROM pg_stat_database WHERE datname = current_database()"
    )
    _QUERIES["count"] += 2
    history = await conn.fetchval("SELECT count(*) FROM sync_history")
    return {
        "cpu": used.user + used.system,
        "cpu_system": used.system,
        "xacts": int(stats["xacts"]),
        "written": int(stats["written"]),
        "history": int(history),
        "polls": await _polls(metrics),
        "bench_queries": _QUERIES["count"],
    }


_POLLS = re.compile(r'^poller_journal_polls_total\{outcome="([a-z_]+)"\} ([0-9.e+]+)$', re.MULTILINE)


async def _polls(metrics: httpx.AsyncClient) -> dict[str, float]:
    text = (await metrics.get("/metrics")).text
    return {outcome: float(value) for outcome, value in _POLLS.findall(text)}


async def _through_api(api_port: int, fleet: Fleet, purchases: list[Purchase]) -> dict[str, int]:
    """Read up to 20 of the visible purchases through the API: each must answer 200."""
    sample = [p for p in purchases if p.visible is not None][:20]
    ok = 0
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{api_port}", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30
    ) as api:
        for purchase in sample:
            user_id = fleet.sellers[purchase.seller_id][0]
            answer = await api.get(f"/v1/users/{user_id}/orders/{purchase.form_id}")
            ok += answer.status_code == 200
    return {"sampled": len(sample), "ok": ok}


def _freshness(purchases: list[Purchase]) -> dict[str, Any]:
    """Bought → visible, seconds: p50, p99, max; purchases never visible are counted apart."""
    seconds = sorted(p.visible - p.bought for p in purchases if p.visible is not None)
    figures: dict[str, Any] = {"purchases": len(purchases), "never_visible": len(purchases) - len(seconds)}
    if seconds:
        figures |= {
            "p50_s": round(statistics.median(seconds), 1),
            "p99_s": round(_pct(seconds, 99), 1),
            "max_s": round(seconds[-1], 1),
        }
    return figures


def _pct(values: list[float], pct: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


if __name__ == "__main__":
    main()
