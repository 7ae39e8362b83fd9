"""A live stream's answers, one per hop, from 16-bit PCM arriving in pieces of any size.

A :class:`Listener` holds a fixed amount whatever the stream's length: the last window of
samples (a ring), the levels of the last ``noise_s`` seconds of frames (a ring) and the
resampler's state. Each answer is about the middle hop of the window that ends where the stream
has got to; its ``t`` is that hop's centre, ``window_s / 2`` behind the newest sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import soxr

from pipeline.audio import MIN_SOURCE_RATE
from pipeline.bundle import Bundle
from pipeline.errors import InvalidAudioError, ParameterError
from pipeline.features import band_powers
from pipeline.predict import Prediction, predict_features
from pipeline.timeline.config import TimelineConfig
from pipeline.timeline.windows import describe_window, full_scale_db, middle_hop

__all__ = ["MAX_STREAM_RATE", "Hop", "Listener", "pcm16_samples"]

MAX_STREAM_RATE = 192_000  # Hz; a stream at a higher rate is refused
PCM_SCALE = 1 / 32768  # 16-bit sample to [-1, 1)


def pcm16_samples(data: bytes) -> np.ndarray:
    """Mono 16-bit little-endian PCM ``data`` as float32 in [-1, 1); an odd number of bytes
    is :class:`InvalidAudioError`."""
    if len(data) % 2:
        raise InvalidAudioError(
            f"a frame of {len(data)} bytes is not whole 16-bit samples (an even count is needed)"
        )
    return np.frombuffer(data, dtype="<i2").astype(np.float32) * PCM_SCALE


@dataclass(frozen=True)
class Hop:
    """One answer: at ``t`` seconds of the stream, speech or not, and if so the prediction."""

    t: float
    prediction: Prediction | None


class _Ring:
    """The last ``size`` values pushed, oldest first (zeros before there are that many)."""

    def __init__(self, size: int, dtype: type) -> None:
        self.values: np.ndarray = np.zeros(size, dtype)
        self.at = 0
        self.count = 0

    def push(self, values: np.ndarray) -> None:
        for piece in np.array_split(values, range(len(self.values), len(values), len(self.values))):
            end = self.at + len(piece)
            first = min(end, len(self.values)) - self.at
            self.values[self.at : self.at + first] = piece[:first]
            self.values[: len(piece) - first] = piece[first:]
            self.at = end % len(self.values)
        self.count += len(values)

    def last(self) -> np.ndarray:
        """Every value held, oldest first (only those pushed, before the ring is full)."""
        ordered = np.concatenate((self.values[self.at :], self.values[: self.at]))
        return ordered[-min(self.count, len(self.values)) :]


class Listener:
    """Answers for one stream at ``source_rate`` Hz, under ``bundle`` and ``tcfg``; ``threshold``
    overrides the bundle's top-score threshold, as for ``/predict``."""

    def __init__(
        self,
        bundle: Bundle,
        source_rate: int,
        tcfg: TimelineConfig,
        *,
        threshold: float | None = None,
    ) -> None:
        if not MIN_SOURCE_RATE <= source_rate <= MAX_STREAM_RATE:
            raise ParameterError(
                f"sample_rate={source_rate!r} must be from {MIN_SOURCE_RATE} to "
                f"{MAX_STREAM_RATE} Hz"
            )
        cfg = bundle.feature_config
        self.bundle, self.tcfg, self.threshold = bundle, tcfg, threshold
        self.source_rate = source_rate
        window_frames, hop_frames = tcfg.frames(cfg)
        self.window_samples = (window_frames - 1) * cfg.hop_length
        self.hop_samples = hop_frames * cfg.hop_length
        self.middle = middle_hop(window_frames, hop_frames)
        self.samples = _Ring(self.window_samples, np.float32)
        self.levels = _Ring(round(tcfg.noise_s * cfg.sample_rate / cfg.hop_length), np.float64)
        self.resampler = (
            None if source_rate == cfg.sample_rate
            else soxr.ResampleStream(source_rate, cfg.sample_rate, 1, dtype="float32")
        )  # fmt: skip
        self.next_answer_at = self.window_samples  # samples at the model's rate

    @property
    def window_s(self) -> float:
        """The window in use: the one asked for, in whole feature frames."""
        return self.tcfg.in_use(self.bundle.feature_config)[0]

    @property
    def hop_s(self) -> float:
        """The hop in use: the one asked for, rounded to whole feature frames."""
        return self.tcfg.in_use(self.bundle.feature_config)[1]

    @property
    def model_rate(self) -> int:
        """Hz of the audio the model hears: the source's, resampled if need be."""
        return self.bundle.feature_config.sample_rate

    @property
    def seconds(self) -> float:
        """Seconds of audio heard so far."""
        return self.samples.count / self.bundle.feature_config.sample_rate

    def use(self, bundle: Bundle) -> None:
        """Name the hops to come with ``bundle`` (a model loaded while the stream runs);
        :class:`ParameterError` when its features are not those the stream was heard with."""
        if bundle.feature_config != self.bundle.feature_config:
            raise ParameterError(
                f"the model now served, {bundle.name} ({bundle.version}), has other features "
                "than this stream's"
            )
        self.bundle = bundle

    def work_due(self, source_samples: int) -> int:
        """Samples at the model's rate that pushing ``source_samples`` more will analyse: one
        window for each answer they complete. A resampler gives a push its share and at most
        the samples it still holds back, all counted here, so this is never less than the
        push's work and at most one window more."""
        arriving = source_samples * self.model_rate / self.source_rate
        if self.resampler is not None:
            arriving += self.resampler.delay()
        ahead = self.samples.count + math.ceil(arriving) - self.next_answer_at
        return 0 if ahead < 0 else (1 + ahead // self.hop_samples) * self.window_samples

    def push(self, samples: np.ndarray) -> list[Hop]:
        """Take float32 ``samples`` at the source rate; the answers for every hop they complete."""
        if self.resampler is not None:
            samples = self.resampler.resample_chunk(samples)
        rows: list[tuple[float, np.ndarray | None]] = []
        while len(samples):
            take = self.next_answer_at - self.samples.count
            self.samples.push(samples[:take])
            samples = samples[take:]
            if self.samples.count == self.next_answer_at:
                rows.append(self._window())
                self.next_answer_at += self.hop_samples
        return self._answers(rows)

    def _window(self) -> tuple[float, np.ndarray | None]:
        """The time and histogram (None: no speech) of the window ending now."""
        cfg = self.bundle.feature_config
        bands, raw_db = band_powers(self.samples.last(), cfg)
        # The first window's frames before its middle hop count too, as in a whole recording.
        heard = self.middle if self.levels.count else slice(0, self.middle.stop)
        self.levels.push(raw_db[heard] - full_scale_db(cfg))
        row, _ = describe_window(bands, raw_db, self.levels.last(), cfg, self.tcfg)
        middle_s = (self.middle.start + self.middle.stop - 1) / 2 * cfg.hop_length
        t = (self.samples.count - self.window_samples + middle_s) / cfg.sample_rate
        return round(t, 3), row

    def _answers(self, rows: list[tuple[float, np.ndarray | None]]) -> list[Hop]:
        spoken = [row for _, row in rows if row is not None]
        predictions = iter(
            predict_features(self.bundle, np.stack(spoken), threshold=self.threshold)
            if spoken else []
        )  # fmt: skip
        return [Hop(t, None if row is None else next(predictions)) for t, row in rows]
