"""Environments for the service processes that tests (and benchmarks) start: their own topics, database,
Faust app id, data dir and ports, so runs never share state with each other or with a developer's stack."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

from core.settings import KafkaSettings


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kafka_env(kafka: KafkaSettings) -> dict[str, str]:
    """The environment that gives a service process these Kafka settings (topics included)."""
    return {
        f"KAFKA__{name.upper()}": str(value)
        for name, value in kafka.model_dump().items()
        if name in ("bootstrap_servers", "partitions") or name.endswith("_topic")
    }


def worker_env(kafka: KafkaSettings, database_url: str, data_dir: Path) -> dict[str, str]:
    """A processor worker on these topics and this database, with a Faust app id and data dir of its own."""
    return {
        **kafka_env(kafka),
        "DATABASE__URL": database_url,
        "PROCESSOR__APP_ID": f"w{uuid.uuid4().hex[:8]}",
        "PROCESSOR__DATA_DIR": str(data_dir),
        "PROCESSOR__METRICS_PORT": str(free_port()),
    }


def service_env(
    kafka: KafkaSettings, database_url: str, sim_url: str, api_port: int, data_dir: Path
) -> dict[str, str]:
    """Environment that points every service process at these topics, this database and this simulator,
    with short poll intervals and a consumer group and Faust app id of their own."""
    return {
        **worker_env(kafka, database_url, data_dir / "faust"),
        "KAFKA__CLIENT_ID": f"e2e-{uuid.uuid4().hex[:8]}",
        "ALLEGRO__AUTH_URL": sim_url,
        "ALLEGRO__API_URL": sim_url,
        "API__PORT": str(api_port),
        "POLLER__JOURNAL_INTERVAL_SECONDS": "0.5",
        "POLLER__JOURNAL_INTERVAL_RECENT_MAX_SECONDS": "1",
        "POLLER__JOURNAL_INTERVAL_MAX_SECONDS": "2",
        "POLLER__POLL_FLUSH_SECONDS": "1",
        "POLLER__LINK_POLL_SECONDS": "0.2",
        "POLLER__RECONCILE_INTERVAL_SECONDS": "5",
        "POLLER__RECONCILE_OVERLAP_SECONDS": "600",
        "LOG_LEVEL": "INFO",
    }
