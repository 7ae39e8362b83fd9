"""The work behind the ``/listen`` WebSocket: the first message, the key, the limits, the answers.

Protocol: the client's first message is JSON (:class:`ListenStart`); the server answers
``{"type": "ready", ...}``, then the client sends binary frames of mono 16-bit little-endian PCM
at ``sample_rate``, and the server sends one JSON answer per hop (``service.schemas.ListenHop``).
Every refusal closes the socket with one of :data:`CLOSE_CODES` and a reason that names the
value and the setting that allows more. With ``VOICEID_API_KEY`` set, the key travels in the
``X-API-Key`` header, in ``Sec-WebSocket-Protocol`` as ``key.<KEY>`` (browsers cannot set
headers; offer ``voiceid`` as well, the subprotocol the server picks), or in the first message,
and it is checked before any audio is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from functools import partial
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, ValidationError
from pydantic_core import PydanticCustomError
from starlette.datastructures import Headers
from starlette.websockets import WebSocket, WebSocketDisconnect

from pipeline.bundle import Bundle
from pipeline.errors import AudioError, ParameterError, VoiceIdError
from pipeline.timeline.config import TimelineConfig
from pipeline.timeline.stream import Hop, Listener, pcm16_samples
from service.auth import check_presented_key, presented_key
from service.compute import ComputeQueue
from service.errors import OverloadedError, UnauthorizedError
from service.model_store import ModelStore
from service.schemas import ListenHop, ModelRef
from service.settings import Settings

__all__ = [
    "CLOSE_CODES",
    "SUBPROTOCOL",
    "ListenStart",
    "StreamClosedError",
    "Streams",
    "authorise",
    "hop_answer",
    "parse_start",
    "run_stream",
    "serve_stream",
]

SUBPROTOCOL = "voiceid"  # what the server picks when the client offers it
KEY_PREFIX = "key."  # a subprotocol carrying the API key
# A frame whose answers analyse at most this many seconds of audio (four 1 s windows: a second
# of audio at the default hop) is answered on the event loop, as a short clip is
# (service.compute): handing it to the compute thread would cost more CPU than the frame, and
# under load its wait for the GIL, more than its answer's whole time.
SHORT_FRAME_WORK_S = 4.0
MAX_REASON_BYTES = 123  # the most a WebSocket close frame's reason may hold
# Why a stream was closed -> its close code: 4xxx are this app's, after the HTTP status they
# mirror; the others are RFC 6455's.
CLOSE_CODES = {
    "bad start": 4400,  # the first message is not a valid ListenStart
    "key": 1008,  # policy violation: the API key is missing or wrong
    "bad frame": 1007,  # a frame that is not whole 16-bit samples, or text after the start
    "too big": 1009,  # a frame over listen_max_frame_bytes
    "idle": 4408,  # nothing for listen_idle_s
    "too long": 4413,  # over listen_max_seconds
    "too fast": 4429,  # faster than listen_max_speed, or listen_max_frames_per_s
    "busy": 1013,  # try again later: listen_max_streams, or compute over its budget
    "no model": 4503,  # no model loaded yet
    "model changed": 1012,  # service restart: the served model's features are not the stream's
}


class StreamClosedError(Exception):
    """Close the stream with ``CLOSE_CODES[why]`` and ``reason``."""

    def __init__(self, why: str, reason: str) -> None:
        super().__init__(reason)
        self.code = CLOSE_CODES[why]
        self.reason = reason.encode()[:MAX_REASON_BYTES].decode(errors="ignore")


def _no_truth_value(value: object) -> object:
    """``value``, unless it is JSON's ``true`` or ``false``, which pydantic would read as the
    number 1 or 0 (a stream at 1 Hz is no client's meaning)."""
    if isinstance(value, bool):
        raise PydanticCustomError("number_type", "Input should be a number, not true or false")
    return value


_Number = BeforeValidator(_no_truth_value)


class ListenStart(BaseModel):
    """The first message of a stream."""

    model_config = ConfigDict(extra="forbid")
    sample_rate: Annotated[int, _Number] = Field(description="Hz of the PCM frames that follow")
    window_s: Annotated[float, _Number] = Field(
        TimelineConfig.window_s, description="seconds behind each answer"
    )
    hop_s: Annotated[float, _Number] = Field(
        TimelineConfig.hop_s, description="seconds between answers"
    )
    explain: StrictBool = Field(False, description="add each window's histogram to its answer")
    key: str | None = Field(None, description="the API key, when not in a header")


def parse_start(text: str | None) -> ListenStart:
    """The first message, or :class:`StreamClosedError` saying what is wrong with it."""
    if text is None:
        raise StreamClosedError("bad start", "the first message must be JSON text, not binary")
    try:
        return ListenStart.model_validate(json.loads(text))
    except (ValueError, ValidationError, RecursionError) as exc:
        if isinstance(exc, ValidationError):
            error = exc.errors()[0]
            field = ".".join(str(p) for p in error["loc"]) or "message"
            detail = f"{field}: {error['msg']}"
        elif isinstance(exc, RecursionError):  # arrays in arrays, deeper than Python recurses
            detail = "it is nested too deep: send one flat JSON object"
        else:
            detail = "it is not JSON"
        raise StreamClosedError("bad start", f"bad first message: {detail}") from None


def authorise(headers: Headers, start: ListenStart | None, settings: Settings) -> None:
    """Raise :class:`UnauthorizedError` unless the key is in the headers (``X-API-Key``,
    ``Authorization: Bearer``, or a ``key.<KEY>`` subprotocol) or in the first message."""
    offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")]
    in_protocol = next((p[len(KEY_PREFIX) :] for p in offered if p.startswith(KEY_PREFIX)), None)
    key = presented_key(headers) or in_protocol or (start.key if start else None)
    check_presented_key(key, settings, "send it as the key.<KEY> subprotocol or as 'key'")


class Streams:
    """How many streams this worker serves, at most ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit, self.open = limit, 0

    def take(self) -> None:
        if self.open >= self.limit:
            raise StreamClosedError(
                "busy",
                f"{self.open} streams are open, the most this worker takes "
                f"({Settings.env_name('listen_max_streams')}); try again later",
            )
        self.open += 1

    def release(self) -> None:
        self.open -= 1


@dataclass
class Pace:
    """What a stream of PCM at ``sample_rate`` has sent, against the limits on its length and
    speed. It may be ``listen_burst_s`` ahead of real time, or one frame of the largest size
    ahead if that is longer: a client that sends such a frame and waits is not too fast."""

    settings: Settings
    sample_rate: int
    started: float
    audio_s: float = 0.0
    frames: int = 0

    def __post_init__(self) -> None:
        largest_frame_s = self.settings.listen_max_frame_bytes / 2 / self.sample_rate
        self.ahead_s = max(self.settings.listen_burst_s, largest_frame_s)

    def count(self, seconds: float) -> None:
        s = self.settings
        self.audio_s += seconds
        self.frames += 1
        elapsed = time.monotonic() - self.started
        if max(self.audio_s, elapsed) > s.listen_max_seconds:
            limit = f"{Settings.env_name('listen_max_seconds')}={s.listen_max_seconds:g}"
            raise StreamClosedError("too long", f"stream reached {limit} s")
        if self.audio_s > elapsed * s.listen_max_speed + self.ahead_s:
            raise StreamClosedError(
                "too fast",
                f"{self.audio_s:.1f} s of audio in {elapsed:.1f} s: faster than "
                f"{Settings.env_name('listen_max_speed')}={s.listen_max_speed:g}x real time",
            )
        if self.frames > (elapsed + 1) * s.listen_max_frames_per_s:
            raise StreamClosedError(
                "too fast",
                f"{self.frames} frames in {elapsed:.1f} s: over "
                f"{Settings.env_name('listen_max_frames_per_s')}={s.listen_max_frames_per_s:g}",
            )


async def _receive(websocket: WebSocket, idle_s: float, what: str) -> str | bytes:
    """The next message's text or bytes; :class:`StreamClosedError` after ``idle_s`` without one,
    :class:`WebSocketDisconnect` when the client has gone."""
    try:
        async with asyncio.timeout(idle_s):  # wait_for would start a task per message
            message = await websocket.receive()
    except TimeoutError:
        raise StreamClosedError(
            "idle", f"no {what} for {idle_s:g} s ({Settings.env_name('listen_idle_s')})"
        ) from None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    data: bytes | None = message.get("bytes")
    return data if data is not None else message.get("text") or ""


def _frame_samples(data: str | bytes, settings: Settings) -> bytes:
    if isinstance(data, str):
        raise StreamClosedError("bad frame", "after the first message, send binary PCM frames only")
    if len(data) > settings.listen_max_frame_bytes:
        limit = f"{Settings.env_name('listen_max_frame_bytes')}={settings.listen_max_frame_bytes}"
        raise StreamClosedError("too big", f"frame of {len(data)} bytes is over {limit}")
    return data


def hop_answer(hop: Hop, explain: bool) -> ListenHop:
    """The JSON answer for one hop."""
    p = hop.prediction
    if p is None:
        return ListenHop(t=hop.t, speech=False)
    return ListenHop(
        t=hop.t, speech=True, speaker=p.speaker, confidence=round(p.confidence, 4),
        unknown=p.unknown, unknown_reason=p.reason,
        histogram=[round(float(v), 2) for v in p.histogram] if explain else None,
    )  # fmt: skip


async def _start(websocket: WebSocket, settings: Settings, bundle: Bundle) -> tuple[
    Listener, ListenStart
]:  # fmt: skip
    text = await _receive(websocket, settings.listen_idle_s, "first message")
    start = parse_start(text if isinstance(text, str) else None)
    try:
        authorise(websocket.headers, start, settings)
    except UnauthorizedError as exc:
        raise StreamClosedError("key", str(exc)) from None
    try:
        tcfg = TimelineConfig(window_s=start.window_s, hop_s=start.hop_s)
        threshold = settings.unknown_threshold
        return Listener(bundle, start.sample_rate, tcfg, threshold=threshold), start
    except ParameterError as exc:
        raise StreamClosedError("bad start", f"bad first message: {exc}") from None


async def _follow_model(store: ModelStore, listener: Listener) -> None:
    """Name the next hops with the model being served, as ``/predict`` would: one loaded or
    activated while the stream runs takes over; :class:`StreamClosedError` when its features
    are not those the stream's audio was heard with."""
    await store.follow()
    bundle = store.current
    if bundle is listener.bundle:
        return
    try:
        listener.use(bundle)
    except ParameterError as exc:
        raise StreamClosedError("model changed", f"{exc}: start a new stream") from None


async def serve_stream(
    websocket: WebSocket, settings: Settings, store: ModelStore, compute: ComputeQueue
) -> None:
    """Serve one accepted stream until the client leaves or a limit closes it."""
    try:
        bundle = store.current
    except VoiceIdError as exc:
        raise StreamClosedError("no model", str(exc)) from None
    listener, start = await _start(websocket, settings, bundle)
    await websocket.send_json({
        "type": "ready", "sample_rate": start.sample_rate, "window_s": listener.window_s,
        "hop_s": listener.hop_s, "model": ModelRef.of(bundle).model_dump(),
    })  # fmt: skip
    pace = Pace(settings, start.sample_rate, time.monotonic())
    while True:
        data = _frame_samples(await _receive(websocket, settings.listen_idle_s, "audio"), settings)
        try:
            samples = pcm16_samples(data)
        except AudioError as exc:
            raise StreamClosedError("bad frame", str(exc)) from None
        pace.count(len(samples) / start.sample_rate)
        await _follow_model(store, listener)
        short = listener.work_due(len(samples)) <= SHORT_FRAME_WORK_S * listener.model_rate
        try:
            hops = await compute.run(partial(listener.push, samples),
                                     budget_s=settings.clip_budget_s, short=short)  # fmt: skip
        except OverloadedError as exc:
            raise StreamClosedError("busy", str(exc)) from None
        for hop in hops:
            answer = hop_answer(hop, start.explain)
            await websocket.send_text(answer.model_dump_json(exclude_none=True))


async def run_stream(
    websocket: WebSocket,
    settings: Settings,
    store: ModelStore,
    compute: ComputeQueue,
    streams: Streams,
) -> None:
    """Serve an accepted stream within this worker's stream limit; close it with the code and
    reason of whatever ends it, or let it go when the client leaves."""
    try:
        streams.take()
    except StreamClosedError as closed:
        await _close(websocket, closed)
        return
    try:
        await store.follow()
        await serve_stream(websocket, settings, store, compute)
    except StreamClosedError as closed:
        await _close(websocket, closed)
    except WebSocketDisconnect:
        pass  # the client has gone: nobody is left to tell
    finally:
        streams.release()


async def _close(websocket: WebSocket, closed: StreamClosedError) -> None:
    """Close the stream with ``closed``'s code and reason, unless its client has gone already
    (it may leave while the server decides to close it)."""
    with contextlib.suppress(WebSocketDisconnect):
        await websocket.close(closed.code, closed.reason)
