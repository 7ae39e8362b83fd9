"""GET /model and the bundle's pictures."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse

from service.deps import StoreDep
from service.errors import NotFoundError
from service.schemas import ErrorResponse, ModelInfo, PlotName

router = APIRouter(tags=["model"])

_NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorResponse, "description": "no model loaded yet"}
}


@router.get(
    "/model", response_model=ModelInfo, responses=_NOT_READY, summary="The model being served"
)
async def get_model(store: StoreDep) -> ModelInfo:
    """Labels, feature config, metrics, version and weights of the loaded bundle."""
    return ModelInfo.of(store.current)


@router.get(
    "/model/plots/{name}.png",
    response_class=FileResponse,
    responses={
        200: {"content": {"image/png": {}}},
        404: {"model": ErrorResponse, "description": "no such picture"},
        **_NOT_READY,
    },
    summary="A picture from the bundle",
)
async def get_plot(name: PlotName, store: StoreDep) -> FileResponse:
    path = store.current.path / f"{name}.png"
    if not path.is_file():
        raise NotFoundError(f"the bundle has no {name}.png")
    return FileResponse(path, media_type="image/png")
