"""From a clip or feature rows to a speaker: the one prediction path for the CLI and the service."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.audio import DEFAULT_MAX_SECONDS, Clip, ClipSource, clip_source, decode
from pipeline.bundle import Bundle
from pipeline.config import FeatureConfig
from pipeline.envelope import envelope
from pipeline.errors import ParameterError, UnreadableClipError
from pipeline.features import Stft, histogram, stft
from pipeline.names import UNKNOWN
from pipeline.openset import Reason
from pipeline.quality.conditions import causes, resembles, signs
from pipeline.quality.issues import Issue, issues
from pipeline.quality.measures import Quality, measure

__all__ = [
    "ADVICE",
    "REASON_WORDS",
    "UNKNOWN",
    "Judged",
    "Prediction",
    "clip_features",
    "clip_histogram",
    "clip_quality",
    "clip_spectrum",
    "judge_recordings",
    "predict_clip",
    "predict_features",
    "reason_in_words",
]

# Why a clip is unknown, as a person reads it.
REASON_WORDS: dict[str, str] = {
    "far": "too far from every voice the model knows",
    "unsure": "unsure between voices",
    "poor_recording": "the recording is too poor to judge",
}
# What would help, for each reason a clip is unknown; a poor recording's comes with its issue.
ADVICE: dict[Reason, str] = {
    "far": "this voice is not one the model knows: teach it with a dozen takes to have it named",
    "unsure": "the voice sounds between known voices: say a longer phrase, or teach the model "
    "more takes of the voices it confuses",
    "poor_recording": "the recording, not the voice, is the likely cause: record it again",
}


def reason_in_words(reason: str) -> str:
    """A decision's reason for "unknown" in words; a reason without words of its own is shown
    as its name (``poor_recording`` as "poor recording")."""
    return REASON_WORDS.get(reason, reason.replace("_", " "))


@dataclass(frozen=True)
class Prediction:
    """The answer for one clip. ``best`` is the voice the clip is answered as, even when
    ``speaker`` is unknown: the top label, or the runner-up where the top voice is far from the
    clip and the runner-up near (``pipeline.openset``), and ``confidence`` is its score;
    ``reason`` says why ``speaker`` is unknown: "far" (from every clip of ``best``), "unsure"
    (between speakers) or "poor_recording" (its first issue, else its first sign, the likely
    cause);
    ``distance`` is the clip's distance to ``best``'s nearest reference of the condition the
    recording resembles (``condition``); ``quality``, ``issues`` and ``signs`` describe the
    recording when it was measured (``pipeline.quality``)."""

    speaker: str
    best: str
    confidence: float
    scores: dict[str, float]
    unknown: bool
    reason: Reason | None
    distance: float
    histogram: np.ndarray  # (n_bands,) dB
    hidden: np.ndarray  # (hidden,) sigmoid activations in [0, 1]
    quality: Quality | None = None
    issues: tuple[Issue, ...] = ()
    signs: tuple[Issue, ...] = ()
    condition: str = "clean"

    @property
    def cause(self) -> Issue | None:
        """What a "poor_recording" refusal names: the most telling issue, else sign blamed."""
        blamed = causes(self.issues, self.signs)
        return blamed[0] if self.reason == "poor_recording" and blamed else None

    @property
    def advice(self) -> str | None:
        """What would help, when the clip is unknown."""
        if self.reason is None:
            return None
        return self.cause.advice if self.cause else ADVICE[self.reason]


@dataclass(frozen=True)
class Judged:
    """What clips' recordings say, one entry per clip: its issues (``pipeline.quality.issues``),
    its signs of a degraded recording and the condition it resembles
    (``pipeline.quality.conditions``)."""

    issues: list[tuple[Issue, ...]]
    signs: list[tuple[Issue, ...]]
    conditions: list[str]

    @property
    def causes(self) -> list[tuple[Issue, ...]]:
        """Each clip's issues, then the signs that may be blamed: a refusal with any is a poor
        recording's."""
        return [causes(found, seen) for found, seen in zip(self.issues, self.signs, strict=True)]


def judge_recordings(qualities: Sequence[Quality], band_hz: float) -> Judged:
    """The issues, signs and condition of each clip of ``qualities`` for a model that listens up
    to ``band_hz``."""
    judged = Judged([], [], [])
    for q in qualities:  # a plain loop: comprehensions and generators cost more than the checks
        seen = signs(q, band_hz)
        judged.issues.append(issues(q, band_hz))
        judged.signs.append(tuple(issue for _, issue in seen) if seen else ())
        judged.conditions.append(resembles(seen))
    return judged


def predict_features(
    bundle: Bundle,
    features: np.ndarray,
    *,
    threshold: float | None = None,
    qualities: Sequence[Quality] | None = None,
    clips: Sequence[Clip] | None = None,
) -> list[Prediction]:
    """Predictions for feature rows (B, row_width), with each row's recording ``qualities`` when
    measured; ``threshold`` overrides the bundle's top-score ("unsure") threshold. With the
    decoded ``clips`` the rows came from, a clip of a voice taught with few takes may also be
    judged by its spectral envelope (``pipeline.envelope``; measured only where it counts)."""
    rows = np.atleast_2d(features)
    bands = bundle.feature_config.n_bands  # what a prediction shows: the histogram
    judged = judge_recordings(qualities, bundle.feature_config.fmax) if qualities else None
    envelope_of = None
    if clips is not None:

        def envelope_of(i: int) -> np.ndarray | None:
            return envelope(clips[i].samples, clips[i].sample_rate)

    hidden, scores, distance, reasons, voices = bundle.decision(threshold).decide(
        rows, judged.causes if judged else None, judged.conditions if judged else None,
        envelope_of,
    )  # fmt: skip
    out = []
    for i, k in enumerate(voices):
        out.append(
            Prediction(
                speaker=bundle.labels[k] if reasons[i] is None else UNKNOWN,
                best=bundle.labels[k],
                confidence=float(scores[i, k]),
                scores={label: float(s) for label, s in zip(bundle.labels, scores[i], strict=True)},
                unknown=reasons[i] is not None,
                reason=reasons[i],
                distance=float(distance[i]),
                histogram=rows[i, :bands],
                hidden=hidden[i],
                quality=qualities[i] if qualities else None,
                issues=judged.issues[i] if judged else (),
                signs=judged.signs[i] if judged else (),
                condition=judged.conditions[i] if judged else "clean",
            )
        )
    return out


def clip_histogram(
    source: bytes | str | Path, cfg: FeatureConfig, *, max_seconds: float = DEFAULT_MAX_SECONDS
) -> tuple[np.ndarray, Clip]:
    """Decode one clip and return its (cfg.row_width,) feature row, and the clip (raises
    ``AudioError`` for unusable input): :func:`clip_features` without the quality measures."""
    clip = decode(source, sample_rate=cfg.sample_rate, max_seconds=max_seconds)
    return histogram(clip.samples, cfg), clip


def clip_features(
    source: bytes | str | Path, cfg: FeatureConfig, *, max_seconds: float = DEFAULT_MAX_SECONDS
) -> tuple[np.ndarray, Quality, Clip]:
    """Decode one clip and return its (cfg.row_width,) feature row, its recording quality
    and the clip (raises ``AudioError`` for unusable input): the checks every clip a model
    hears goes through. One short-time spectrum serves both where their frames agree, as the
    default features' do."""
    clip = decode(source, sample_rate=cfg.sample_rate, max_seconds=max_seconds)
    spectrum = clip_spectrum(clip, cfg)
    return histogram(clip.samples, cfg, spectrum=spectrum), clip_quality(clip, spectrum), clip


def clip_spectrum(clip: Clip, cfg: FeatureConfig) -> Stft:
    """The decoded clip's short-time spectrum with ``cfg``'s frames, for :func:`histogram` and
    :func:`clip_quality` to share."""
    return stft(clip.samples, n_fft=cfg.n_fft, hop_length=cfg.hop_length)


def clip_quality(clip: Clip, spectrum: Stft | None = None) -> Quality:
    """The recording quality of a decoded clip, judged on the band its source really had;
    ``spectrum`` is its :func:`clip_spectrum` when at hand."""
    return measure(clip.samples, clip.sample_rate, source_rate=clip.source_rate,
                   clipped=clip.source_clipped_fraction,
                   companded=clip.source_companded_levels, spectrum=spectrum)  # fmt: skip


def predict_clip(
    bundle: Bundle,
    source: ClipSource,
    *,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    threshold: float | None = None,
) -> tuple[Prediction, Clip]:
    """Decode, featurise, measure and classify one clip: a file's bytes or its path
    (:func:`pipeline.audio.clip_source`). Raises ``AudioError`` for unusable input,
    :class:`UnreadableClipError` for a path that cannot be read, and ``ParameterError`` for
    arguments of another type, or a ``threshold`` outside [0, 1]."""
    if not isinstance(bundle, Bundle):
        raise ParameterError(
            f"bundle must be a Bundle (voiceid.load_bundle), not {type(bundle).__name__}"
        )
    _check_threshold(threshold)
    clip = clip_source(source)
    try:
        row, quality, decoded = clip_features(clip, bundle.feature_config, max_seconds=max_seconds)
    except OSError as exc:
        if not isinstance(clip, Path):  # not the file's: let it say what it is
            raise
        reason = exc.strerror or str(exc)
        raise UnreadableClipError(f"cannot read {str(clip)!r}: {reason}", reason=reason) from exc
    prediction = predict_features(
        bundle, row, threshold=threshold, qualities=[quality], clips=[decoded]
    )[0]
    return prediction, decoded


def _check_threshold(threshold: object) -> None:
    """The service's limits for a top-score threshold: None (the bundle's), or 0 to 1."""
    if threshold is None:
        return
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise ParameterError(f"threshold={threshold!r} must be a number from 0 to 1")
    if not 0 <= threshold <= 1:  # nan too
        raise ParameterError(f"threshold={threshold!r} must be a number from 0 to 1")
