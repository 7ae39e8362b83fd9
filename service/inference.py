"""From uploaded bytes to a response body: the work behind /predict and /predict/batch.

These run on the compute thread (``service.compute``): decoding and features are CPU work that
must not block the event loop. The network's forward pass is numpy
on four small arrays.
"""

from __future__ import annotations

import io
import logging
import time
import wave

import numpy as np

from pipeline.audio import is_pcm16_wav
from pipeline.bundle import Bundle
from pipeline.errors import AudioError, ClipTooLongError
from pipeline.features import band_centres
from pipeline.predict import Prediction, predict_clip
from pipeline.timeline.config import TimelineConfig
from pipeline.timeline.recording import timeline_of_clip
from pipeline.timeline.turns import Segment
from service.errors import detail_for, status_for
from service.metrics import Metrics
from service.schemas import (
    BatchItem,
    Explanation,
    ModelRef,
    PredictResponse,
    QualityReport,
    TimelineResponse,
    TimelineSegment,
    json_response,
)
from service.settings import Settings

__all__ = [
    "SHORT_CLIP_BYTES",
    "answer_batch",
    "answer_clip",
    "answer_timeline",
    "is_short",
    "oversized",
    "synthetic_clip",
    "warm_up",
]

log = logging.getLogger("voiceid.service")

# The largest 16-bit PCM WAV answered on the event loop rather than the compute thread
# (service.compute): 4 s of 16 kHz mono, 1.3 s of 48 kHz mono.
SHORT_CLIP_BYTES = 128 * 1024


def _explanation(bundle: Bundle, prediction: Prediction) -> Explanation:
    return Explanation(
        histogram=prediction.histogram.tolist(),
        inputs=bundle.network.standardise(prediction.histogram).tolist(),
        hidden=prediction.hidden.tolist(),
        band_centres_hz=band_centres(bundle.feature_config).tolist(),
        distance=prediction.distance,
        distance_threshold=bundle.open_set.threshold,
    )


def answer_clip(
    bundle: Bundle, data: bytes, settings: Settings, metrics: Metrics, *, explain: bool = False
) -> PredictResponse:
    """Predict one clip; raises ``AudioError`` for input that cannot be used."""
    started = time.perf_counter()
    threshold = (
        bundle.threshold if settings.unknown_threshold is None else settings.unknown_threshold
    )
    prediction, clip = predict_clip(
        bundle, data, max_seconds=settings.max_clip_seconds, threshold=threshold
    )
    metrics.count_prediction(prediction.speaker, prediction.unknown)
    # One validation of the whole answer from plain values: building each nested model on its
    # own first (ModelRef.of, QualityReport.of) costs twice as much, on the scale of a tenth
    # of the serving around the work (python -m bench.serve). The answer is the same.
    return PredictResponse.model_validate(
        {
            "speaker": prediction.speaker,
            "confidence": prediction.confidence,
            "scores": prediction.scores,
            "unknown": prediction.unknown,
            "unknown_reason": prediction.reason,
            "unknown_cause": prediction.cause.to_dict() if prediction.cause else None,
            "advice": prediction.advice,
            "threshold": threshold,
            "model": ModelRef.fields(bundle),
            "duration_s": round(clip.duration_s, 4),
            "timing_ms": round((time.perf_counter() - started) * 1000, 3),
            "quality": QualityReport.fields(prediction.quality, prediction.issues)
            if prediction.quality
            else None,
            "explain": _explanation(bundle, prediction) if explain else None,
        }
    )


def synthetic_clip(sample_rate: int, seconds: float) -> bytes:
    """A 16-bit PCM WAV of ``seconds`` of a voiced 120 Hz buzz (its harmonics under an
    amplitude that rises and falls like a word) at ``sample_rate``."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    buzz = sum(np.sin(2 * np.pi * 120 * k * t) / k for k in range(1, 20))
    envelope = np.sin(np.pi * t / seconds) ** 2
    pcm = (0.2 * 32767 * buzz * envelope / np.max(np.abs(buzz))).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return out.getvalue()


def warm_up(bundle: Bundle, settings: Settings) -> None:
    """Answer a synthetic clip as /predict answers one, up to the JSON sent (decode, features,
    quality, forward pass, decision), counted in metrics nobody reads: each first call's setup
    (caches, lazily built arrays, allocations) is then paid before the worker takes requests,
    not by its first clients. A clip it cannot answer keeps no model out: it is logged."""
    clip = synthetic_clip(bundle.feature_config.sample_rate, min(1.0, settings.max_clip_seconds))
    try:
        json_response(answer_clip(bundle, clip, settings, Metrics()))
    except AudioError as exc:
        log.warning("warm-up clip not answered (the first request pays for its setup): %s", exc)


def is_short(data: bytes) -> bool:
    """Whether answering ``data`` is short work, the kind run on the event loop: a 16-bit PCM
    WAV of at most ``SHORT_CLIP_BYTES`` (its header is read only then)."""
    return len(data) <= SHORT_CLIP_BYTES and is_pcm16_wav(data)


def oversized(data: bytes | memoryview, settings: Settings) -> str | None:
    """Why one file of a batch is refused for its size (413), if it is: the per-clip limit
    holds inside a batch too."""
    if len(data) <= settings.max_upload_bytes:
        return None
    return f"file of {len(data)} bytes is over the limit of {settings.max_upload_bytes} bytes"


def answer_batch(
    bundle: Bundle, files: list[tuple[str, memoryview]], settings: Settings, metrics: Metrics
) -> list[BatchItem]:
    """One item per file (views into the batch's body: ``service.uploads.read_batch``): its
    result, or its own error; one bad file never fails the rest. Each file is copied out of the
    body only while it is answered, so the batch holds one file more than its body."""
    items = []
    for name, data in files:
        if (detail := oversized(data, settings)) is not None:
            items.append(BatchItem(file=name, ok=False, status=413, detail=detail))
            continue
        try:
            result = answer_clip(bundle, bytes(data), settings, metrics)
        except AudioError as exc:
            items.append(
                BatchItem(file=name, ok=False, status=status_for(exc), detail=detail_for(exc))
            )
            continue
        items.append(BatchItem(file=name, ok=True, status=200, result=result))
    return items


def _segment(s: Segment) -> TimelineSegment:
    return TimelineSegment(start=s.start, end=s.end, speaker=s.speaker, confidence=s.confidence,
                           unknown=s.unknown, unknown_reason=s.reason)  # fmt: skip


def answer_timeline(bundle: Bundle, data: bytes, settings: Settings) -> TimelineResponse:
    """Who spoke when in one recording; raises ``AudioError`` for input that cannot be used."""
    started = time.perf_counter()
    tcfg = TimelineConfig()
    try:
        found = timeline_of_clip(bundle, data, tcfg, max_seconds=settings.timeline_max_seconds,
                                 threshold=settings.unknown_threshold)  # fmt: skip
    except ClipTooLongError as exc:  # a timeline's limit is a setting of its own
        raise ClipTooLongError(str(exc), setting="timeline_max_seconds") from exc
    return TimelineResponse(
        segments=[_segment(s) for s in found.segments],
        totals=found.totals,
        duration_s=found.duration_s,
        window_s=found.window_s,
        hop_s=found.hop_s,
        model=ModelRef.of(bundle),
        timing_ms=round((time.perf_counter() - started) * 1000, 3),
    )
