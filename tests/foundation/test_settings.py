"""Settings: nested groups from the environment, conventional names, frozen, all documented."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from core.settings import Settings

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
