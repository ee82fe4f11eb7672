"""Start-up options of the simulator (immutable; runtime faults live in `faults.FaultSettings`)."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Everything fixed when the simulator starts."""

    seed: int = 0
    client_id: str = "demo-client"
    client_secret: str = "demo-secret"  # noqa: S105 - the documented demo default of .env.example
    public_url: str = "http://127.0.0.1:8090"
    rate_limit_per_min: int = 9000
    block_seconds: float = 60.0
    strict_user_agent: bool = False
    device_code_expires_in: int = 3600
    device_poll_interval: int = 5
    access_token_expires_in: int = 43199
    refresh_token_expires_in: int = 90 * 24 * 3600
    refresh_grace_seconds: float = 60.0
    event_retention_days: int = 60
    form_visibility_days: int = 365
    # Allegro's stated limit of the shipments and carriers resources (0 turns it off).
    records_requests_per_second: int = 50
