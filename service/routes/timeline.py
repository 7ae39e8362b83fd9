"""POST /timeline: who spoke when in a long recording."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request

from service.deps import ComputeDep, SettingsDep, StoreDep
from service.inference import answer_timeline
from service.routes.predict import ERRORS
from service.schemas import TimelineResponse
from service.uploads import CLIP_BODY, read_clip

router = APIRouter(tags=["timeline"])  # the key: service.auth

TIMELINE_BUDGET_S = 60.0  # longest a recording may wait for and take compute before a 503


@router.post(
    "/timeline",
    response_model=TimelineResponse,
    response_model_exclude_none=True,
    responses=ERRORS,
    openapi_extra=CLIP_BODY,
    summary="Who spoke when in this recording?",
)
async def timeline(
    request: Request, store: StoreDep, settings: SettingsDep, compute: ComputeDep
) -> TimelineResponse:
    """Send a recording (up to `VOICEID_TIMELINE_MAX_SECONDS`) as multipart field `file`, or
    as the body with an `audio/*` content type: its turns, one segment each, and the seconds
    each speaker spoke. Silence is no segment."""
    bundle = store.current
    _, data = await read_clip(request)
    job = partial(answer_timeline, bundle, data, settings)
    return await compute.run(job, budget_s=TIMELINE_BUDGET_S)
