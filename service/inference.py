"""From uploaded bytes to a response body: the work behind /predict and /predict/batch.

These run on the compute thread (``service.compute``): decoding and features are CPU work that
must not block the event loop. The network's forward pass is numpy
on four small arrays.
"""

from __future__ import annotations

import time

from pipeline.bundle import Bundle
from pipeline.errors import AudioError
from pipeline.features import band_centres
from pipeline.predict import Prediction, predict_clip
from service.errors import status_for
from service.metrics import Metrics
from service.schemas import (
    BatchItem,
    Explanation,
    ModelRef,
    PredictResponse,
    QualityIssue,
    QualityReport,
)
from service.settings import Settings

__all__ = ["answer_batch", "answer_clip", "oversized"]


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
    return PredictResponse(
        speaker=prediction.speaker,
        confidence=prediction.confidence,
        scores=prediction.scores,
        unknown=prediction.unknown,
        unknown_reason=prediction.reason,
        unknown_cause=QualityIssue.of(prediction.cause) if prediction.cause else None,
        advice=prediction.advice,
        threshold=threshold,
        model=ModelRef.of(bundle),
        duration_s=round(clip.duration_s, 4),
        timing_ms=round((time.perf_counter() - started) * 1000, 3),
        quality=QualityReport.of(prediction.quality, prediction.issues)
        if prediction.quality
        else None,
        explain=_explanation(bundle, prediction) if explain else None,
    )


def oversized(data: bytes, settings: Settings) -> str | None:
    """Why one file of a batch is refused for its size (413), if it is: the per-clip limit
    holds inside a batch too."""
    if len(data) <= settings.max_upload_bytes:
        return None
    return f"file of {len(data)} bytes is over the limit of {settings.max_upload_bytes} bytes"


def answer_batch(
    bundle: Bundle, files: list[tuple[str, bytes]], settings: Settings, metrics: Metrics
) -> list[BatchItem]:
    """One item per file: its result, or its own error; one bad file never fails the rest."""
    items = []
    for name, data in files:
        if (detail := oversized(data, settings)) is not None:
            items.append(BatchItem(file=name, ok=False, status=413, detail=detail))
            continue
        try:
            result = answer_clip(bundle, data, settings, metrics)
        except AudioError as exc:
            items.append(BatchItem(file=name, ok=False, status=status_for(exc), detail=str(exc)))
            continue
        items.append(BatchItem(file=name, ok=True, status=200, result=result))
    return items
