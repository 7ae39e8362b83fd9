"""GET /health, /ready (HEAD too) and /metrics: for orchestrators and monitoring."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.deps import MetricsDep, StoreDep
from service.errors import NotReadyError
from service.schemas import ErrorResponse, ModelRef, Status

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=Status, summary="The process is alive")
async def health(store: StoreDep) -> Status:
    return Status(status="ok", model=ModelRef.of(store.current) if store.ready else None)


@router.get(
    "/ready",
    response_model=Status,
    responses={503: {"model": ErrorResponse, "description": "no model loaded yet"}},
    summary="A model is loaded and requests can be served",
)
async def ready(store: StoreDep) -> Status:
    if not store.ready:
        raise NotReadyError(store.not_ready_reason())
    return Status(status="ready", model=ModelRef.of(store.current))


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
    summary="Prometheus metrics",
)
async def metrics(m: MetricsDep) -> Response:
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)


# Uptime checkers probe with HEAD; the GET routes answer it, with the same status and no body.
for path, endpoint in (("/health", health), ("/ready", ready)):
    router.add_api_route(path, endpoint, methods=["HEAD"], include_in_schema=False)
