"""The speaker store: list, enrol clips, remove (``pipeline.speakers``; who may write:
``service.auth``)."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from pipeline.names import check_speaker_name
from pipeline.speakers import SpeakerStore
from service.compute import ComputeQueue
from service.deps import ComputeDep, SettingsDep, SpeakersDep, StoreDep
from service.enrolment import answer_status, check_clips, learnt_by, store_clips, takes_report
from service.errors import ConflictError, NotFoundError, OverloadedError
from service.model_store import ModelStore
from service.schemas import (
    ClipEntry,
    ClipRemoved,
    ClipsResponse,
    ErrorResponse,
    SpeakerDetail,
    SpeakerRemoved,
    SpeakersResponse,
    TakesReport,
)
from service.settings import Settings
from service.uploads import FILES_BODY, read_batch

__all__ = ["CLIPS_PATH", "router"]

# A name is taken as a path, so that one holding "/" gets the naming rules' 422, not a 404.
CLIPS_PATH = "/speakers/{name:path}/clips"

router = APIRouter(tags=["speakers"])

_Responses = dict[int | str, dict[str, Any]]
_KEY: _Responses = {
    401: {"model": ErrorResponse, "description": "API key missing or wrong (when one is set)"},
    503: {
        "model": ErrorResponse,
        "description": "the store's folder is gone, or (for a change) cannot be written",
    },
}
_WRITE: _Responses = _KEY | {
    403: {"model": ErrorResponse, "description": "no API key, and off loopback or another site's"}
}
_NAME: _Responses = {
    422: {"model": ErrorResponse, "description": "the name breaks the naming rules"}
}


async def _speaker_name(name: str) -> str:
    """The path's speaker name, checked and in NFC, before anything reads it."""
    return check_speaker_name(name)


SpeakerName = Annotated[str, Depends(_speaker_name)]
AddToExisting = Annotated[
    bool,
    Query(description="Add the clips to a voice the model knows, under its own name. Without "
          "it, clips for one of the model's speakers that the store lacks are refused (409)."),
]  # fmt: skip


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
async def get_speaker(
    name: SpeakerName,
    speakers: SpeakersDep,
    models: StoreDep,
    settings: SettingsDep,
    compute: ComputeDep,
) -> SpeakerDetail:
    clips = await run_in_threadpool(speakers.clips, name)
    in_model = name in _labels(models)
    if not clips and not in_model:
        raise NotFoundError(f"no speaker {name!r} in the store or the model")
    takes = await _takes(compute, speakers, name, models, settings) if clips else None
    return SpeakerDetail(name=name, in_model=in_model, clips=[ClipEntry.of(c) for c in clips],
                         takes=takes)  # fmt: skip


async def _takes(
    compute: ComputeQueue, speakers: SpeakerStore, name: str, models: ModelStore,
    settings: Settings,
) -> TakesReport | None:  # fmt: skip
    """The store's takes of ``name`` judged on the compute thread, within a clip's budget each;
    None without a model or when the server is too busy: advice never fails an answer."""
    if not models.ready:
        return None
    takes = len(await run_in_threadpool(speakers.clip_paths, name))
    budget = settings.clip_budget_s * max(takes, 1)
    try:
        return await compute.run(partial(takes_report, speakers, name, models.current, settings),
                                 budget_s=budget)  # fmt: skip
    except OverloadedError:
        return None


@router.post(
    CLIPS_PATH,
    response_model=ClipsResponse,
    response_model_exclude_none=True,  # a take that never decoded has no quality
    responses=_WRITE
    | _NAME
    | {
        409: {
            "description": "the speakers or clips limit is reached; the name reads the same "
            "as another speaker's, or is the model's own without add_to_existing; or every "
            "clip is stored as another speaker's or is one the model learnt from"
        },
        413: {"description": "over the body or store size limit, or every clip too large"},
        415: {"description": "no clip is audio in a format the server reads"},
        503: {
            "model": ErrorResponse,
            "description": "no model, busy, or the store is gone or cannot be written",
        },
        507: {"model": ErrorResponse, "description": "the store's disk is full: nothing stored"},
    },
    openapi_extra=FILES_BODY,
    summary="Add clips of a speaker to the store",
)
async def add_clips(
    name: SpeakerName,
    request: Request,
    speakers: SpeakersDep,
    models: StoreDep,
    settings: SettingsDep,
    compute: ComputeDep,
    add_to_existing: AddToExisting = False,
) -> Any:
    """Send clips as repeated multipart field `files`. Each is checked as /predict checks it;
    the answer lists the accepted ones, with their histograms, and the refused ones with why
    (a clip the store holds as another speaker's, or with the bytes of a clip the model learnt
    from, is refused with 409). With nothing accepted, the status is the refusals' (422 when
    they differ).

    The name is taken in NFC. A name that reads the same as another speaker's in the store or
    the model (`alice` beside `Alice`; `David` with a Cyrillic a beside the model's `David`) is
    refused with 409 naming that speaker. Clips for a speaker the model knows and the store does
    not hold are refused with 409 too, unless `add_to_existing=true` says they are meant to join
    that voice at the next training."""
    files = await read_batch(request, settings.batch_max_files)
    check = partial(check_clips, models.current.feature_config, files, settings)
    outcomes = await compute.run(check, budget_s=settings.clip_budget_s * len(files))
    learnt = await run_in_threadpool(learnt_by, models.current)  # read once a version
    store = partial(store_clips, model_labels=_labels(models), add_to_existing=add_to_existing,
                    learnt=learnt)  # fmt: skip
    answer = await run_in_threadpool(store, speakers, name, outcomes)
    if answer.accepted:
        takes = await _takes(compute, speakers, name, models, settings)
        answer = answer.model_copy(update={"takes": takes})
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
async def remove_clip(name: SpeakerName, clip: str, speakers: SpeakersDep) -> ClipRemoved:
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
async def remove_speaker(
    name: SpeakerName, speakers: SpeakersDep, models: StoreDep
) -> SpeakerRemoved:
    if name in _labels(models) and not await run_in_threadpool(speakers.clips, name):
        raise ConflictError(
            f"{name!r} is a speaker of the model, not of the store: train without it, or "
            "activate a version that does not know it"
        )
    return SpeakerRemoved(
        removed=name, clips=await run_in_threadpool(speakers.remove_speaker, name)
    )
