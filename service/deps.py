"""FastAPI dependencies as ``Annotated`` aliases, so route signatures read like data."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request

from service.compute import ComputeQueue
from service.errors import UnauthorizedError
from service.metrics import Metrics
from service.model_store import ModelStore
from service.settings import Settings

__all__ = ["ApiKey", "ComputeDep", "MetricsDep", "SettingsDep", "StoreDep"]


def _app_state(name: str) -> Callable[[Request], Awaitable[Any]]:
    """A dependency that returns ``app.state.<name>``, set once by ``create_app``."""

    async def get(request: Request) -> Any:
        return getattr(request.app.state, name)

    return get


SettingsDep = Annotated[Settings, Depends(_app_state("settings"))]
ComputeDep = Annotated[ComputeQueue, Depends(_app_state("compute"))]
StoreDep = Annotated[ModelStore, Depends(_app_state("store"))]
MetricsDep = Annotated[Metrics, Depends(_app_state("metrics"))]


def _presented_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key is None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else None
    return key


async def require_api_key(request: Request, settings: SettingsDep) -> None:
    """Refuse the request with 401 unless it carries the configured key (when one is set)."""
    if settings.api_key is None:
        return
    key = _presented_key(request)
    if not key:
        raise UnauthorizedError("missing API key: send it in the X-API-Key header")
    if not secrets.compare_digest(key.encode(), settings.api_key.get_secret_value().encode()):
        raise UnauthorizedError("wrong API key")


ApiKey = Depends(require_api_key)
