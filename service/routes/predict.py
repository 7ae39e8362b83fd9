"""POST /predict and /predict/batch."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.datastructures import State

from service.compute import ComputeQueue
from service.deps import ComputeDep, MetricsDep, SettingsDep, StoreDep
from service.inference import answer_batch, answer_clip, is_short
from service.model_store import ModelStore
from service.schemas import (
    BatchResponse,
    ErrorResponse,
    ModelRef,
    PredictResponse,
    json_response,
)
from service.settings import Settings
from service.uploads import CLIP_BODY, FILES_BODY, clip_boundary, clip_in, read_batch

router = APIRouter(tags=["predict"])  # the key: service.auth

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "malformed multipart body"},
    401: {"model": ErrorResponse, "description": "API key missing or wrong (only when one is set)"},
    413: {"model": ErrorResponse, "description": "upload over the size or count limit"},
    415: {"model": ErrorResponse, "description": "not a supported audio format or content type"},
    # No model here: a bad query parameter gets FastAPI's validation body instead of ours.
    422: {"description": "audio unusable: empty, silent, too short, too long, non-finite"},
    503: {"model": ErrorResponse, "description": "no model loaded yet, or busy past the budget"},
}


@router.post(
    "/predict",
    response_model=PredictResponse,
    response_model_exclude_none=True,
    responses=ERRORS,
    openapi_extra=CLIP_BODY,
    summary="Who said this clip?",
)
async def predict(request: Request, explain: bool = False) -> Response:
    """Send a clip as multipart field `file`, or as the body with an `audio/*` content type.
    With `explain=true` the answer also holds the histogram and hidden activations."""
    return await answer(request, explain=explain)


async def answer(request: Request, *, explain: bool = False) -> Response:
    """The answer to a /predict ``request`` (FastAPI's route's)."""
    content_type = request.headers.get("content-type", "")
    return json_response(await prediction(request.app.state, content_type, request.body,
                                          explain=explain))  # fmt: skip


async def prediction(
    state: State, content_type: str, body: Callable[[], Awaitable[bytes]], *, explain: bool = False
) -> PredictResponse:
    """The answer to a /predict request with a body of ``content_type`` that ``body()`` reads,
    in an app of ``state``: this route's, and its fast path's (``service.fastpath``), which
    answers most requests below FastAPI."""
    # The hot path: no dependencies (FastAPI solves each one per request) and no response
    # validation (the answer is built by our code, and encoded once); both cost CPU on the
    # scale of the clip's own work (python -m bench.serve).
    # State's values read from its dict: each `state.name` first misses as an attribute, and
    # the miss formats an AttributeError's message before State.__getattr__ answers.
    values = state._state
    settings: Settings = values["settings"]
    store: ModelStore = values["store"]
    await store.follow()
    bundle = store.current
    boundary = clip_boundary(content_type)  # an unsupported body is refused unread
    _, data = clip_in(await body(), boundary)
    job = partial(answer_clip, bundle, data, settings, values["metrics"], explain=explain)
    compute: ComputeQueue = values["compute"]
    return await compute.run(job, budget_s=settings.clip_budget_s, short=is_short(data))


@router.post(
    "/predict/batch",
    response_model=BatchResponse,
    response_model_exclude_none=True,
    responses=ERRORS,
    openapi_extra=FILES_BODY,
    summary="Who said each of these clips?",
)
async def predict_batch(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    compute: ComputeDep,
) -> BatchResponse:
    """Send clips as repeated multipart field `files`; each gets a result or its own error."""
    bundle = store.current
    files = await read_batch(request, settings.batch_max_files)
    items = await compute.run(
        partial(answer_batch, bundle, files, settings, metrics),
        budget_s=settings.clip_budget_s * len(files),
    )
    return BatchResponse(results=items, model=ModelRef.of(bundle))
