"""From a clip or feature rows to a speaker: the one prediction path for the CLI and the service."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.audio import DEFAULT_MAX_SECONDS, Clip, decode
from pipeline.bundle import Bundle
from pipeline.config import FeatureConfig
from pipeline.features import histogram
from pipeline.openset import Reason

__all__ = [
    "REASON_WORDS",
    "UNKNOWN",
    "Prediction",
    "clip_histogram",
    "predict_clip",
    "predict_features",
    "reason_in_words",
]

UNKNOWN = "unknown"  # the speaker reported when the open-set decision rejects the clip
# Why a clip is unknown, as a person reads it.
REASON_WORDS: dict[str, str] = {
    "far": "too far from every voice the model knows",
    "unsure": "unsure between voices",
}


def reason_in_words(reason: str) -> str:
    """A decision's reason for "unknown" in words; a reason without words of its own is shown
    as its name (``poor_recording`` as "poor recording")."""
    return REASON_WORDS.get(reason, reason.replace("_", " "))


@dataclass(frozen=True)
class Prediction:
    """The answer for one clip. ``best`` is the top label even when ``speaker`` is unknown;
    ``reason`` says why it is: "far" (from every clip of ``best``) or "unsure" (between
    speakers); ``distance`` is the clip's distance to ``best``'s nearest training clip."""

    speaker: str
    best: str
    confidence: float
    scores: dict[str, float]
    unknown: bool
    reason: Reason | None
    distance: float
    histogram: np.ndarray  # (n_bands,) dB
    hidden: np.ndarray  # (hidden,) sigmoid activations in [0, 1]


def predict_features(
    bundle: Bundle, features: np.ndarray, *, threshold: float | None = None
) -> list[Prediction]:
    """Predictions for feature rows (B, n_bands); ``threshold`` overrides the bundle's top-score
    ("unsure") threshold."""
    rows = np.atleast_2d(features)
    hidden, scores, distance, reasons = bundle.decision(threshold).decide(rows)
    out = []
    for i, k in enumerate(scores.argmax(axis=1)):
        out.append(
            Prediction(
                speaker=bundle.labels[k] if reasons[i] is None else UNKNOWN,
                best=bundle.labels[k],
                confidence=float(scores[i, k]),
                scores={label: float(s) for label, s in zip(bundle.labels, scores[i], strict=True)},
                unknown=reasons[i] is not None,
                reason=reasons[i],
                distance=float(distance[i]),
                histogram=rows[i],
                hidden=hidden[i],
            )
        )
    return out


def clip_histogram(
    source: bytes | str | Path, cfg: FeatureConfig, *, max_seconds: float = DEFAULT_MAX_SECONDS
) -> tuple[np.ndarray, Clip]:
    """Decode one clip and return its (n_bands,) histogram under ``cfg``, and the clip (raises
    ``AudioError`` for unusable input): the checks every clip a model hears goes through."""
    clip = decode(source, sample_rate=cfg.sample_rate, max_seconds=max_seconds)
    return histogram(clip.samples, cfg), clip


def predict_clip(
    bundle: Bundle,
    source: bytes | str | Path,
    *,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    threshold: float | None = None,
) -> tuple[Prediction, Clip]:
    """Decode, featurise and classify one clip (raises ``AudioError`` for unusable input)."""
    row, clip = clip_histogram(source, bundle.feature_config, max_seconds=max_seconds)
    return predict_features(bundle, row, threshold=threshold)[0], clip
