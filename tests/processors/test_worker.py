"""The worker as a real subprocess on real Kafka and PostgreSQL: results, crashes, outages, poison, scale."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.settings import KafkaSettings
from tests.environments import free_port
from tests.processors.factory import snapshot
from tests.processors.proxy import TcpProxy
from tests.processors.scenario import Scenario, build_scenario, check_changes, check_database
from tests.processors.worker import (
    Worker,
    consume_all,
    count_orders,
    outbox_empty,
    produce,
    stable_group_members,
    wait_until,
    worker_env,
)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[Worker]]:
    """Workers started by the test; all are killed at the end whatever happens."""
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.kill()


def new_worker(
    kafka: KafkaSettings, database_url: str, tmp_path: Path, workers: list[Worker], *, app_id: str, name: str
) -> Worker:
    env = worker_env(kafka, database_url, app_id, tmp_path / f"faust-{name}")
    worker = Worker(env, tmp_path / f"{name}.log")
    workers.append(worker)
    return worker


async def wait_for_scenario(
    database_url: str, scenario: Scenario, workers: list[Worker], within: float
) -> None:
    async def all_newest() -> bool:
        done = 0
        for revision in {int(r[1:]) for r in scenario.newest.values()}:
            done += await count_orders(database_url, scenario.token_id, f"r{revision}")
        return done == len(scenario.newest)

    await wait_until(all_newest, within=within, what="every order stored", workers=workers)


@pytest.mark.slow
async def test_50k_snapshots_with_duplicates_store_newest_and_publish_each_change_once(
    kafka_settings: KafkaSettings, database_url: str, tmp_path: Path, workers: list[Worker]
) -> None:
    scenario = build_scenario(50_000, seed=1)
    assert len(scenario.messages) >= 50_000
    await produce(kafka_settings.bootstrap_servers, kafka_settings.snapshots_topic, scenario.messages)
    worker = new_worker(
        kafka_settings, database_url, tmp_path, workers, app_id=f"a{uuid.uuid4().hex}", name="w"
    )
    worker.start()
    await wait_for_scenario(database_url, scenario, workers, within=120)
    # The last batch's changes are published after its commit.
    await wait_until(
        lambda: outbox_empty(database_url), within=30, what="the outbox drained", workers=workers
    )
    await check_database(database_url, scenario)
    records = await consume_all(kafka_settings.bootstrap_servers, kafka_settings.orders_topic, 2)
    check_changes(records, scenario, exactly_once=True)


@pytest.mark.slow
async def test_kill_9_at_random_moments_loses_nothing_and_duplicates_nothing(
    kafka_settings: KafkaSettings, database_url: str, tmp_path: Path, workers: list[Worker]
) -> None:
    scenario = build_scenario(20_000, seed=2)
    await produce(kafka_settings.bootstrap_servers, kafka_settings.snapshots_topic, scenario.messages)
    app_id = f"a{uuid.uuid4().hex}"
    rng = random.Random(3)
    for kill in range(5):
        worker = new_worker(kafka_settings, database_url, tmp_path, workers, app_id=app_id, name=f"w{kill}")
        worker.start()
        await asyncio.sleep(rng.uniform(2.5, 5.0))
        worker.kill()
    last = new_worker(kafka_settings, database_url, tmp_path, workers, app_id=app_id, name="last")
    last.start()
    await wait_for_scenario(database_url, scenario, workers[-1:], within=120)
    await wait_until(lambda: outbox_empty(database_url), within=30, what="the outbox drained", workers=[last])
    await check_database(database_url, scenario)
    records = await consume_all(kafka_settings.bootstrap_servers, kafka_settings.orders_topic, 2)
    check_changes(records, scenario, exactly_once=False)


@pytest.mark.slow
async def test_postgresql_away_for_20s_loses_nothing_and_the_worker_resumes_by_itself(
    kafka_settings: KafkaSettings, database_url: str, tmp_path: Path, workers: list[Worker]
) -> None:
    target = urlsplit(database_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432, free_port())
    await proxy.start()
    proxied_url = database_url.replace(f"{target.hostname}:{target.port}", f"127.0.0.1:{proxy.port}")
    scenario = build_scenario(6_000, seed=4)
    first, rest = scenario.messages[:2_000], scenario.messages[2_000:]
    worker = new_worker(
        kafka_settings, proxied_url, tmp_path, workers, app_id=f"a{uuid.uuid4().hex}", name="w"
    )
    worker.start()
    try:
        await produce(kafka_settings.bootstrap_servers, kafka_settings.snapshots_topic, first)

        async def some_stored() -> bool:
            return await count_orders(database_url, scenario.token_id) > 0

        await wait_until(some_stored, within=60, what="the first batches", workers=workers)
        await proxy.stop()
        await produce(kafka_settings.bootstrap_servers, kafka_settings.snapshots_topic, rest)
        await asyncio.sleep(20)
        assert worker.alive()
        await proxy.start()
        await wait_for_scenario(database_url, scenario, workers, within=90)
        await check_database(database_url, scenario)
    finally:
        await proxy.stop()


async def test_malformed_messages_go_to_the_dlq_with_headers_and_the_stream_goes_on(
    kafka_settings: KafkaSettings, database_url: str, tmp_path: Path, workers: list[Worker]
) -> None:
    token_id = uuid.uuid4()
    good = [snapshot(token_id, f"g{i}", 1) for i in range(3)]
    bad: list[bytes] = [
        b"{not json",
        orjson.dumps({"schema_version": 1, "token_id": str(token_id)}),
        orjson.dumps(good[0] | {"schema_version": 2}),
        orjson.dumps(
            good[0] | {"buyer_login": "x" * 200, "checkout_form": '{"pad": "' + "y" * 300_000 + '"}'}
        ),
        orjson.dumps(good[0] | {"checkout_form_id": "g-poison", "checkout_form": '{"broken": }'}),
    ]
    await produce(
        kafka_settings.bootstrap_servers, kafka_settings.snapshots_topic, [good[0], *bad, *good[1:]]
    )
    await produce(kafka_settings.bootstrap_servers, kafka_settings.sync_runs_topic, [b'{"phase": "started"}'])
    worker = new_worker(
        kafka_settings, database_url, tmp_path, workers, app_id=f"a{uuid.uuid4().hex}", name="w"
    )
    worker.env["KAFKA__MAX_MESSAGE_BYTES"] = str(100_000)
    worker.start()

    async def good_stored() -> bool:
        return await count_orders(database_url, token_id) == 3

    await wait_until(good_stored, within=60, what="the good snapshots", workers=workers)

    async def all_dead_lettered() -> bool:
        return len(await consume_all(kafka_settings.bootstrap_servers, kafka_settings.dlq_topic, 2)) == 6

    try:
        await wait_until(all_dead_lettered, within=30, what="six dead letters", workers=workers)
    except AssertionError:
        found = await consume_all(kafka_settings.bootstrap_servers, kafka_settings.dlq_topic, 2)
        raise AssertionError([dict(r.headers) for r in found]) from None
    letters = await consume_all(kafka_settings.bootstrap_servers, kafka_settings.dlq_topic, 2)
    by_value = {record.value: dict(record.headers) for record in letters}
    assert set(by_value) == {*bad, b'{"phase": "started"}'}
    headers = by_value[bad[0]]
    assert headers["error_class"] == b"ContractError"
    assert headers["source_topic"] == kafka_settings.snapshots_topic.encode()
    assert {"error_message", "source_partition", "source_offset", "first_failed_at"} <= set(headers)
    assert by_value[bad[3]]["error_class"] == b"MessageTooLarge"
    assert by_value[bad[4]]["error_class"] == b"InvalidTextRepresentationError"
    assert by_value[b'{"phase": "started"}']["source_topic"] == kafka_settings.sync_runs_topic.encode()


def metric(text: str, name: str, **labels: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


async def scrape(worker: Worker) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", worker.metrics_port)
    writer.write(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
    body = await reader.read()
    writer.close()
    return body.split(b"\r\n\r\n", 1)[1].decode()


@pytest.mark.slow
async def test_two_workers_share_the_partitions_and_a_rebalance_loses_nothing(
    kafka_settings: KafkaSettings, database_url: str, tmp_path: Path, workers: list[Worker]
) -> None:
    scenario = build_scenario(12_000, seed=5)
    app_id = f"a{uuid.uuid4().hex}"
    one = new_worker(kafka_settings, database_url, tmp_path, workers, app_id=app_id, name="one").start()
    await produce(kafka_settings.bootstrap_servers, kafka_settings.snapshots_topic, scenario.messages[:6_000])
    two = new_worker(kafka_settings, database_url, tmp_path, workers, app_id=app_id, name="two").start()

    async def both_members() -> bool:
        return await stable_group_members(kafka_settings.bootstrap_servers, app_id) == 2

    # The second member joins: a rebalance while the first is busy.
    await wait_until(both_members, within=60, what="both workers in the group", workers=workers)
    await produce(kafka_settings.bootstrap_servers, kafka_settings.snapshots_topic, scenario.messages[6_000:])
    await wait_for_scenario(database_url, scenario, workers, within=90)
    await wait_until(
        lambda: outbox_empty(database_url), within=30, what="the outbox drained", workers=workers
    )
    await check_database(database_url, scenario)
    topic = kafka_settings.snapshots_topic
    scraped = [await scrape(w) for w in (one, two)]
    batches = [metric(text, "processor_batch_size_count", topic=topic) for text in scraped]
    assert all(count > 0 for count in batches), batches
    # Every committed batch reports how old its oldest snapshot was; none of these waited two minutes.
    ages = [metric(text, "processor_snapshot_age_seconds_count", topic=topic) for text in scraped]
    assert ages == batches
    assert sum(metric(text, "processor_snapshot_age_seconds_sum", topic=topic) for text in scraped) > 0
    recent = [
        metric(text, "processor_snapshot_age_seconds_bucket", topic=topic, le="300.0") for text in scraped
    ]
    assert recent == batches
    records = await consume_all(kafka_settings.bootstrap_servers, kafka_settings.orders_topic, 2)
    check_changes(records, scenario, exactly_once=False)
