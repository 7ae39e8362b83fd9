"""GET /model and the bundle's pictures."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import FileResponse

from pipeline.bundle import Bundle
from pipeline.features import band_centres
from service.deps import StoreDep
from service.errors import NotFoundError
from service.schemas import ErrorResponse, ModelInfo

router = APIRouter(tags=["model"])

PLOTS = ("training_curves", "confusion_matrix")
_NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorResponse, "description": "no model loaded yet"}
}


def model_info(bundle: Bundle) -> ModelInfo:
    net, meta = bundle.network, bundle.metadata
    return ModelInfo(
        name=bundle.name,
        version=bundle.version,
        path=str(bundle.path),
        labels=list(bundle.labels),
        threshold=bundle.threshold,
        architecture=list(net.sizes),
        output_activation=net.output_activation,
        feature_config=bundle.feature_config.to_dict(),
        band_centres_hz=band_centres(bundle.feature_config).tolist(),
        metrics=meta.get("metrics", {}),
        training=meta.get("training", {}),
        created=meta.get("created"),
        weights={
            "hidden_kernel": net.hidden_kernel.tolist(),
            "hidden_bias": net.hidden_bias.tolist(),
            "output_kernel": net.output_kernel.tolist(),
            "output_bias": net.output_bias.tolist(),
        },
        plots={name: f"/model/plots/{name}.png" for name in PLOTS},
    )


@router.get(
    "/model", response_model=ModelInfo, responses=_NOT_READY, summary="The model being served"
)
async def get_model(store: StoreDep) -> ModelInfo:
    """Labels, feature config, metrics, version and weights of the loaded bundle."""
    return model_info(store.current)


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
async def get_plot(
    name: Literal["training_curves", "confusion_matrix"], store: StoreDep
) -> FileResponse:
    path = store.current.path / f"{name}.png"
    if not path.is_file():
        raise NotFoundError(f"the bundle has no {name}.png")
    return FileResponse(path, media_type="image/png")
