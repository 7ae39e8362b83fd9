"""The 60-bin frequency histogram: a pure function of a waveform and a :class:`FeatureConfig`.

For a mono float32 waveform ``y`` at ``cfg.sample_rate``:

1. Power spectrogram ``S = |STFT(y)|**2``: periodic Hann window of ``n_fft`` samples, hop
   ``hop_length``, frames centred on zero-padded edges, exactly as ``librosa.stft(y, center=True)``
   computes it (tested equal) but with the window cached and no per-call checks.
2. Band powers ``B = S @ M.T`` with ``M`` the ``n_bands`` triangular mel-spaced (HTK) filters
   between ``fmin`` and ``fmax``, unnormalised.
3. Steady background removed: each band's noise floor is its ``noise_percentile`` over all
   frames, subtracted from the band's power, never taking it below a tenth (-10 dB) of what it was.
4. Frame level ``e[t] = 10 log10(sum_b B[t, b])`` dB. Frames more than ``top_db`` below the
   loudest are left out of the average. A clip is refused only when the span of frames within
   ``sound_db`` of the loudest (quiet consonants included) is shorter than ``min_speech_s``.
5. Log compression ``10 log10(B)``; in each frame, bands more than ``band_floor_db`` below that
   frame's loudest band are raised to that floor, and the frame's loudest band is subtracted, so
   that every frame is a spectral shape from ``-band_floor_db`` to 0 dB.
6. The average over the kept frames: the long-term average spectral shape of the speech.

Every step is relative to the clip's own level, so the histogram does not depend on the recording
gain: a clip 20 dB quieter, or peak-normalised, gives the same 60 numbers. The gain is not a
property of a voice; the network would otherwise learn each speaker's microphone level.
The robustness of the whole chain is measured by ``python -m bench.robustness``.
"""

from __future__ import annotations

from functools import lru_cache

import librosa
import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import as_strided

from pipeline.config import FeatureConfig
from pipeline.errors import InvalidAudioError

__all__ = [
    "FEATURE_VERSION",
    "band_centres",
    "band_edges",
    "filterbank",
    "histogram",
    "power_spectrogram",
    "remove_background",
    "require_speech",
    "voiced_frames",
]

# Bumped whenever histogram() changes meaning. Bundles record it, and a bundle made by other
# feature code is refused rather than served wrong; cached rows of other versions are not reused.
FEATURE_VERSION = 3
POWER_FLOOR = 1e-10  # added before taking logs, so an empty band is -100 dB, not -inf
NOISE_KEEP = 0.1  # background subtraction leaves at least this share of a band's power (-10 dB)


@lru_cache(maxsize=8)
def filterbank(cfg: FeatureConfig) -> np.ndarray:
    """The (n_bands, n_fft // 2 + 1) float32 matrix of triangular mel band weights."""
    fb = librosa.filters.mel(
        sr=cfg.sample_rate,
        n_fft=cfg.n_fft,
        n_mels=cfg.n_bands,
        fmin=cfg.fmin,
        fmax=cfg.fmax,
        htk=True,
        norm=None,
    )
    return fb.astype(np.float32)


@lru_cache(maxsize=8)
def _band_weights(cfg: FeatureConfig) -> np.ndarray:
    """``filterbank(cfg).T``, contiguous, for (frames, bins) @ (bins, bands), without the bins
    above ``fmax`` that no band uses (half of them for 8 kHz material)."""
    weights = filterbank(cfg).T
    used = int(np.flatnonzero(weights.any(axis=1))[-1]) + 1
    return np.ascontiguousarray(weights[:used])


@lru_cache(maxsize=8)
def _window(n_fft: int) -> np.ndarray:
    return librosa.filters.get_window("hann", n_fft, fftbins=True).astype(np.float32)


def power_spectrogram(y: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """The (frames, n_fft // 2 + 1) power spectrogram of float32 ``y``: ``|STFT|**2`` with
    librosa's framing (``center=True``, zero padding), frames as rows."""
    n_fft, hop = cfg.n_fft, cfg.hop_length
    padded = np.zeros(len(y) + n_fft, np.float32)  # np.pad costs as much as the FFT's setup
    padded[n_fft // 2 : n_fft // 2 + len(y)] = y
    n_frames = 1 + len(y) // hop  # what librosa.util.frame gives, without its checks
    step = padded.strides[0]
    frames = as_strided(padded, (n_frames, n_fft), (hop * step, step), writeable=False)
    spec = scipy.fft.rfft(frames * _window(n_fft), axis=1)
    return spec.real**2 + spec.imag**2


def band_edges(cfg: FeatureConfig) -> np.ndarray:
    """The n_bands + 2 mel-spaced corner frequencies (Hz): band i spans edges[i] to edges[i+2]."""
    return librosa.mel_frequencies(cfg.n_bands + 2, fmin=cfg.fmin, fmax=cfg.fmax, htk=True)


def band_centres(cfg: FeatureConfig) -> np.ndarray:
    """The n_bands centre frequencies (Hz), where each triangular band peaks."""
    return band_edges(cfg)[1:-1]


def require_speech(frame_db: np.ndarray, cfg: FeatureConfig) -> None:
    """Raise :class:`InvalidAudioError` when the span of frames within ``cfg.sound_db`` of the
    loudest is shorter than ``cfg.min_speech_s``: such a clip holds no speech, only a click or a
    burst. ``frame_db`` is the (T,) level of each frame in dB, before any background is removed,
    so that quiet consonants count."""
    sound = np.flatnonzero(frame_db >= frame_db.max() - cfg.sound_db)
    span_s = (sound[-1] - sound[0] + 1) * cfg.hop_length / cfg.sample_rate
    if span_s < cfg.min_speech_s:
        raise InvalidAudioError(
            f"clip holds no speech: it has {span_s:.2f} s of sound within {cfg.sound_db:g} dB "
            f"of its loudest frame; at least {cfg.min_speech_s:g} s is needed"
        )


def voiced_frames(frame_db: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Boolean mask of the frames to average: those within ``cfg.top_db`` of the loudest."""
    return frame_db >= frame_db.max() - cfg.top_db


def remove_background(bands: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """(frames, n_bands) band powers less each band's steady background, its
    ``cfg.noise_percentile`` over the frames, never below a tenth (-10 dB) of the power."""
    if cfg.noise_percentile == 0:
        return bands
    rank = int(cfg.noise_percentile / 100 * (len(bands) - 1))
    # Partitioning the contiguous rows of the transpose beats partitioning the strided columns.
    noise = np.partition(bands.T, rank, axis=1)[:, rank]
    cleaned = bands - noise
    return np.maximum(cleaned, NOISE_KEEP * bands, out=cleaned)


def histogram(y: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """The (n_bands,) float32 frequency histogram of waveform ``y`` (see the module docstring),
    in dB relative to each frame's loudest band: values from ``-cfg.band_floor_db`` to 0.

    ``y`` is 1-D float32 at ``cfg.sample_rate``, already validated by ``pipeline.audio``.
    """
    weights = _band_weights(cfg)
    with np.errstate(over="ignore", invalid="ignore"):  # checked just below
        bands = power_spectrogram(y, cfg)[:, : len(weights)] @ weights
        bands += POWER_FLOOR
        raw_db = 10 * np.log10(bands.sum(axis=1))
    if not np.isfinite(raw_db).all():
        # A float file may hold finite samples far beyond full scale; their power overflows.
        peak = float(np.max(np.abs(y)))
        raise InvalidAudioError(
            f"clip overflows the spectrum: its peak sample {peak:.3g} is far beyond "
            "full scale (1.0)"
        )
    require_speech(raw_db, cfg)
    bands = remove_background(bands, cfg)
    bands_db = 10 * np.log10(bands[voiced_frames(10 * np.log10(bands.sum(axis=1)), cfg)])
    loudest = bands_db.max(axis=1, keepdims=True)
    floored = np.maximum(bands_db, loudest - cfg.band_floor_db, out=bands_db)
    # The mean of (floored - loudest), with the loudest subtracted once after averaging.
    return (floored.mean(axis=0) - loudest.mean()).astype(np.float32)
