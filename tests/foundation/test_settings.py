"""Settings: nested groups from the environment, conventional names, frozen, all documented."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from core.settings import Settings
from producers.__main__ import parse_args

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


def _variable_names() -> set[str]:
    names = set()
    for group, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= {f"{group.upper()}__{name.upper()}" for name in annotation.model_fields}
        else:
            names.add(group.upper())
    return names


def test_env_example_lists_every_setting() -> None:
    listed = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert listed == _variable_names()


def test_nested_variables_override_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLLER__JOURNAL_INTERVAL_SECONDS", "2.5")
    monkeypatch.setenv("ALLEGRO__CLIENT_SECRET", "s3cret")
    settings = Settings()
    assert settings.poller.journal_interval_seconds == 2.5
    assert isinstance(settings.allegro.client_secret, SecretStr)
    assert "s3cret" not in repr(settings)


def test_conventional_names_are_honoured_unless_the_nested_form_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://a:b@127.0.0.1:1/x")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    assert Settings().database.url.get_secret_value() == "postgresql://a:b@127.0.0.1:1/x"
    assert Settings().kafka.bootstrap_servers == "127.0.0.1:1"
    monkeypatch.setenv("KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:2")
    assert Settings().kafka.bootstrap_servers == "127.0.0.1:2"


def test_settings_are_frozen_and_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.log_level = "DEBUG"  # type: ignore[misc]
    monkeypatch.setenv("POLLER__EVENTS_PAGE_LIMIT", "5000")
    with pytest.raises(ValidationError, match="events_page_limit"):
        Settings()


def test_a_group_passed_in_code_wins_over_conventional_names(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.settings import DatabaseSettings

    monkeypatch.setenv("DATABASE_URL", "postgresql://a:b@127.0.0.1:1/x")
    explicit = DatabaseSettings(url=SecretStr("postgresql://c:d@127.0.0.1:2/y"))
    assert Settings(database=explicit).database.url.get_secret_value() == "postgresql://c:d@127.0.0.1:2/y"


def test_production_refuses_every_development_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    with pytest.raises(ValidationError) as refused:
        Settings()
    message = str(refused.value)
    for variable in ("ALLEGRO__CLIENT_SECRET", "CRYPTO__KEYS", "API__KEYS", "API__CURSOR_SECRET"):
        assert variable in message
    assert "demo-secret" not in message
    assert "dev-api-key" not in message


def test_production_starts_on_real_secrets_and_refuses_a_development_one_in_a_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("ALLEGRO__CLIENT_SECRET", "a-real-secret")
    monkeypatch.setenv("CRYPTO__KEYS", "k2:c2VjcmV0LWtleS1vZi0zMi1ieXRlcy1mb3ItdGVzdHMh")
    monkeypatch.setenv("API__KEYS", "key-one,key-two")
    monkeypatch.setenv("API__CURSOR_SECRET", "a-real-cursor-secret")
    assert Settings().environment == "production"
    monkeypatch.setenv("API__KEYS", "key-one,dev-api-key")
    with pytest.raises(ValidationError, match="API__KEYS"):
        Settings()


def test_development_accepts_the_development_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "development")
    assert Settings().api.keys.get_secret_value() == "dev-api-key"


def test_every_process_names_its_metrics_port_alike_and_the_old_name_still_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert {"POLLER__METRICS_PORT", "PROCESSOR__METRICS_PORT"} <= _variable_names()
    assert not any(name.endswith("WEB_PORT") for name in _variable_names())
    monkeypatch.setenv("PROCESSOR__WEB_PORT", "7001")
    with pytest.warns(FutureWarning, match="PROCESSOR__METRICS_PORT"):
        assert Settings().processor.metrics_port == 7001
    monkeypatch.setenv("PROCESSOR__METRICS_PORT", "7002")
    with pytest.warns(FutureWarning):
        assert Settings().processor.metrics_port == 7002
    monkeypatch.delenv("PROCESSOR__WEB_PORT")
    monkeypatch.setenv("POLLER__METRICS_PORT", "7003")
    settings = Settings()
    assert (settings.processor.metrics_port, settings.poller.metrics_port) == (7002, 7003)


def test_the_pollers_metrics_port_option_overrides_the_setting() -> None:
    assert parse_args(["run"]).metrics_port is None
    assert parse_args(["run", "--metrics-port", "7004"]).metrics_port == 7004
