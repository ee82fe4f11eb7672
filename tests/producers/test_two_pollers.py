"""Two poller processes split the tokens through Kafka group membership; a killed one's tokens move."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from core.settings import KafkaSettings
from tests.environments import kafka_env
from tests.producers.conftest import KEYS, Sim, SnapshotReader, start_link, wait_for

ROOT = Path(__file__).resolve().parents[2]


def _spawn(sim: Sim, kafka: KafkaSettings, database_url: str, log_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE__URL": database_url,
        # Every topic of the test's own (the records topic included: a poller publishing to a topic that
        # does not exist waits for its metadata, and its tokens' syncs with it).
        **kafka_env(kafka),
        "ALLEGRO__AUTH_URL": sim.url,
        "ALLEGRO__API_URL": sim.url,
        "ALLEGRO__CLIENT_ID": sim.client_id,
        "CRYPTO__KEYS": KEYS,
        "POLLER__JOURNAL_INTERVAL_SECONDS": "0.5",
        # Quiet sellers read at least every 2 s (the adaptive schedule's bounds, shortened as in
        # tests.environments.service_env): new orders are seen within seconds, not the default 15 s.
        "POLLER__JOURNAL_INTERVAL_RECENT_MAX_SECONDS": "1",
        "POLLER__JOURNAL_INTERVAL_MAX_SECONDS": "2",
        "POLLER__LINK_POLL_SECONDS": "0.3",
        "LOG_JSON": "true",
        "LOG_LEVEL": "INFO",
    }
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "producers", "run"],
            cwd=ROOT,
            env=env,
            stderr=log,
            stdout=subprocess.DEVNULL,
        )


def _ownership(log_paths: list[Path], killed: dict[str, float]) -> dict[str, list[tuple[float, float, str]]]:
    """token_id -> [(start, stop, poller)] from the 'token work started/stopped' lines."""
    intervals: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for path in log_paths:
        open_since: dict[str, tuple[float, str]] = {}
        for line in path.read_bytes().splitlines():
            try:
                entry: dict[str, Any] = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if entry.get("msg") not in ("token work started", "token work stopped"):
                continue
            at = datetime.fromisoformat(entry["ts"]).timestamp()
            token, poller = entry["token_id"], entry["poller"]
            if entry["msg"] == "token work started":
                open_since[token] = (at, poller)
            elif token in open_since:
                start, _ = open_since.pop(token)
                intervals[token].append((start, at, poller))
        for token, (start, poller) in open_since.items():
            intervals[token].append((start, killed.get(str(path), time.time()), poller))
    return intervals


async def test_two_pollers_never_poll_one_token_at_once_and_a_survivor_takes_over(
    sim: Sim,
    db: AsyncEngine,
    kafka_settings: KafkaSettings,
    snapshots: SnapshotReader,
    poller_database_url: str,
    tmp_path: Path,
) -> None:
    sellers, tokens = [], []
    for index in range(10):
        seller = await sim.seller()
        await sim.control("POST", f"/sellers/{seller}/orders", {"count": 15, "days_back": 30})
        sellers.append(seller)
        tokens.append(await start_link(sim, db, user_id=f"user-{index}", seller_id=seller))
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    first = _spawn(sim, kafka_settings, poller_database_url, logs[0])
    second = _spawn(sim, kafka_settings, poller_database_url, logs[1])
    killed: dict[str, float] = {}
    try:
        for seller, token in zip(sellers, tokens, strict=True):
            await snapshots.wait_matches(token, await sim.truth(seller), within=90)
        # Both members hold tokens once the group has rebalanced.
        await wait_for(lambda: _both_work(logs), within=40, what="both pollers to own tokens")
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed[str(logs[0])] = time.time()
        for seller in sellers:
            await sim.control("POST", f"/sellers/{seller}/orders", {"count": 3, "days_back": 0.0005})
        for seller, token in zip(sellers, tokens, strict=True):
            await snapshots.wait_matches(token, await sim.truth(seller), within=90)
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(second.wait, 30)
    assert second.returncode == 0
    owners = _ownership(logs, killed)
    for token_key, spans in owners.items():
        spans.sort()
        for start, end, who in spans:
            for other_start, other_end, other in spans:
                overlap = start < other_end and other_start < end
                assert who == other or not overlap, f"token {token_key} polled by {who} and {other} at once"
    survivor = _poller_of(logs[1])
    # Every token ended up with the survivor.
    assert all(spans[-1][2] == survivor for spans in owners.values())
    assert len(owners) == 10


def _poller_of(path: Path) -> str:
    for line in path.read_bytes().splitlines():
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if "poller" in entry:
            return str(entry["poller"])
    raise AssertionError(f"no poller id in {path}")


def _both_work(logs: list[Path]) -> bool:
    owners = _ownership(logs, {})
    live = {spans[-1][2] for spans in owners.values() if spans}
    return len({p for spans in owners.values() for _, _, p in spans}) == 2 and len(live) >= 1
