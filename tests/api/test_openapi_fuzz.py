"""A bounded property-based run against the app's own OpenAPI document: no 5xx, every response as declared."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance
from sqlalchemy.ext.asyncio import create_async_engine

from api.app import create_app
from simulator.app import create_app as create_simulator
from simulator.config import SimulatorConfig
from tests.api.conftest import API_KEY, api_settings
from tests.api.record_rows import store_fuzz_records
from tests.api.rows import Rows

FUZZ_USER = "fuzz-user"
# 18 operations x (4 valid + 3 invalid) examples stays under 130 calls; derandomized, so every run
# tries the same inputs.
VALID_EXAMPLES, INVALID_EXAMPLES = 4, 3
CHECKS = [not_a_server_error, response_schema_conformance]


async def _seed(database_url: str) -> None:
    """Give the valid cases a user with real rows, so 200s carry orders, revisions and runs."""
    engine = create_async_engine(database_url)
    try:
        rows = Rows(engine, FUZZ_USER)
        token = await rows.token(seller_id="1", login="fuzz", event_cursor="c1")
        form_id = await rows.order(token, minutes=1)
        await rows.order(token, minutes=None, bought_minutes=None)
        await rows.revision(token, form_id, "r1", minutes=1)
        await rows.sync_run(token, kind="journal", minutes=1)
        await store_fuzz_records(database_url, token, FUZZ_USER, form_id)
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def api_schema(database_url: str, kafka_bootstrap: str) -> Any:
    """The schema served by a fresh app (simulator as Allegro); schemathesis runs the app's lifespan."""
    asyncio.run(_seed(database_url))
    simulator = create_simulator(SimulatorConfig(seed=3, device_poll_interval=0))
    app = create_app(
        api_settings(database_url, kafka_bootstrap), allegro_transport=httpx.ASGITransport(app=simulator)
    )
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def _run(strategy: Any, examples: int) -> int:
    """Call the app with up to `examples` generated cases; returns how many were called."""
    called = 0

    @given(case=strategy)
    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def call(case: Any) -> None:
        nonlocal called
        called += 1
        case.call_and_validate(headers={"Authorization": f"Bearer {API_KEY}"}, checks=CHECKS)

    call()
    return called


def test_api_answers_as_its_openapi_document_says(api_schema: Any) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) * (VALID_EXAMPLES + INVALID_EXAMPLES) <= 130
    calls = 0
    for operation in operations:
        user = {"user_id": FUZZ_USER} if "{user_id}" in operation.path else None
        calls += _run(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=user), VALID_EXAMPLES)
        declared = operation.definition.raw
        if declared.get("parameters") or declared.get("requestBody"):
            calls += _run(operation.as_strategy(GenerationMode.NEGATIVE), INVALID_EXAMPLES)
    # Every operation was really exercised (a run that generates nothing must not pass).
    assert calls >= 2 * len(operations), calls
