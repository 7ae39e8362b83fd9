"""The 60-bin frequency histogram: a pure function of a waveform and a :class:`FeatureConfig`.

For a mono float32 waveform ``y`` at ``cfg.sample_rate``:

1. Power spectrogram ``S = |STFT(y)|**2``: periodic Hann window of ``n_fft`` samples, hop
   ``hop_length``, frames centred on zero-padded edges, exactly as ``librosa.stft(y, center=True)``
   computes it (tested equal) but with the window cached and no per-call checks.
2. Band powers ``B = S @ M.T`` with ``M`` the ``n_bands`` triangular mel-spaced (HTK) filters
   between ``fmin`` and ``fmax``, unnormalised: ``librosa.filters.mel(htk=True, norm=None)``,
   computed here in numpy (tested equal), so that serving never imports librosa, whose numba
   and llvmlite would cost each server process about 110 MB and a second of start-up. The
   product skips the bins outside each run of ``BAND_GROUPS`` neighbouring bands, where ``M``
   is 0: the same sums, up to float32 rounding.
3. Steady background removed: each band's noise floor is its ``noise_percentile`` over all
   frames, subtracted from the band's power, never taking it below a tenth (-10 dB) of what it was.
4. Frame level ``e[t] = 10 log10(sum_b B[t, b])`` dB. Frames more than ``top_db`` below the
   loudest are left out of the average. A clip is refused only when the span of frames within
   ``sound_db`` of the loudest (quiet consonants included) is shorter than ``min_speech_s``.
5. Log compression ``10 log10(B)``; in each frame, bands more than ``band_floor_db`` below that
   frame's loudest band are raised to that floor, and the frame's loudest band is subtracted, so
   that every frame is a spectral shape from ``-band_floor_db`` to 0 dB.
6. The average over the kept frames: the long-term average spectral shape of the speech.
7. With ``band_spread`` percentiles (training sets 80 and 20), each band's percentiles over the
   same frames follow the means, ``n_bands`` numbers each: how far a band moves while the voice
   speaks. The network reads the means alone; the open set (``pipeline.openset``) measures both.
   Without them the row is the histogram alone, as bundles made before them have it.
8. With ``cepstra`` n (training sets 12), each kept frame's shape floored at
   ``cepstral_floor_db`` under its loudest band goes through a DCT over the bands; the Pearson
   correlation over the frames of each pair of cepstra 1..n follows, ``n (n - 1) / 2`` numbers
   (0 where a cepstrum does not move): how the formants move together as the voice speaks. The
   30 dB floor keeps a codec's deep spectral holes from deciding them. They are taken over the
   middle ``cepstral_frames`` kept frames at most (100: a second of them): over the 300 of a
   read sentence they are more exact than over a short reference clip's 30 and lie nearer every
   voice's, so that LibriSpeech-mini's sentences were let in 0.16 of the time against a 6-voice
   FSDD model, 0.10 with the limit; FSDD's spoken digits keep at most 61.

Every step is relative to the clip's own level, so the histogram does not depend on the recording
gain: a clip 20 dB quieter, or peak-normalised, gives the same 60 numbers. The gain is not a
property of a voice; the network would otherwise learn each speaker's microphone level.
The robustness of the whole chain is measured by ``python -m bench.robustness``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
import scipy.fft

from pipeline.config import FeatureConfig
from pipeline.errors import InvalidAudioError

__all__ = [
    "FEATURE_VERSION",
    "Stft",
    "band_centres",
    "band_edges",
    "band_percentiles",
    "band_powers",
    "cepstral_correlations",
    "filterbank",
    "histogram",
    "histogram_of_bands",
    "power_spectrogram",
    "remove_background",
    "require_speech",
    "squared_magnitude",
    "stft",
    "voiced_frames",
]

# Bumped whenever histogram() changes meaning. Bundles record it, and a bundle made by other
# feature code is refused rather than served wrong; cached rows of other versions are not reused.
FEATURE_VERSION = 3
POWER_FLOOR = 1e-10  # added before taking logs, so an empty band is -100 dB, not -inf
NOISE_KEEP = 0.1  # background subtraction leaves at least this share of a band's power (-10 dB)
BAND_GROUPS = 4  # B is computed in this many runs of neighbouring bands, over the bins each spans


@lru_cache(maxsize=8)
def filterbank(cfg: FeatureConfig) -> np.ndarray:
    """The (n_bands, n_fft // 2 + 1) float32 matrix of triangular mel band weights.

    Band ``i`` rises linearly from 0 at ``edges[i]`` to 1 at ``edges[i + 1]`` and falls back to 0
    at ``edges[i + 2]`` (:func:`band_edges`), evaluated at each FFT bin's frequency: librosa's
    ``filters.mel(htk=True, norm=None)``, step for step in float64, then float32.
    """
    bins_hz = np.fft.rfftfreq(cfg.n_fft, d=1.0 / cfg.sample_rate)
    edges = band_edges(cfg)
    widths = np.diff(edges)
    ramps = np.subtract.outer(edges, bins_hz)  # (n_bands + 2, bins): edge minus bin frequency
    weights = np.empty((cfg.n_bands, len(bins_hz)), np.float32)
    for i in range(cfg.n_bands):
        rising = -ramps[i] / widths[i]
        falling = ramps[i + 2] / widths[i + 1]
        weights[i] = np.maximum(0, np.minimum(rising, falling))
    return weights


@lru_cache(maxsize=8)
def _band_groups(cfg: FeatureConfig) -> tuple[tuple[slice, slice, np.ndarray], ...]:
    """``filterbank(cfg)`` in ``BAND_GROUPS`` runs of neighbouring bands: each run's bands, the
    bins any of them uses, and its (bins, bands) weights over those bins, contiguous, for
    (frames, bins) @ (bins, bands). A band spans a few bins, so a run's product skips most of
    the zeros that one product over every bin would multiply."""
    weights = filterbank(cfg)
    groups = []
    for bands in np.array_split(np.arange(cfg.n_bands), BAND_GROUPS):
        if not bands.size:
            continue
        used = np.flatnonzero(weights[bands].any(axis=0))
        bins = slice(int(used[0]), int(used[-1]) + 1) if used.size else slice(0, 0)
        run = slice(int(bands[0]), int(bands[-1]) + 1)
        groups.append((run, bins, np.ascontiguousarray(weights[run, bins].T)))
    return tuple(groups)


@lru_cache(maxsize=8)
def _window(n_fft: int) -> np.ndarray:
    """The periodic ("fftbins") Hann window of ``n_fft`` samples, float32, as librosa's and
    scipy's ``get_window("hann", n_fft, fftbins=True)``."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)


@dataclass(frozen=True, eq=False)  # arrays do not compare as one truth value
class Stft:
    """A waveform's short-time Fourier transform with librosa's framing (``center=True``, zero
    padding): ``values`` is (frames, n_fft // 2 + 1) complex64, frame ``t`` centred on sample
    ``t * hop_length``, Hann-windowed. Computed once, it serves every reader whose frames these
    are (the histogram, the recording-quality measures), and so does its :attr:`power`."""

    values: np.ndarray
    n_fft: int
    hop_length: int

    def has_frames(self, n_fft: int, hop_length: int) -> bool:
        return (self.n_fft, self.hop_length) == (n_fft, hop_length)

    @cached_property
    def power(self) -> np.ndarray:
        """The (frames, n_fft // 2 + 1) float32 power spectrum ``|values|**2``, squared once
        for every reader, and whole: squaring the bins or frames each reader wants costs more
        (their slices are strided and go through numpy's buffers)."""
        return squared_magnitude(self.values)


def stft(y: np.ndarray, *, n_fft: int, hop_length: int) -> Stft:
    """The :class:`Stft` of 1-D float32 ``y`` with frames of ``n_fft`` samples every
    ``hop_length``: ``librosa.stft(y, n_fft=n_fft, hop_length=hop_length, center=True)``,
    frames as rows, with the window cached and no per-call checks."""
    padded = np.zeros(len(y) + n_fft, np.float32)  # np.pad costs as much as the FFT's setup
    padded[n_fft // 2 : n_fft // 2 + len(y)] = y
    n_frames = 1 + len(y) // hop_length  # what librosa.util.frame gives, without its checks
    step = padded.strides[0]
    # The overlapping frames as a strided view: np.ndarray skips as_strided's per-call checks.
    frames = np.ndarray((n_frames, n_fft), np.float32, padded, 0, (hop_length * step, step))
    frames = np.multiply(frames, _window(n_fft))
    values = scipy.fft.rfft(frames, axis=1, overwrite_x=True, workers=1)
    return Stft(values, n_fft, hop_length)


def squared_magnitude(values: np.ndarray) -> np.ndarray:
    """``|values|**2`` of complex ``values``, float32, with one temporary rather than two. Values
    of samples far beyond full scale overflow to infinity, quietly: :func:`band_powers` and the
    quality measures refuse them with their own words."""
    with np.errstate(over="ignore"):
        power = np.square(values.real)
        power += np.square(values.imag)
    return power


def _stft_of(y: np.ndarray, cfg: FeatureConfig, given: Stft | None) -> Stft:
    """``given`` when it is ``y``'s STFT with ``cfg``'s frames, else computed."""
    if given is not None and given.has_frames(cfg.n_fft, cfg.hop_length):
        return given
    return stft(y, n_fft=cfg.n_fft, hop_length=cfg.hop_length)


def power_spectrogram(y: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """The (frames, n_fft // 2 + 1) power spectrogram of float32 ``y``: ``|STFT|**2`` with
    librosa's framing (``center=True``, zero padding), frames as rows."""
    return stft(y, n_fft=cfg.n_fft, hop_length=cfg.hop_length).power


def band_edges(cfg: FeatureConfig) -> np.ndarray:
    """The n_bands + 2 mel-spaced corner frequencies (Hz): band i spans edges[i] to edges[i+2].

    Evenly spaced on the HTK mel scale, ``mel = 2595 log10(1 + hz / 700)``, as
    ``librosa.mel_frequencies(htk=True)``.
    """
    mels = np.linspace(_hz_to_mel(cfg.fmin), _hz_to_mel(cfg.fmax), cfg.n_bands + 2)
    return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)


def _hz_to_mel(hz: float) -> float:
    return 2595.0 * float(np.log10(1.0 + hz / 700.0))


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
    # Each band's frames as a contiguous row, sorted in place: numpy sorts short rows faster
    # than it partitions them, and the strided columns slower than either.
    by_band = np.ascontiguousarray(bands.T)
    by_band.sort(axis=1)
    cleaned = bands - by_band[:, rank]
    return np.maximum(cleaned, NOISE_KEEP * bands, out=cleaned)


def band_powers(
    y: np.ndarray, cfg: FeatureConfig, *, spectrum: Stft | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Steps 1, 2 and 4 of the module docstring for waveform ``y``: the (frames, n_bands)
    float32 band powers (floored at ``POWER_FLOOR``) and each frame's (frames,) level in dB.
    ``spectrum`` is ``y``'s :func:`stft` when at hand (used when its frames are ``cfg``'s).

    Raises :class:`InvalidAudioError` when the power overflows (samples far beyond full scale).
    """
    power = _stft_of(y, cfg, spectrum).power
    bands = np.empty((len(power), cfg.n_bands), np.float32)
    with np.errstate(over="ignore", invalid="ignore"):  # checked just below
        for run, bins, weights in _band_groups(cfg):
            np.matmul(power[:, bins], weights, out=bands[:, run])
        bands += POWER_FLOOR
        raw_db = 10 * np.log10(bands.sum(axis=1))
    if not np.isfinite(raw_db).all():
        # A float file may hold finite samples far beyond full scale; their power overflows.
        peak = float(np.max(np.abs(y)))
        raise InvalidAudioError(
            f"clip overflows the spectrum: its peak sample {peak:.3g} is far beyond "
            "full scale (1.0)"
        )
    return bands, raw_db


def histogram_of_bands(bands: np.ndarray, raw_db: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Steps 3, 5, 6 and 7 of the module docstring: the (cfg.row_width,) row of the frames whose
    band powers and levels :func:`band_powers` gave (any run of them, such as one window of a
    longer recording). Raises :class:`InvalidAudioError` when they hold no speech."""
    require_speech(raw_db, cfg)
    bands = remove_background(bands, cfg)
    frame_db = 10 * np.log10(np.add.reduce(bands, axis=1))
    bands_db = 10 * np.log10(bands[voiced_frames(frame_db, cfg)])
    loudest = np.maximum.reduce(bands_db, axis=1, keepdims=True)
    floored = np.maximum(bands_db, loudest - cfg.band_floor_db, out=bands_db)
    # The mean of (floored - loudest), with the loudest subtracted once after averaging; the
    # ufuncs' own reductions are the sums np.mean takes, without its Python layer.
    frames = len(floored)
    means = np.add.reduce(floored, axis=0) / frames - np.add.reduce(loudest, axis=None) / frames
    if not (cfg.band_spread or cfg.cepstra):
        return means.astype(np.float32)
    floored -= loudest
    parts = [means]
    if cfg.band_spread:
        parts.append(band_percentiles(floored, cfg.band_spread).ravel())  # (len * n_bands,)
    if cfg.cepstra:
        middle = max(0, (frames - cfg.cepstral_frames) // 2)
        kept = floored[middle : middle + cfg.cepstral_frames]
        parts.append(cepstral_correlations(kept, cfg.cepstra, cfg.cepstral_floor_db))
    return np.concatenate(parts).astype(np.float32)


def cepstral_correlations(shapes: np.ndarray, cepstra: int, floor_db: float) -> np.ndarray:
    """Step 8 of the module docstring: the ``cepstra * (cepstra - 1) / 2`` Pearson correlations,
    pair by pair in row-major upper-triangle order, of cepstra 1..``cepstra`` of ``shapes``
    (frames, n_bands), each frame's dB levels relative to its loudest band, after raising them
    to ``-floor_db``; 0 for a pair whose cepstrum does not move (or a single frame)."""
    basis, upper = _cepstral_basis(shapes.shape[1], cepstra)
    ceps = np.maximum(shapes, -floor_db) @ basis  # the DCT's cepstra 1..n, as one product
    # The covariances from the raw products: a few small-array steps instead of centring the
    # frames (each numpy call costs microseconds; this is about 25 us a clip, not 140).
    sums = np.add.reduce(ceps, axis=0)
    cov = ceps.T @ ceps
    cov -= np.multiply.outer(sums, sums / len(ceps))
    spread = np.sqrt(np.maximum(np.diagonal(cov), 0.0))
    still = spread <= 1e-6 * max(float(spread.max(initial=0.0)), 1.0)
    spread[still] = np.inf  # a cepstrum that does not move correlates with nothing: 0
    cov /= np.multiply.outer(spread, spread)
    return cov[upper]


@lru_cache(maxsize=8)
def _cepstral_basis(n_bands: int, cepstra: int) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """The orthonormal DCT-II's columns 1..``cepstra`` for ``n_bands`` (n_bands, cepstra), as
    ``scipy.fft.dct(norm="ortho")`` computes them (a quarter of its time on a clip's frames),
    and the upper triangle's indices of a (cepstra, cepstra) matrix."""
    basis = scipy.fft.dct(np.eye(n_bands), type=2, norm="ortho", axis=1)[:, 1 : cepstra + 1]
    basis.flags.writeable = False
    return basis, np.triu_indices(cepstra, 1)


def band_percentiles(frames: np.ndarray, percentiles: tuple[float, ...]) -> np.ndarray:
    """Each band's ``percentiles`` over ``frames`` (frames, n_bands), interpolated linearly as
    ``np.percentile`` does by default (equal to rounding), as (len(percentiles), n_bands): each
    band's frames sorted as one contiguous row, a quarter of ``np.percentile``'s time."""
    by_band = np.ascontiguousarray(frames.T)
    by_band.sort(axis=1)
    position = np.asarray(percentiles) / 100 * (len(frames) - 1)
    below = np.floor(position).astype(np.intp)
    above = np.minimum(below + 1, len(frames) - 1)
    low, high = by_band[:, below].T, by_band[:, above].T
    return low + (high - low) * (position - below)[:, None]


def histogram(y: np.ndarray, cfg: FeatureConfig, *, spectrum: Stft | None = None) -> np.ndarray:
    """The (cfg.row_width,) float32 feature row of waveform ``y`` (see the module docstring): its
    frequency histogram, in dB relative to each frame's loudest band (values from
    ``-cfg.band_floor_db`` to 0), then each band's ``cfg.band_spread`` percentiles, if any.

    ``y`` is 1-D float32 at ``cfg.sample_rate``, already validated by ``pipeline.audio``;
    ``spectrum`` is its :func:`stft` when at hand (used when its frames are ``cfg``'s).
    """
    return histogram_of_bands(*band_powers(y, cfg, spectrum=spectrum), cfg)
