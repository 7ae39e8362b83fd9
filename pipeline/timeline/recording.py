"""The timeline of a whole recording: windows named in one batch, smoothed and merged."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.audio import NotStreamableError, decode, decode_blocks
from pipeline.bundle import Bundle
from pipeline.predict import UNKNOWN, predict_features
from pipeline.timeline.config import TimelineConfig
from pipeline.timeline.turns import (
    HopLabel,
    Segment,
    bridge_pauses,
    claim_unknown,
    merge_turns,
    refine_edges,
    smooth_labels,
    speaking_time,
)
from pipeline.timeline.windows import Windows, recording_windows, windows_of_blocks

__all__ = [
    "DEFAULT_MAX_TIMELINE_S",
    "Timeline",
    "hop_labels",
    "timeline",
    "timeline_of_clip",
    "timeline_of_windows",
]

# Windows named in one batch: a batch's working memory grows with it (an hour's 14,400 windows
# at once took 76 MB), and past a few hundred rows batching saves no more time.
NAMING_BATCH = 1024
DEFAULT_MAX_TIMELINE_S = 600.0  # longest recording a timeline is made of, seconds


@dataclass(frozen=True)
class Timeline:
    """Who spoke when: ``segments`` in time order, ``totals`` seconds per speaker; ``window_s``
    and ``hop_s`` are those in use, in whole feature frames."""

    segments: list[Segment]
    totals: dict[str, float]
    duration_s: float
    window_s: float
    hop_s: float
    hops: int  # windows named, one per hop
    speech_hops: int


def hop_labels(
    bundle: Bundle, windows: Windows, *, threshold: float | None = None
) -> list[HopLabel]:
    """Each window's answer: silence, or the decision ``/predict`` makes (``NAMING_BATCH``
    windows at a time)."""
    labels = [HopLabel(None)] * len(windows.speech)
    spoken = np.flatnonzero(windows.speech)
    for start in range(0, len(spoken), NAMING_BATCH):
        batch = spoken[start : start + NAMING_BATCH]
        predictions = predict_features(bundle, windows.rows[batch], threshold=threshold)
        for i, p in zip(batch, predictions, strict=True):
            labels[i] = HopLabel(p.speaker, p.confidence, p.reason, p.best)
    return labels


def timeline(
    bundle: Bundle, y: np.ndarray, tcfg: TimelineConfig, *, threshold: float | None = None
) -> Timeline:
    """The timeline of waveform ``y`` (1-D float32 at the bundle's sample rate); ``threshold``
    overrides the bundle's top-score threshold, as for ``/predict``."""
    return timeline_of_windows(
        bundle, recording_windows(y, bundle.feature_config, tcfg), tcfg, threshold=threshold
    )


def timeline_of_windows(
    bundle: Bundle, windows: Windows, tcfg: TimelineConfig, *, threshold: float | None = None
) -> Timeline:
    """The timeline of a recording's ``windows`` (:mod:`pipeline.timeline.windows`)."""
    window_s, hop_s = tcfg.in_use(bundle.feature_config)  # the hops' own spacing
    labels = hop_labels(bundle, windows, threshold=threshold)
    smoothed = smooth_labels([h.speaker for h in labels], tcfg.smooth)
    smoothed = bridge_pauses(smoothed, round(tcfg.pause_s / hop_s))
    inside = round(tcfg.claim_s / hop_s)
    smoothed = claim_unknown(smoothed, [h.best for h in labels], inside,
                             min(inside, round(window_s / 2 / hop_s)), UNKNOWN)  # fmt: skip
    segments = merge_turns(labels, smoothed, windows.times, hop_s, windows.duration_s, UNKNOWN)
    segments = refine_edges(segments, windows.frame_speech, windows.frame_s, hop_s)
    return Timeline(
        segments=segments,
        totals=speaking_time(segments),
        duration_s=round(windows.duration_s, 3),
        window_s=window_s,
        hop_s=hop_s,
        hops=len(labels),
        speech_hops=int(windows.speech.sum()),
    )


def timeline_of_clip(
    bundle: Bundle,
    source: bytes | str | Path,
    tcfg: TimelineConfig,
    *,
    max_seconds: float = DEFAULT_MAX_TIMELINE_S,
    threshold: float | None = None,
) -> Timeline:
    """Decode a recording (raises ``AudioError`` for unusable input, or one longer than
    ``max_seconds``) and return its timeline. The recording is decoded and resampled in blocks
    as its windows are described, so that neither its waveform nor its spectrum is ever held
    whole (:func:`pipeline.audio.decode_blocks`, :func:`windows_of_blocks`); data only ffmpeg
    reads is decoded whole, as a clip is."""
    cfg = bundle.feature_config
    try:
        with contextlib.closing(
            decode_blocks(source, sample_rate=cfg.sample_rate, max_seconds=max_seconds)
        ) as blocks:
            windows = windows_of_blocks(blocks, cfg, tcfg)
    except NotStreamableError as exc:
        clip = decode(exc.source, sample_rate=cfg.sample_rate, max_seconds=max_seconds)
        windows = recording_windows(clip.samples, cfg, tcfg)
    return timeline_of_windows(bundle, windows, tcfg, threshold=threshold)
