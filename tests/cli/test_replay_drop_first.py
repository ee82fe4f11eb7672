"""`allegro-backup replay --token ID --drop-first`: one seller's rows are deleted before the rebuild,
nobody else's; without --token it refuses."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from cli.main import app
from core.settings import KafkaSettings, get_settings
from db.models import Order, OrderRevision
from tests.environments import kafka_env

runner = CliRunner()


@pytest.fixture
def settings_cache() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def _store(database_url: str, token_id: uuid.UUID) -> None:
    engine = create_async_engine(database_url)
    order = {"token_id": token_id, "user_id": "u-drop", "checkout_form_id": "f-1", "revision": "r1"}
    try:
        async with engine.begin() as connection:
            await connection.execute(insert(Order).values(**order, order_data={}, source="journal"))
            await connection.execute(
                insert(OrderRevision).values(
                    token_id=token_id,
                    checkout_form_id="f-1",
                    revision="r1",
                    order_data={},
                    captured_at=text("now()"),
                    source="journal",
                )
            )
    finally:
        await engine.dispose()


async def _count(database_url: str, token_id: uuid.UUID) -> tuple[int, int]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            orders = await connection.scalar(
                text("SELECT count(*) FROM orders WHERE token_id = :t"), {"t": token_id}
            )
            revisions = await connection.scalar(
                text("SELECT count(*) FROM order_revisions WHERE token_id = :t"), {"t": token_id}
            )
    finally:
        await engine.dispose()
    return int(orders or 0), int(revisions or 0)


def test_drop_first_deletes_only_that_tokens_rows_before_replaying(
    kafka_settings: KafkaSettings, database_url: str, monkeypatch: pytest.MonkeyPatch, settings_cache: None
) -> None:
    dropped, kept = uuid.uuid4(), uuid.uuid4()
    for token_id in (dropped, kept):
        asyncio.run(_store(database_url, token_id))
    for name, value in {**kafka_env(kafka_settings), "DATABASE__URL": database_url}.items():
        monkeypatch.setenv(name, value)
    # This test's topics are empty: the rebuild restores nothing, so what is left is what was not dropped.
    result = runner.invoke(app, ["replay", "--token", str(dropped), "--drop-first", "--no-verify"])
    assert result.exit_code == 0, result.output
    assert "deleted 1 orders and 1 revisions" in result.output
    assert asyncio.run(_count(database_url, dropped)) == (0, 0)
    assert asyncio.run(_count(database_url, kept)) == (1, 1)


def test_drop_first_without_a_token_is_refused(settings_cache: None) -> None:
    result = runner.invoke(app, ["replay", "--drop-first"])
    assert result.exit_code == 2
