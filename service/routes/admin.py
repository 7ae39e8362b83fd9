"""POST /admin/reload: swap in a bundle from disk without a restart."""

from __future__ import annotations

from fastapi import APIRouter, Body

from service.deps import SettingsDep, StoreDep
from service.model_store import inside_root
from service.schemas import ErrorResponse, ModelInfo, ReloadRequest

router = APIRouter(prefix="/admin", tags=["admin"])  # the key: service.auth


@router.post(
    "/reload",
    response_model=ModelInfo,
    responses={
        400: {"model": ErrorResponse, "description": "the body cannot be parsed"},
        401: {
            "model": ErrorResponse,
            "description": "API key missing or wrong (only when one is set)",
        },
        403: {"model": ErrorResponse, "description": "model_dir is outside the models root"},
        409: {
            "model": ErrorResponse,
            "description": "the bundle does not load; the old model keeps serving",
        },
        503: {
            "model": ErrorResponse,
            "description": "the workers cannot share the switch; the old model keeps serving",
        },
    },
    summary="Load a bundle from disk and serve it",
)
async def reload(
    store: StoreDep,
    settings: SettingsDep,
    body: ReloadRequest | None = Body(None),  # noqa: B008
) -> ModelInfo:
    """Loads `model_dir` (default: the bundle being served, or the configured one) and swaps it
    in atomically: requests in flight finish on the old model; a broken bundle changes nothing."""
    current = store.current.path if store.ready else settings.model_dir
    root = settings.models_root or settings.model_dir.parent
    path = inside_root(body.model_dir, root) if body and body.model_dir else current
    return ModelInfo.of(await store.load(path))
