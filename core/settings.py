"""Service settings: one frozen pydantic-settings class with nested groups, read once per process."""

from __future__ import annotations

import os
import warnings
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.version import VERSION


class _Group(BaseModel):
    model_config = ConfigDict(frozen=True)


class KafkaSettings(_Group):
    """Broker address, topic names and their layout."""

    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "allegro-orders-backup"
    snapshots_topic: str = "allegro.order-snapshots"
    sync_runs_topic: str = "allegro.sync-runs"
    orders_topic: str = "allegro.orders"
    revisions_topic: str = "allegro.order-revisions"
    dlq_topic: str = "allegro.order-snapshots.dlq"
    tokens_topic: str = "allegro.poller-tokens"
    records_topic: str = "allegro.order-records"
    partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    snapshots_retention_days: int = Field(default=30, ge=30)
    dlq_retention_days: int = Field(default=365, ge=1)
    max_message_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)

    def prefixed(self, prefix: str, **changes: object) -> KafkaSettings:
        """The same layout with every topic named `<prefix>.<name>` (tests and benchmarks use their own)."""
        topics = ("snapshots", "sync_runs", "orders", "revisions", "dlq", "tokens", "records")
        names = {
            f"{t}_topic": f"{prefix}.{getattr(self, f'{t}_topic').removeprefix('allegro.')}" for t in topics
        }
        return self.model_copy(update={**names, **changes})


class DatabaseSettings(_Group):
    """PostgreSQL connection and pool."""

    url: SecretStr = SecretStr("postgresql+asyncpg://backup:backup@127.0.0.1:5432/backup")
    pool_size: int = Field(default=10, ge=1)
    pool_pre_ping: bool = Field(default=True, description="Check a pooled connection before use.")
    echo: bool = False


class AllegroSettings(_Group):
    """Where Allegro (or the simulator) is and how this app introduces itself."""

    auth_url: str = "https://allegro.pl"
    api_url: str = "https://api.allegro.pl"
    client_id: str = "demo-client"
    client_secret: SecretStr = SecretStr("demo-secret")
    scope: str = "allegro:api:orders:read allegro:api:profile:read"
    user_agent: str = f"AllegroOrdersBackup/{VERSION} (+https://example.invalid/allegro-orders-backup)"
    requests_per_minute: int = Field(default=8000, ge=1, description="Our budget, below Allegro's 9,000/min.")
    timeout_seconds: float = Field(default=20.0, gt=0)
    max_retries: int = Field(default=4, ge=0)


class CryptoSettings(_Group):
    """Encryption keys for tokens at rest: `kid:base64key` pairs, comma separated; the first one encrypts."""

    keys: SecretStr = SecretStr("dev1:ZGV2LW9ubHkta2V5LWRvLW5vdC11c2UtaW4tcHJvZCE=")


class PollerSettings(_Group):
    """Sync cadence and sizes."""

    # The journal schedule. `adaptive`: a seller is read every `journal_interval_seconds` while it sells;
    # each quiet read multiplies its interval by `journal_interval_growth`, up to
    # `journal_interval_recent_max_seconds` while its last event is younger than
    # `journal_recent_activity_seconds`, else up to `journal_interval_max_seconds` (the longest any seller
    # waits for its next read). `fixed`: every seller every `journal_interval_seconds`. A bound below
    # the one before it counts as that one.
    journal_schedule: Literal["adaptive", "fixed"] = "adaptive"
    journal_interval_seconds: float = Field(default=5.0, gt=0)
    journal_interval_growth: float = Field(default=2.0, ge=1.0)
    journal_interval_recent_max_seconds: float = Field(default=15.0, gt=0)
    journal_recent_activity_seconds: float = Field(default=3_600.0, ge=0)
    journal_interval_max_seconds: float = Field(default=240.0, gt=0)
    # When more reads are due than the budget serves, a seller active within the recent window goes
    # before quiet ones that became due up to this much earlier (quiet ones still age ahead of it).
    journal_activity_priority_seconds: float = Field(default=30.0, ge=0)
    # Quiet reads write nothing each: their times are written for many tokens at once this often.
    poll_flush_seconds: float = Field(default=10.0, gt=0)
    # The scan re-reads every scheduled row this often (between, only rows changed since the last scan).
    full_scan_seconds: float = Field(default=60.0, gt=0)
    reconcile_interval_seconds: float = Field(default=86_400.0, gt=0)
    reconcile_overlap_seconds: float = Field(default=3_600.0, ge=0)
    backfill_days: int = Field(default=365, ge=1, le=366)
    events_page_limit: int = Field(default=1000, ge=1, le=1000)
    link_poll_seconds: float = Field(default=1.0, gt=0)
    # Journal reads in flight at once, and, apart from them, walks (backfill, resync, reconcile) in flight.
    max_concurrent_tokens: int = Field(default=16, ge=1)
    max_concurrent_walks: int = Field(default=4, ge=1)
    # An account Allegro refuses (403) is tried again after this, doubling per refusal up to the cap.
    access_denied_backoff_seconds: float = Field(default=60.0, gt=0)
    access_denied_backoff_max_seconds: float = Field(default=3_600.0, gt=0)
    # A `running` sync run with no record for this long is closed as `abandoned` (its poller died). Runs
    # report progress at least every 10 s while they make any; 0 turns the sweep off.
    run_lease_seconds: float = Field(default=900.0, ge=0)
    # A form that answers 404 is GET again after this long, each wait twice the last, up to the cap; it is
    # decided merged or missing upstream only after the confirmation window and at least that many 404s.
    missing_retry_first_seconds: float = Field(default=30.0, gt=0)
    missing_retry_max_seconds: float = Field(default=600.0, gt=0)
    missing_confirm_seconds: float = Field(default=1_800.0, ge=0)
    missing_confirm_attempts: int = Field(default=4, ge=1)
    # Order records (shipments, invoices, tracking; producers.records). Off: forms only.
    records_enabled: bool = True
    # A waybill's tracking is read again this long after the last read, until a final status.
    tracking_interval_seconds: float = Field(default=3_600.0, gt=0)
    # An order shipped without shipments, or asking for an invoice it does not have yet, is checked
    # again this long after the last check, for `records_follow_days` after it was first noted; a
    # waybill with no final status is given up that long after it was first seen.
    records_recheck_seconds: float = Field(default=21_600.0, gt=0)
    records_follow_days: float = Field(default=30.0, gt=0)
    # Prometheus metrics on 127.0.0.1:PORT (0: none); `python -m producers run --metrics-port` overrides it.
    metrics_port: int = Field(default=0, ge=0, le=65535)

    def longest_journal_interval(self) -> float:
        """The longest a syncing seller waits between journal reads in this schedule (seconds)."""
        if self.journal_schedule == "fixed":
            return self.journal_interval_seconds
        return max(self.journal_interval_seconds, self.journal_interval_max_seconds)


class ProcessorSettings(_Group):
    """Faust worker batching."""

    app_id: str = "allegro-orders-backup"
    # Larger batches amortise each transaction's round trips (docs/PERFORMANCE.md, "Tuning decisions").
    batch_size: int = Field(default=4000, ge=1)
    # A batch is handed over every `within` seconds, or sooner when full. Under load the buffer fills
    # while the previous batch is stored, so batches grow by themselves; a short wait only bounds latency,
    # at some CPU per order (smaller batches, more transactions; docs/PERFORMANCE.md).
    batch_within_seconds: float = Field(default=0.02, gt=0)
    # Transactions a batch is split into (by order key), run at once: one keeps PostgreSQL busy while
    # this process prepares the other; a third lane adds nothing measurable (docs/PERFORMANCE.md).
    store_lanes: int = Field(default=2, ge=1, le=8)
    # Lanes only for batches of at least this many snapshots per lane; smaller ones (a steady trickle)
    # are one transaction: each lane costs its own lookups, outbox row and round trips.
    store_lane_min_messages: int = Field(default=500, ge=1)
    # Prometheus metrics on 127.0.0.1:PORT (0: none). Formerly PROCESSOR__WEB_PORT, still read (with a
    # deprecation warning) when the new name is not set.
    metrics_port: int = Field(default=6066, ge=0, le=65535)
    data_dir: str = ".stack/faust"
    # How long the group waits for a silent worker before handing its partitions to the others (Faust's
    # default is 60 s). The broker accepts 6 s or more (group.min.session.timeout.ms); heartbeats go
    # every third of it, so one lost heartbeat is not yet a failover.
    session_timeout_seconds: float = Field(default=10.0, ge=6.0, le=300.0)

    @model_validator(mode="before")
    @classmethod
    def _accept_old_port_name(cls, data: Any) -> Any:
        """Read PROCESSOR__WEB_PORT as the metrics port (one FutureWarning line on stderr)."""
        if not isinstance(data, dict) or "web_port" not in data:
            return data
        data = dict(data)
        old = data.pop("web_port")
        warnings.warn(
            "PROCESSOR__WEB_PORT is deprecated and will be removed: set PROCESSOR__METRICS_PORT instead",
            FutureWarning,
            stacklevel=2,
        )
        data.setdefault("metrics_port", old)
        return data


class ApiSettings(_Group):
    """REST API keys and limits."""

    keys: SecretStr = SecretStr("dev-api-key")
    cursor_secret: SecretStr = SecretStr("dev-cursor-secret")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Fewer connections than concurrent clients queue the lookups and stretch the tail
    # (docs/PERFORMANCE.md). Connections are opened on demand.
    read_pool_size: int = Field(default=32, ge=1, description="asyncpg connections for order reads.")


class Settings(BaseSettings):
    """Every setting of the service; nested groups are read from `GROUP__FIELD` variables."""

    model_config = SettingsConfigDict(
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    kafka: KafkaSettings = KafkaSettings()
    database: DatabaseSettings = DatabaseSettings()
    allegro: AllegroSettings = AllegroSettings()
    crypto: CryptoSettings = CryptoSettings()
    poller: PollerSettings = PollerSettings()
    processor: ProcessorSettings = ProcessorSettings()
    api: ApiSettings = ApiSettings()
    # Development defaults of the secrets below are refused unless this says "development" (.env.example
    # and the local stack's `scripts/stack env` do); a production start on them fails at once.
    environment: Literal["development", "production"] = "production"
    log_level: str = "INFO"
    log_json: bool = True

    @model_validator(mode="before")
    @classmethod
    def _accept_conventional_names(cls, data: Any) -> Any:
        """Honour the conventional DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS unless the nested form is set."""
        if not isinstance(data, dict):
            return data
        fallbacks = {
            "database": ("url", "DATABASE_URL"),
            "kafka": ("bootstrap_servers", "KAFKA_BOOTSTRAP_SERVERS"),
        }
        for group, (field, variable) in fallbacks.items():
            value = os.environ.get(variable)
            section = data.get(group)
            if (
                not value
                or isinstance(section, BaseModel)
                or (isinstance(section, dict) and field in section)
            ):
                continue
            data[group] = {**(section if isinstance(section, dict) else {}), field: value}
        return data

    @model_validator(mode="after")
    def _refuse_development_secrets(self) -> Settings:
        """Outside development, fail when a secret still holds its development default.

        Raises:
            ValueError: naming every variable that must be set (never its value).
        """
        if self.environment == "development":
            return self
        secrets = {
            "ALLEGRO__CLIENT_SECRET": self.allegro.client_secret,
            "CRYPTO__KEYS": self.crypto.keys,
            "API__KEYS": self.api.keys,
            "API__CURSOR_SECRET": self.api.cursor_secret,
        }
        found = [
            variable
            for variable, secret in secrets.items()
            if any(
                entry.strip() in DEVELOPMENT_SECRETS[variable]
                for entry in secret.get_secret_value().split(",")
            )
        ]
        if found:
            raise ValueError(
                f"development secrets in a {self.environment} environment: set {', '.join(found)} "
                "(or ENVIRONMENT=development for a local run)"
            )
        return self


# The working defaults that ship with the code and .env.example: fine on a laptop, never in production.
DEVELOPMENT_SECRETS: dict[str, tuple[str, ...]] = {
    "ALLEGRO__CLIENT_SECRET": (AllegroSettings().client_secret.get_secret_value(),),
    "CRYPTO__KEYS": tuple(CryptoSettings().keys.get_secret_value().split(",")),
    "API__KEYS": tuple(ApiSettings().keys.get_secret_value().split(",")),
    "API__CURSOR_SECRET": (ApiSettings().cursor_secret.get_secret_value(),),
}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once.

    Raises:
        SystemExit: with pydantic's account of every invalid setting (a process cannot start without them).
    """
    try:
        return Settings()
    except ValidationError as invalid:
        raise SystemExit(f"invalid settings: {invalid}") from None
