"""The speaker store: list, enrol clips, remove (``pipeline.speakers``; who may write:
``service.auth``)."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from pipeline.speakers import check_speaker_name
from service.deps import ComputeDep, SettingsDep, SpeakersDep, StoreDep
from service.enrolment import answer_status, check_clips, store_clips
from service.errors import ConflictError, NotFoundError
from service.model_store import ModelStore
from service.schemas import (
    ClipEntry,
    ClipRemoved,
    ClipsResponse,
    ErrorResponse,
    SpeakerDetail,
    SpeakerRemoved,
    SpeakersResponse,
)
from service.uploads import FILES_BODY, read_batch

__all__ = ["CLIPS_PATH", "router"]

# A name is taken as a path, so that one holding "/" gets the naming rules' 422, not a 404.
CLIPS_PATH = "/speakers/{name:path}/clips"

router = APIRouter(tags=["speakers"])

_Responses = dict[int | str, dict[str, Any]]
_KEY: _Responses = {
    401: {"model": ErrorResponse, "description": "API key missing or wrong (when one is set)"}
}
_WRITE: _Responses = _KEY | {
    403: {"model": ErrorResponse, "description": "no API key, and the server is not on loopback"}
}
_NAME: _Responses = {
    422: {"model": ErrorResponse, "description": "the name breaks the naming rules"}
}


def _labels(models: ModelStore) -> tuple[str, ...]:
    return tuple(models.current.labels) if models.ready else ()


@router.get("/speakers", response_model=SpeakersResponse, responses=_KEY,
            summary="The store's speakers and the current model's")  # fmt: skip
async def list_speakers(speakers: SpeakersDep, models: StoreDep) -> SpeakersResponse:
    return SpeakersResponse.of(await run_in_threadpool(speakers.speakers), _labels(models))


@router.get(
    "/speakers/{name:path}",
    response_model=SpeakerDetail,
    responses=_KEY | _NAME | {404: {"model": ErrorResponse, "description": "unknown speaker"}},
    summary="One speaker's clips in the store",
)
async def get_speaker(name: str, speakers: SpeakersDep, models: StoreDep) -> SpeakerDetail:
    clips = await run_in_threadpool(speakers.clips, name)
    in_model = name in _labels(models)
    if not clips and not in_model:
        raise NotFoundError(f"no speaker {name!r} in the store or the model")
    return SpeakerDetail(name=name, in_model=in_model, clips=[ClipEntry.of(c) for c in clips])


@router.post(
    CLIPS_PATH,
    response_model=ClipsResponse,
    response_model_exclude_none=True,  # a take that never decoded has no quality
    responses=_WRITE
    | _NAME
    | {
        409: {"model": ErrorResponse, "description": "the speakers or clips limit is reached"},
        413: {"description": "over the body or store size limit, or every clip too large"},
        415: {"description": "no clip is audio in a format the server reads"},
        503: {"model": ErrorResponse, "description": "no model loaded yet, or busy"},
    },
    openapi_extra=FILES_BODY,
    summary="Add clips of a speaker to the store",
)
async def add_clips(
    name: str,
    request: Request,
    speakers: SpeakersDep,
    models: StoreDep,
    settings: SettingsDep,
    compute: ComputeDep,
) -> Any:
    """Send clips as repeated multipart field `files`. Each is checked as /predict checks it;
    the answer lists the accepted ones, with their histograms, and the refused ones with why.
    With nothing accepted, the status is the refusals' (422 when they differ)."""
    check_speaker_name(name)
    files = await read_batch(request, settings.batch_max_files)
    check = partial(check_clips, models.current.feature_config, files, settings)
    outcomes = await compute.run(check, budget_s=settings.clip_budget_s * len(files))
    answer = await run_in_threadpool(store_clips, speakers, name, outcomes)
    status = answer_status(answer)
    return (
        answer
        if status == 200
        else JSONResponse(answer.model_dump(exclude_none=True), status_code=status)
    )


@router.delete(
    "/speakers/{name:path}/clips/{clip}",
    response_model=ClipRemoved,
    responses=_WRITE | _NAME | {404: {"model": ErrorResponse, "description": "no such clip"}},
    summary="Remove one clip of a speaker from the store",
)
async def remove_clip(name: str, clip: str, speakers: SpeakersDep) -> ClipRemoved:
    await run_in_threadpool(speakers.remove_clip, name, clip)
    return ClipRemoved(removed=clip)


@router.delete(
    "/speakers/{name:path}",
    response_model=SpeakerRemoved,
    responses=_WRITE
    | _NAME
    | {
        404: {"model": ErrorResponse, "description": "the store has no such speaker"},
        409: {"model": ErrorResponse, "description": "a speaker of the model, not of the store"},
    },
    summary="Remove a speaker and its clips from the store",
)
async def remove_speaker(name: str, speakers: SpeakersDep, models: StoreDep) -> SpeakerRemoved:
    check_speaker_name(name)
    if name in _labels(models) and not await run_in_threadpool(speakers.clips, name):
        raise ConflictError(
            f"{name!r} is a speaker of the model, not of the store: train without it, or "
            "activate a version that does not know it"
        )
    return SpeakerRemoved(
        removed=name, clips=await run_in_threadpool(speakers.remove_speaker, name)
    )
