"""POST /train, GET /train/{id}, GET /models and POST /models/{version}/activate."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from pipeline.errors import BundleError
from service.deps import StoreDep, TrainerDep
from service.model_store import without_paths
from service.schemas import ErrorResponse, JobStarted, JobStatus, ModelVersion, ModelVersions

router = APIRouter(tags=["training"])  # the key and who may write: service.auth

_AUTH: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "API key missing or wrong (only when one is set)"},
    503: {"model": ErrorResponse, "description": "the speaker store's folder is gone"},
}
_CANNOT_TRAIN = (
    "no model loaded, this server cannot train (the train extra is missing), or the speaker "
    "store's folder is gone"
)
_WRITE: dict[int | str, dict[str, Any]] = _AUTH | {
    403: {"model": ErrorResponse, "description": "no API key, and off loopback or another site's"},
}


@router.post(
    "/train",
    status_code=202,
    response_model=JobStarted,
    responses=_WRITE
    | {
        409: {"model": ErrorResponse, "description": "a training job is running"},
        422: {"model": ErrorResponse, "description": "a store speaker has too few clips"},
        503: {"model": ErrorResponse, "description": _CANNOT_TRAIN},
    },
    summary="Train a new version that knows the store's voices",
)
async def start_training(response: Response, trainer: TrainerDep) -> JobStarted:
    """Trains, in a separate process, a successor of the model being served from its kept
    training rows plus the speaker store's clips (only these are decoded), and serves it on
    every worker when done. Follow the job at `GET /train/{job}`."""
    job = await trainer.start()
    response.headers["Location"] = f"/train/{job}"
    return JobStarted(job=job)


@router.get(
    "/train/{job}",
    response_model=JobStatus,
    responses=_AUTH | {404: {"model": ErrorResponse, "description": "no such job"}},
    summary="A training job's state and progress",
)
async def get_job(job: str, trainer: TrainerDep) -> JobStatus:
    return JobStatus.model_validate(await trainer.status(job))


@router.get("/models", response_model=ModelVersions, responses=_AUTH, summary="Model versions")
async def list_versions(store: StoreDep, trainer: TrainerDep) -> ModelVersions:
    """The configured model and every version training made, oldest first, and which is served."""
    await trainer.adopt()  # a job whose server process stopped: its version, served or gone
    active = store.current if store.ready else None
    entries = await run_in_threadpool(trainer.versions.entries, active)  # may load bundles
    return ModelVersions.model_validate({"versions": entries})


@router.post(
    "/models/{version}/activate",
    response_model=ModelVersion,
    responses=_WRITE
    | {
        404: {"model": ErrorResponse, "description": "no such version"},
        409: {"model": ErrorResponse, "description": "the version does not load"},
        503: {
            "model": ErrorResponse,
            "description": "the speaker store's folder is gone, or the workers cannot share "
            "the switch (the old model keeps serving)",
        },
    },
    summary="Serve another version: roll back or forward",
)
async def activate(version: str, store: StoreDep, trainer: TrainerDep) -> ModelVersion:
    """Every worker serves `version` from its next request on; requests in flight finish on
    the version they started with."""
    path = trainer.versions.find(version)
    try:
        bundle = await store.load(path)
    except BundleError as exc:  # the version folder named, not the data folder's whole path
        raise BundleError(without_paths(str(exc), path)) from exc
    trainer.versions.remember_active(bundle)
    return ModelVersion.model_validate(trainer.versions.entry_of(bundle.path, bundle))
