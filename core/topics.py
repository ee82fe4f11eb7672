"""Topic layout and the idempotent bootstrap that creates it (`python -m core.topics`)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, for_code
from tenacity import AsyncRetrying, retry_if_result, stop_after_delay, wait_fixed

from core.settings import KafkaSettings

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
POLLER_TOKEN_PARTITIONS = 12


@dataclass(frozen=True)
class TopicSpec:
    """A topic as the contract wants it."""

    name: str
    partitions: int
    configs: dict[str, str]


@dataclass
class BootstrapReport:
    """What a bootstrap run did: created topics, and existing ones that differ from the contract."""

    created: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    differing: dict[str, list[str]] = field(default_factory=dict)


def topic_specs(settings: KafkaSettings) -> list[TopicSpec]:
    """The topics of the Kafka contract with their partitions and configs."""
    max_bytes = str(settings.max_message_bytes)
    return [
        TopicSpec(
            settings.snapshots_topic,
            settings.partitions,
            {
                "cleanup.policy": "delete",
                "retention.ms": str(settings.snapshots_retention_days * DAY_MS),
                "max.message.bytes": max_bytes,
            },
        ),
        TopicSpec(
            settings.sync_runs_topic,
            settings.partitions,
            {"cleanup.policy": "delete", "retention.ms": str(90 * DAY_MS)},
        ),
        # The latest state of every order, forever: the replay source and the downstream contract.
        TopicSpec(
            settings.orders_topic,
            settings.partitions,
            {
                "cleanup.policy": "compact",
                "retention.ms": "-1",
                "min.compaction.lag.ms": str(DAY_MS),
                "max.message.bytes": max_bytes,
            },
        ),
        # Every revision of every order, forever: keyed per revision, so compaction only drops re-publishes.
        TopicSpec(
            settings.revisions_topic,
            settings.partitions,
            {
                "cleanup.policy": "compact",
                "retention.ms": "-1",
                "max.message.bytes": max_bytes,
            },
        ),
        # Every version of every order record (shipments, tracking, invoices), forever: keyed per content
        # (core.order_records), so compaction only drops re-publishes of a content already there.
        TopicSpec(
            settings.records_topic,
            settings.partitions,
            {
                "cleanup.policy": "compact",
                "retention.ms": "-1",
                "max.message.bytes": max_bytes,
            },
        ),
        TopicSpec(
            settings.dlq_topic,
            settings.partitions,
            {
                "cleanup.policy": "delete",
                "retention.ms": str(settings.dlq_retention_days * DAY_MS),
                "max.message.bytes": max_bytes,
            },
        ),
        # Pollers split the tokens by the partitions of this topic that the group assigns them; it carries
        # no data that matters, so it keeps almost nothing.
        TopicSpec(
            settings.tokens_topic,
            POLLER_TOKEN_PARTITIONS,
            {"cleanup.policy": "delete", "retention.ms": str(DAY_MS)},
        ),
    ]


async def ensure_topics(
    admin: AIOKafkaAdminClient, specs: list[TopicSpec], replication: int
) -> BootstrapReport:
    """Create missing topics; report (never silently change) existing ones whose config differs."""
    report = BootstrapReport()
    # Ask the controller to create every topic and read its verdict per topic: a metadata listing may lag
    # behind a topic created a moment ago, the controller's answer does not.
    response = await admin.create_topics(
        [NewTopic(s.name, s.partitions, replication, topic_configs=s.configs) for s in specs]
    )
    for topic, code, *message in response.topic_errors:
        if code == 0:
            report.created.append(topic)
        elif code != TopicAlreadyExistsError.errno:
            raise for_code(code)(f"creating topic {topic}: {message[0] if message else ''}")
    for spec in specs:
        if spec.name in report.created:
            continue
        differences = await _differences(admin, spec)
        if differences:
            report.differing[spec.name] = differences
        else:
            report.unchanged.append(spec.name)
    return report


async def _differences(admin: AIOKafkaAdminClient, spec: TopicSpec) -> list[str]:
    described = await admin.describe_topics([spec.name])
    partitions = len(described[0]["partitions"]) if described else 0
    differences = []
    if partitions < spec.partitions:
        differences.append(f"partitions: {partitions} < {spec.partitions}")
    actual = await read_topic_configs(admin, spec.name)
    for key, wanted in spec.configs.items():
        if actual.get(key) != wanted:
            differences.append(f"{key}: {actual.get(key)!r} != {wanted!r}")
    return differences


async def read_topic_configs(
    admin: AIOKafkaAdminClient, topic: str, wait_seconds: float = 10.0
) -> dict[str, str]:
    """A topic's effective configs, read back through the admin API.

    A topic created a moment ago may not be known to the broker that answers yet, so an empty or
    failed answer is retried for up to `wait_seconds`.
    """

    async def read() -> tuple[dict[str, str], bool]:
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        configs: dict[str, str] = {}
        failed = False
        for response in responses:
            # resource = (error_code, error_message, type, name, [(key, value, read_only, ...), ...])
            for resource in response.resources:
                failed = failed or resource[0] != 0
                for entry in resource[4]:
                    configs[entry[0]] = entry[1]
        return configs, failed

    retrying = AsyncRetrying(
        retry=retry_if_result(lambda answer: not answer[0] or answer[1]),
        stop=stop_after_delay(wait_seconds),
        wait=wait_fixed(0.1),
        # Out of time: what the last answer held (possibly nothing).
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else ({}, True),
    )
    answer: tuple[dict[str, str], bool] = await retrying(read)
    return answer[0]


async def partition_ids(bootstrap_servers: str, topic: str, wait_seconds: float = 10.0) -> list[int]:
    """A topic's partition numbers, from the admin API (a fresh consumer knows no metadata yet).

    A topic created a moment ago may not be described by the broker that answers yet (no leader): an
    empty answer is asked again for up to `wait_seconds`; [] when the topic still has no partitions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()

    async def read() -> list[int]:
        described = await admin.describe_topics([topic])
        return sorted(p["partition"] for t in described if t["error_code"] == 0 for p in t["partitions"])

    retrying = AsyncRetrying(
        retry=retry_if_result(lambda found: not found),
        stop=stop_after_delay(wait_seconds),
        wait=wait_fixed(0.1),
        retry_error_callback=lambda state: [],
    )
    try:
        found: list[int] = await retrying(read)
    finally:
        await admin.close()
    return found


async def bootstrap(settings: KafkaSettings) -> BootstrapReport:
    """Connect, ensure every topic of the contract, close."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, client_id=settings.client_id)
    try:
        # Inside the try: a start that finds no broker must not leave the client's connections behind
        # for a caller that retries.
        await admin.start()
        return await ensure_topics(admin, topic_specs(settings), settings.replication_factor)
    finally:
        await admin.close()


def main() -> None:
    """Create the topics and print what was done; exit 1 when an existing topic differs."""
    from core.logging import configure_logging
    from core.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_level, json_logs=False)
    report = asyncio.run(bootstrap(settings.kafka))
    for name in report.created:
        log.info("created topic %s", name)
    for name in report.unchanged:
        log.info("topic %s exists with the expected config", name)
    for name, differences in report.differing.items():
        log.warning("topic %s differs from the contract: %s", name, "; ".join(differences))
    raise SystemExit(1 if report.differing else 0)


if __name__ == "__main__":
    main()
