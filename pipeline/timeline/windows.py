"""Windows of a recording: which hold speech, and the histogram of those that do.

A window is named by the histogram of its own frames (``pipeline.features.histogram_of_bands``,
the features every clip goes through), but whether it holds speech is judged on its middle hop
alone, the stretch of time its answer stands for: a hop is speech when most of its frames are
louder than ``floor_dbfs`` and ``over_noise_db`` above the noise floor, the quietest tenth of the
frames of the ``noise_s`` seconds up to it. Levels are in dB below a full-scale 1 kHz tone, so
that the floor means the same whatever the feature config.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from pipeline.config import FeatureConfig
from pipeline.errors import InvalidAudioError
from pipeline.features import band_powers, histogram_of_bands
from pipeline.timeline.config import TimelineConfig

__all__ = [
    "BLOCK_FRAMES",
    "NOISE_QUANTILE",
    "Windows",
    "describe_window",
    "full_scale_db",
    "middle_hop",
    "noise_floor",
    "recording_band_powers",
    "recording_windows",
]

NOISE_QUANTILE = 0.1  # the noise floor: this quantile of the recent frames' levels
# Feature frames whose spectrum is computed at once: a long recording's is never held whole.
BLOCK_FRAMES = 6000


@lru_cache(maxsize=8)
def full_scale_db(cfg: FeatureConfig) -> float:
    """The frame level (dB, as ``band_powers`` gives it) of a full-scale 1 kHz tone."""
    t = np.arange(cfg.sample_rate) / cfg.sample_rate
    _, raw_db = band_powers(np.sin(2 * np.pi * 1000 * t).astype(np.float32), cfg)
    return float(np.median(raw_db))


def middle_hop(window_frames: int, hop_frames: int) -> slice:
    """The frames of a window's middle hop: the stretch of time its answer stands for."""
    start = window_frames // 2 - hop_frames // 2
    return slice(start, start + hop_frames)


def noise_floor(levels: np.ndarray) -> float:
    """The noise floor (dB) of frame ``levels`` (n,): their ``NOISE_QUANTILE`` quantile."""
    rank = int(NOISE_QUANTILE * (len(levels) - 1))
    return float(np.partition(levels, rank)[rank])


def describe_window(
    bands: np.ndarray,
    raw_db: np.ndarray,
    recent_dbfs: np.ndarray,
    cfg: FeatureConfig,
    tcfg: TimelineConfig,
) -> tuple[np.ndarray | None, np.ndarray]:
    """The (cfg.row_width,) feature row of one window, or None when its middle hop holds no speech;
    and which frames of the middle hop are speech (bool).

    ``bands`` (frames, n_bands) and ``raw_db`` (frames,) are the window's, from
    :func:`band_powers`; ``recent_dbfs`` are the levels (dB below full scale) of the
    ``tcfg.noise_s`` seconds of frames up to the end of the middle hop.
    """
    _, hop_frames = tcfg.frames(cfg)
    hop_dbfs = raw_db[middle_hop(len(raw_db), min(hop_frames, len(raw_db)))] - full_scale_db(cfg)
    floor = max(tcfg.floor_dbfs, noise_floor(recent_dbfs) + tcfg.over_noise_db)
    frames = hop_dbfs >= floor
    if np.count_nonzero(frames) * 2 < len(hop_dbfs):
        return None, frames
    try:
        return histogram_of_bands(bands, raw_db, cfg), frames
    except InvalidAudioError:  # a click, not speech
        return None, frames


@dataclass(frozen=True)
class Windows:
    """The windows of a recording: ``times`` (n,) seconds of each middle hop's centre, ``rows``
    (n, cfg.row_width) feature rows (zeros where there is no speech) and ``speech`` (n,) bool; and
    ``frame_speech`` (frames,) bool, whether each feature frame (``frame_s`` apart, the first
    centred on 0) is speech."""

    times: np.ndarray
    rows: np.ndarray
    speech: np.ndarray
    duration_s: float
    frame_speech: np.ndarray
    frame_s: float


def recording_band_powers(
    y: np.ndarray, cfg: FeatureConfig, *, block_frames: int = BLOCK_FRAMES
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`band_powers` of waveform ``y``, ``block_frames`` frames at a time, so that the
    spectrum of a long recording (several times its size) is never held whole. Each block is
    cut with the samples its edge frames reach, so that its frames are those of the whole."""
    h, half = cfg.hop_length, cfg.n_fft // 2
    n_frames = 1 + len(y) // h
    margin = -(-half // h)  # frames before a block whose samples its first frame reaches
    bands = np.empty((n_frames, cfg.n_bands), np.float32)
    raw_db = np.empty(n_frames, np.float32)
    for first in range(0, n_frames, block_frames):
        stop = min(first + block_frames, n_frames)
        lead = min(first, margin)
        piece = y[(first - lead) * h : (stop - 1) * h + half]
        piece_bands, piece_db = band_powers(piece, cfg)
        bands[first:stop] = piece_bands[lead : lead + stop - first]
        raw_db[first:stop] = piece_db[lead : lead + stop - first]
    return bands, raw_db


def recording_windows(y: np.ndarray, cfg: FeatureConfig, tcfg: TimelineConfig) -> Windows:
    """Every window of waveform ``y`` (1-D float32 at ``cfg.sample_rate``), one per hop; a
    recording shorter than a window is one window. The spectrum is computed once for all, in
    blocks (:func:`recording_band_powers`)."""
    bands, raw_db = recording_band_powers(y, cfg)
    dbfs = raw_db - full_scale_db(cfg)
    window_frames, hop_frames = tcfg.frames(cfg)
    window_frames = min(window_frames, len(raw_db))
    noise_frames = round(tcfg.noise_s * cfg.sample_rate / cfg.hop_length)
    middle = middle_hop(window_frames, min(hop_frames, window_frames))
    starts = range(0, len(raw_db) - window_frames + 1, hop_frames)
    rows = np.zeros((len(starts), cfg.row_width), np.float32)
    speech = np.zeros(len(starts), bool)
    frame_speech = np.zeros(len(raw_db), bool)
    for i, start in enumerate(starts):
        stop = start + window_frames
        heard = start + middle.stop
        recent = dbfs[max(0, heard - noise_frames) : heard]
        row, frames = describe_window(bands[start:stop], raw_db[start:stop], recent, cfg, tcfg)
        frame_speech[start + middle.start : heard] = frames
        if row is not None:
            rows[i], speech[i] = row, True
    centre = (np.array(starts) + (middle.start + middle.stop - 1) / 2) * cfg.hop_length
    return Windows(centre / cfg.sample_rate, rows, speech, len(y) / cfg.sample_rate,
                   frame_speech, cfg.hop_length / cfg.sample_rate)  # fmt: skip
