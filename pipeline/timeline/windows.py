"""Windows of a recording: which hold speech, and the histogram of those that do.

A window is named by the histogram of its own frames (``pipeline.features.histogram_of_bands``,
the features every clip goes through), but whether it holds speech is judged on its middle hop
alone, the stretch of time its answer stands for (a recording's first window also stands for
the frames before, its last for those after): a hop is speech when at least half a hop of its
frames are louder than ``floor_dbfs`` and ``over_noise_db`` above the noise floor, the quietest
tenth of the frames of the ``noise_s`` seconds up to it (for a hop within a recording's first
``noise_s`` seconds, of those seconds: one that starts with speech has no quiet before it). A
live stream (``pipeline.timeline.stream``), which cannot look ahead, has only what it has heard.
Levels are in dB below a full-scale 1 kHz tone, so that the floor means the same whatever the
feature config.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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
    "band_powers_of_blocks",
    "describe_window",
    "full_scale_db",
    "middle_hop",
    "noise_floor",
    "recording_band_powers",
    "recording_windows",
    "windows_of_blocks",
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
    *,
    span_db: np.ndarray | None = None,
) -> tuple[np.ndarray | None, np.ndarray]:
    """The (cfg.row_width,) feature row of one window, or None when the frames its answer
    stands for hold no speech; and which of those frames are speech (bool).

    ``bands`` (frames, n_bands) and ``raw_db`` (frames,) are the window's, from
    :func:`band_powers`; ``recent_dbfs`` are the levels (dB below full scale) of the
    ``tcfg.noise_s`` seconds of frames up to the end of what it stands for. That is its middle
    hop, unless ``span_db`` gives the levels (as ``raw_db``) of other frames: a recording's
    first window also stands for the frames before its middle hop, and its last for those after.
    """
    hop_frames = min(tcfg.frames(cfg)[1], len(raw_db))
    if span_db is None:
        span_db = raw_db[middle_hop(len(raw_db), hop_frames)]
    floor = max(tcfg.floor_dbfs, noise_floor(recent_dbfs) + tcfg.over_noise_db)
    frames = span_db - full_scale_db(cfg) >= floor
    if np.count_nonzero(frames) * 2 < min(len(frames), hop_frames):  # speech for half a hop
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
    spectrum of a long recording (several times its size) is never held whole
    (:func:`band_powers_of_blocks`)."""
    pieces: list[tuple[np.ndarray, np.ndarray]] = []
    band_powers_of_blocks([y], cfg, lambda *piece: pieces.append(piece), block_frames=block_frames)
    bands, raw_db = zip(*pieces, strict=True)
    return np.concatenate(bands), np.concatenate(raw_db)


def band_powers_of_blocks(
    blocks: Iterable[np.ndarray],
    cfg: FeatureConfig,
    take: Callable[[np.ndarray, np.ndarray], object],
    *,
    block_frames: int = BLOCK_FRAMES,
) -> int:
    """:func:`band_powers` of the waveform that ``blocks`` (1-D float32, in order, of any
    lengths) join into, handed to ``take(bands, raw_db)`` ``block_frames`` frames at a time as
    their samples arrive, holding only the samples the next frames reach; returns the
    waveform's length in samples. Each block of frames is cut with the samples its edge frames
    reach, so that its frames are those of the whole, wherever ``blocks`` are cut.

    An error of ``band_powers`` (or ``take``) is raised once ``blocks`` are all read: one they
    raise then (a decoder's, about the whole recording) comes first."""
    h, half = cfg.hop_length, cfg.n_fft // 2
    margin = -(-half // h)  # frames before a block whose samples its first frame reaches
    held, held_from = np.zeros(0, np.float32), 0  # the samples from index held_from on
    n_samples = first = 0

    def compute(stop: int) -> None:
        nonlocal first, held, held_from
        lead = min(first, margin)
        piece = held[(first - lead) * h - held_from : (stop - 1) * h + half - held_from]
        bands, raw_db = band_powers(piece, cfg)
        take(bands[lead : lead + stop - first], raw_db[lead : lead + stop - first])
        first = stop
        keep = (first - min(first, margin)) * h  # where the next block's samples start
        held, held_from = held[keep - held_from :], keep

    given = iter(blocks)
    try:
        for block in given:
            held = np.concatenate([held, block]) if len(held) else block
            n_samples += len(block)
            # A block whose last frame's samples have all come is cut as from the whole.
            while (first + block_frames - 1) * h + half <= n_samples:
                compute(first + block_frames)
        n_frames = 1 + n_samples // h
        while first < n_frames:
            compute(min(first + block_frames, n_frames))
    except InvalidAudioError:
        for _ in given:  # what the rest of the recording is refused for comes first
            pass
        raise
    return n_samples


def recording_windows(y: np.ndarray, cfg: FeatureConfig, tcfg: TimelineConfig) -> Windows:
    """Every window of waveform ``y`` (1-D float32 at ``cfg.sample_rate``), one per hop; a
    recording shorter than a window is one window. The spectrum is computed once for all, in
    blocks (:func:`band_powers_of_blocks`)."""
    return windows_of_blocks([y], cfg, tcfg)


def windows_of_blocks(
    blocks: Iterable[np.ndarray], cfg: FeatureConfig, tcfg: TimelineConfig
) -> Windows:
    """:func:`recording_windows` of the waveform that ``blocks`` join into, which is never held
    whole, nor are its band powers: each window is described as soon as its frames are
    computed (:class:`_WindowCutter`)."""
    cutter = _WindowCutter(cfg, tcfg)
    n_samples = band_powers_of_blocks(blocks, cfg, cutter.take)
    return cutter.windows(n_samples)


class _WindowCutter:
    """The windows of frames handed in as they are computed, each described (one per hop) once
    its frames, the next window's and the recording's first ``noise_s`` seconds are in; only
    the frames that windows still to come reach are held (their band powers, and levels for the
    noise floor).

    A window early in the recording takes the noise floor of its first ``noise_s`` seconds, not
    of the frames up to it alone: a recording that starts with speech has no quiet frames yet,
    and its first words would be taken for background. The first window stands for the frames
    before its middle hop too, and the last for those after: none is left unjudged."""

    def __init__(self, cfg: FeatureConfig, tcfg: TimelineConfig) -> None:
        self.cfg, self.tcfg = cfg, tcfg
        self.window_frames, self.hop_frames = tcfg.frames(cfg)
        self.noise_frames = round(tcfg.noise_s * cfg.sample_rate / cfg.hop_length)
        self.bands = np.zeros((0, cfg.n_bands), np.float32)  # frames from held_from on
        self.raw_db = np.zeros(0, np.float32)
        self.held_from = self.n_frames = 0
        self.starts: list[int] = []  # each window's first frame
        self.rows: dict[int, np.ndarray] = {}  # the feature rows of the windows with speech
        self.frame_speech: list[np.ndarray] = []  # the frames each window stands for, in turn

    def take(self, bands: np.ndarray, raw_db: np.ndarray) -> None:
        """Hold the next frames, and describe every window that they complete."""
        self.bands = np.concatenate([self.bands, bands])
        self.raw_db = np.concatenate([self.raw_db, raw_db])
        self.n_frames += len(raw_db)
        if self.n_frames >= self.noise_frames:
            self._describe_until(self.n_frames - self.hop_frames, last=False)

    def windows(self, n_samples: int) -> Windows:
        """The windows, once all ``n_samples`` samples' frames are in: a recording shorter than
        a window is one window of its frames."""
        cfg = self.cfg
        window_frames = min(self.window_frames, self.n_frames)
        if window_frames < self.window_frames:
            self._describe(0, window_frames, last=True)
        else:
            self._describe_until(self.n_frames, last=True)
        rows = np.zeros((len(self.starts), cfg.row_width), np.float32)
        speech = np.zeros(len(self.starts), bool)
        for i, row in self.rows.items():
            rows[i], speech[i] = row, True
        frame_speech = np.zeros(self.n_frames, bool)
        if self.starts:
            spoken = np.concatenate(self.frame_speech)
            frame_speech[: len(spoken)] = spoken
        middle = middle_hop(window_frames, min(self.hop_frames, window_frames))
        centre = (np.array(self.starts) + (middle.start + middle.stop - 1) / 2) * cfg.hop_length
        return Windows(centre / cfg.sample_rate, rows, speech, n_samples / cfg.sample_rate,
                       frame_speech, cfg.hop_length / cfg.sample_rate)  # fmt: skip

    def _describe_until(self, frames: int, *, last: bool) -> None:
        """Describe the windows not yet described that end by frame ``frames``; with ``last``,
        the final one stands for the frames after its middle hop too."""
        start = len(self.starts) * self.hop_frames
        while start + self.window_frames <= frames:
            final = last and start + self.hop_frames + self.window_frames > frames
            self._describe(start, self.window_frames, last=final)
            start += self.hop_frames
        middle = middle_hop(self.window_frames, self.hop_frames)
        self._forget(max(0, min(start, start + middle.stop - self.noise_frames)))

    def _describe(self, start: int, window_frames: int, *, last: bool) -> None:
        middle = middle_hop(window_frames, min(self.hop_frames, window_frames))
        stop, at = start + window_frames, self.held_from
        span_from = 0 if start == 0 else start + middle.start
        heard = self.n_frames if last else start + middle.stop  # the end of what it stands for
        # Early windows look ahead to the recording's first noise_s seconds for their floor.
        recent = self.raw_db[max(0, heard - self.noise_frames) - at :
                             max(heard, min(self.noise_frames, self.n_frames)) - at]  # fmt: skip
        row, frames = describe_window(self.bands[start - at : stop - at],
                                      self.raw_db[start - at : stop - at],
                                      recent - full_scale_db(self.cfg), self.cfg, self.tcfg,
                                      span_db=self.raw_db[span_from - at : heard - at])  # fmt: skip
        if row is not None:
            self.rows[len(self.starts)] = row
        self.starts.append(start)
        self.frame_speech.append(frames)

    def _forget(self, before: int) -> None:
        """Drop the frames before frame ``before``, which no window still to come reaches."""
        self.bands = self.bands[before - self.held_from :]
        self.raw_db = self.raw_db[before - self.held_from :]
        self.held_from = before
