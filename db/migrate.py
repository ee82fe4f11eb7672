"""Schema migrations, run programmatically (alembic's command API) by the CLI, the launcher and tests."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"


def alembic_config(url: str) -> Config:
    """An alembic config pointing at this project's migrations and the given database."""
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(Path(__file__).resolve().parent / "migrations"))
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database up to `revision`. Blocking: call it outside the event loop."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    """Migrate the database down to `revision`. Blocking: call it outside the event loop."""
    command.downgrade(alembic_config(url), revision)
