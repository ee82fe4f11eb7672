"""Token statuses and sync kinds are named once (`core.states`): the migrated database's CHECK
constraints, the models, the API's OpenAPI document and the Kafka contract all hold the same values."""

from __future__ import annotations

import re
import typing
from enum import StrEnum

import pytest
from sqlalchemy import CheckConstraint, Table, text
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from core import contract
from core.settings import Settings
from core.states import SyncKind, SyncStatus, TokenStatus
from db.models import SyncHistory, UserToken

CASES = [
    (TokenStatus, "user_tokens", "ck_user_tokens_status"),
    (SyncKind, "sync_history", "ck_sync_history_kind"),
    (SyncStatus, "sync_history", "ck_sync_history_status"),
]


def _quoted(check: str) -> set[str]:
    return set(re.findall(r"'([^']*)'", check))


def _model_check(table: Table, name: str) -> str:
    for constraint in table.constraints:
        if isinstance(constraint, CheckConstraint) and constraint.name in (name, name.split("_")[-1]):
            return str(constraint.sqltext)
    raise AssertionError(f"{table.name} has no CHECK {name}")


@pytest.mark.parametrize(("enum", "table", "constraint"), CASES)
async def test_the_migrated_check_constraints_hold_the_enums_values(
    session: AsyncSession, enum: type[StrEnum], table: str, constraint: str
) -> None:
    definition = (
        await session.execute(
            text("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = :name"),
            {"name": constraint},
        )
    ).scalar_one()
    assert _quoted(definition) == {member.value for member in enum}
    model = {"user_tokens": UserToken, "sync_history": SyncHistory}[table]
    assert _quoted(_model_check(model.__table__, constraint)) == {member.value for member in enum}  # type: ignore[arg-type]


def test_the_api_documents_the_same_values() -> None:
    schemas = create_app(Settings(environment="development")).openapi()["components"]["schemas"]
    for enum in (TokenStatus, SyncKind, SyncStatus):
        assert set(schemas[enum.__name__]["enum"]) == {member.value for member in enum}
    assert schemas["TokenSummary"]["properties"]["status"]["$ref"].endswith("/TokenStatus")


def test_the_kafka_contract_names_the_same_sync_kinds() -> None:
    assert set(typing.get_args(contract.SyncKind)) == {member.value for member in SyncKind}
