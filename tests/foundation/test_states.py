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
    (TokenStatus, "user_tokens", "status"),
    (SyncKind, "sync_history", "kind"),
    (SyncStatus, "sync_history", "status"),
]


def _quoted(check: str) -> set[str]:
    return set(re.findall(r"'([^']*)'", check))


def _model_check(table: Table, column: str) -> str:
    for constraint in table.constraints:
        if isinstance(constraint, CheckConstraint) and str(constraint.sqltext).startswith(f"{column} IN"):
            return str(constraint.sqltext)
    raise AssertionError(f"{table.name} has no CHECK on {column}")


@pytest.mark.parametrize(("enum", "table", "column"), CASES)
async def test_the_migrated_check_constraints_hold_the_enums_values(
    session: AsyncSession, enum: type[StrEnum], table: str, column: str
) -> None:
    # By table and column, not by name: 0001 named some of them through the naming convention twice.
    definitions = (
        await session.execute(
            text(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE contype = 'c' AND conrelid = CAST(:table AS regclass)"
            ),
            {"table": table},
        )
    ).scalars()
    (definition,) = [d for d in definitions if d.startswith(f"CHECK ((({column})::text")]
    assert _quoted(definition) == {member.value for member in enum}
    model = {"user_tokens": UserToken, "sync_history": SyncHistory}[table]
    assert _quoted(_model_check(model.__table__, column)) == {member.value for member in enum}  # type: ignore[arg-type]


def test_the_api_documents_the_same_values() -> None:
    schemas = create_app(Settings(environment="development")).openapi()["components"]["schemas"]
    for enum in (TokenStatus, SyncKind, SyncStatus):
        assert set(schemas[enum.__name__]["enum"]) == {member.value for member in enum}
    assert schemas["TokenSummary"]["properties"]["status"]["$ref"].endswith("/TokenStatus")


def test_the_kafka_contract_names_the_same_sync_kinds() -> None:
    assert set(typing.get_args(contract.SyncKind)) == {member.value for member in SyncKind}
