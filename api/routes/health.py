"""Health without authentication: `/healthz` (alive), `/readyz` (dependencies), `/metrics`."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import ConfigDep, ResourcesDep
from api.readiness import check_database
from api.resources import READINESS_TIMEOUT_SECONDS
from api.schemas.orders import Alive, Check, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Alive")
async def healthz() -> Alive:
    """The process answers."""
    return Alive()


@router.get(
    "/readyz",
    summary="Ready (PostgreSQL and Kafka answer)",
    responses={503: {"model": Readiness, "description": "A dependency did not answer; `checks` says which."}},
)
async def readyz(resources: ResourcesDep, response: Response) -> Readiness:
    """Ask PostgreSQL for `SELECT 1` and Kafka for cluster metadata, concurrently."""
    database_error, kafka_error = await asyncio.gather(
        check_database(resources.engine, timeout_seconds=READINESS_TIMEOUT_SECONDS),
        resources.kafka.check(),
    )
    checks = {
        "postgresql": Check(ok=database_error is None, error=database_error),
        "kafka": Check(ok=kafka_error is None, error=kafka_error),
    }
    ready = all(check.ok for check in checks.values())
    if not ready:
        response.status_code = 503
    return Readiness(status="ready" if ready else "not_ready", checks=checks)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}},
)
async def metrics(config: ConfigDep) -> Response:
    """Request counts and latency by route template and status, in the text exposition format."""
    return Response(generate_latest(config.metrics.registry), media_type=CONTENT_TYPE_LATEST)
