"""Recording-quality measures of one clip: pure functions of a waveform and its sample rate.

For a mono float32 waveform ``y`` at ``sample_rate`` (decoded from a recording made at
``source_rate``), on Hann-windowed frames of ``FRAME_S`` every ``HOP_S`` that lie wholly inside
the clip (a clip shorter than that is measured on its zero-padded frames):

- ``speech_s``: seconds from the first to the last frame within ``SPEECH_DB`` of the loudest,
  the speech left once leading and trailing silence are trimmed;
- ``level_dbfs``: the RMS level of those speech frames, dB relative to full scale (1.0);
- ``clipped_fraction``: the share of samples within ``CLIP_MARGIN`` of the clip's own peak
  magnitude beside another that does: a clipped waveform sits flat on its peak,
  at full scale or wherever a later gain has put it;
- ``snr_db``: speech against background. Each frequency bin's background is its
  ``NOISE_PERCENTILE`` over the frames (speech moves between bins, a steady noise does not),
  taken on every ``BACKGROUND_STEP``-th bin and held over the bins up to the next, and the SNR
  is the speech frames' power above that background over the background's power;
- ``bandwidth_hz``: the highest frequency where the speech frames' spectrum is within
  ``BAND_DB`` of its peak and ``BAND_SNR_DB`` above its ``NOISE_PERCENTILE`` over the frames
  (that same held percentile), within the band the recording really has;
- ``available_hz``: that band's top, ``min(source_rate, sample_rate) / 2``: an 8 kHz recording
  holds nothing above 4 kHz, so its bandwidth is judged against 4 kHz, not against 8;
- ``low_band_db``: the speech power below 250 Hz against that from 250 Hz to 1 kHz: a telephone
  line or a small loudspeaker cuts a voice's fundamental, and that shows even in a recording whose
  top band is narrow already;
- ``background_low_band_db``: the same ratio of the background (each bin's held percentile): a
  channel that cuts the low band cuts the room's own low rumble with the voice, while a voice
  with little below 250 Hz leaves the room's as it was (0 for a background of digital silence,
  which shows nothing);
- ``fall_db``: the steepest fall of the speech's energy within ``FALL_S``, in any octave band from
  250 Hz to the top of the recording's band (at most ``FALL_TOP_HZ``), from a frame within
  ``FALL_WITHIN_DB`` of the band's loudest and ``FALL_ABOVE_DB`` above the band's background, to
  the next frame but one (or to the background, when that is louder): a voice stops in a few
  milliseconds, a room's echo dies away no faster than its reverberation time allows (60 dB in
  RT60), so every fall of a reverberant recording is slow; 0 when no frame stands that far above
  its band's background, or when none falls;
- ``companded_levels``: how many distinct values the recording's own samples take, when they
  take at most ``CODE_LEVELS`` spread unevenly, their smallest step so fine that the peak spans
  ``COMPANDED_SPAN`` times more such steps than there are levels; 0 otherwise. A telephone line's
  G.711 code (mu-law or A-law) sends 8 bits a sample on a logarithmic scale: fine steps near
  silence, coarse ones near the peak. A linear 8-bit recording has as few levels, all one step
  apart (its peak spans at most about as many steps as it has levels), and a 16-bit one many more.

Everything is relative to the clip's own peak and background, so a gain changes only
``level_dbfs``. The frames are every ``FRAME_STEP``-th frame of a ``pipeline.features.stft``
with frames of ``FRAME_S`` every ``STFT_HOP_S``: those of the default features, so that serving,
which measures every clip, computes one short-time spectrum for both (:func:`measure`'s
``spectrum``); measuring fewer frames than the features, and the percentile on fewer bins, keeps
the cost of the per-bin statistics low. Sums and maxima are the ufuncs' own reductions
(``np.add.reduce``): the values of ``ndarray.sum`` and ``max`` without their Python layer, whose
cost is not small beside that of a reduction over a few hundred bins.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import scipy.fft

from pipeline.errors import InvalidAudioError, ParameterError
from pipeline.features import Stft, stft

__all__ = [
    "FRAME_S",
    "FRAME_STEP",
    "HOP_S",
    "STFT_HOP_S",
    "Quality",
    "bandwidth",
    "clipped_fraction",
    "companded_levels",
    "fall_db",
    "low_band_db",
    "measure",
]

FRAME_S = 0.032  # analysis frame, seconds (512 samples at 16 kHz, as the features' frame)
STFT_HOP_S = 0.010  # between the frames of the STFT they come from (the features' hop) ...
FRAME_STEP = 3  # ... of which every third is measured,
HOP_S = FRAME_STEP * STFT_HOP_S  # so that measured frames are about one frame's length apart
SPEECH_DB = 30.0  # frames within this many dB of the loudest are speech
NOISE_PERCENTILE = 10  # each bin's background: its power at this percentile over the frames,
# over this share of its mean: a steady noise's power in one bin is exponentially distributed
NOISE_BIAS = -math.log(1 - NOISE_PERCENTILE / 100)
BACKGROUND_STEP = 2  # the percentile is taken on every second bin, and held over the next
CLIP_MARGIN = 0.001  # samples within 0.1 % of the peak magnitude sit on it
SMOOTH_BINS = 5  # spectra are smoothed over this many bins (of 1 / FRAME_S Hz) before edges
# are found
BAND_DB = 50.0  # a bin carries speech within this many dB of the speech spectrum's peak ...
BAND_SNR_DB = 6.0  # ... and this many dB above its own background
LOW_BAND_HZ = (60.0, 250.0)  # a voice's fundamental and first harmonics: what phone lines cut
MID_BAND_HZ = (250.0, 1000.0)  # what every channel keeps
FALL_FRAMES = 2  # a fall is measured from one measured frame to the next but one ...
FALL_S = FALL_FRAMES * HOP_S  # ... 60 ms later
FALL_EDGES_HZ = (250.0, 500.0, 1000.0, 2000.0)  # the octave bands whose falls are measured ...
FALL_TOP_HZ = 4000.0  # ... up to this, or the top of the recording's band when lower
FALL_WITHIN_DB = 20.0  # a fall starts from a frame within this many dB of its band's loudest ...
FALL_ABOVE_DB = 20.0  # ... and this many dB above the band's background
CODE_LEVELS = 256  # an 8-bit code's values: G.711's mu-law and A-law, as telephone lines send
COMPANDED_SPAN = 3.0  # the peak spans this many times more smallest steps than there are levels
CODE_WINDOW = 512  # samples around the peak that a code of CODE_LEVELS levels cannot all tell apart
POWER_FLOOR = 1e-12  # added before logs and divisions
SPEECH_SHARE = 10 ** (-SPEECH_DB / 10)  # SPEECH_DB as a power ratio
BAND_PEAK_RATIO = 10 ** (-BAND_DB / 10)  # BAND_DB as a power ratio
BAND_SNR_RATIO = 10 ** (BAND_SNR_DB / 10)  # BAND_SNR_DB as a power ratio
_FALL_WITHIN = 10 ** (-FALL_WITHIN_DB / 10)  # FALL_WITHIN_DB as a power ratio
_FALL_ABOVE = 10 ** (FALL_ABOVE_DB / 10)  # FALL_ABOVE_DB as a power ratio
_SMOOTHING = np.full(SMOOTH_BINS, 1 / SMOOTH_BINS)  # the kernel of a moving average


@dataclass(frozen=True)
class Quality:
    """What one clip's signal says about its recording (see the module's text for each)."""

    speech_s: float
    level_dbfs: float
    clipped_fraction: float
    snr_db: float
    bandwidth_hz: float
    available_hz: float
    low_band_db: float
    background_low_band_db: float
    fall_db: float
    companded_levels: int = 0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _unit_power(n: int) -> float:
    """The one-sided spectrum's sum of a Hann-windowed frame of ``n`` samples of RMS 1
    (Parseval): the periodic Hann window's squares sum to ``3 n / 8``."""
    return 3 * n / 8 * n / 2


def _frame_power(
    y: np.ndarray, sample_rate: int, spectrum: Stft | None
) -> tuple[np.ndarray, int, int]:
    """The (frames, n_fft // 2 + 1) power spectrum of the measured frames of ``y`` (see the
    module's text), their length and their spacing in samples; ``spectrum`` is ``y``'s
    ``pipeline.features.stft``, read when its frames are the measures' own."""
    n_fft, hop = _frame_sizes(sample_rate)
    if spectrum is None or not spectrum.has_frames(n_fft, hop):
        spectrum = stft(y, n_fft=n_fft, hop_length=hop)
    first = -(-(n_fft // 2) // hop)  # the first frame centred far enough in to lie inside
    last = (len(y) - n_fft // 2) // hop  # and the last
    inside = slice(first, last + 1) if last >= first else slice(None)
    return spectrum.power[inside][::FRAME_STEP], n_fft, FRAME_STEP * hop


@lru_cache(maxsize=16)
def _frame_sizes(sample_rate: int) -> tuple[int, int]:
    """The measured frames' length and the hop of the STFT they come from, in samples."""
    n_fft = scipy.fft.next_fast_len(round(FRAME_S * sample_rate), real=True)
    return n_fft, round(STFT_HOP_S * sample_rate)


def _floor(power: np.ndarray) -> np.ndarray:
    """The (bins,) power at ``NOISE_PERCENTILE`` over the frames of each bin of the
    (frames, bins) ``power``, taken on every ``BACKGROUND_STEP``-th bin and held over the bins
    up to the next: neighbouring bins of a Hann-windowed frame overlap, and halving the bins
    halves the cost of the percentile. Each row is sorted whole: the same value at ``rank`` as
    a partition, at less cost for rows of a few dozen frames."""
    sampled = np.ascontiguousarray(power[:, ::BACKGROUND_STEP].T)  # each bin's frames in a row
    rank = int(NOISE_PERCENTILE / 100 * (len(power) - 1))
    sampled.sort(axis=1)
    return sampled[_sampled_row(power.shape[1]), rank]


@lru_cache(maxsize=16)
def _sampled_row(n_bins: int) -> np.ndarray:
    """The (n_bins,) row of :func:`_floor`'s sampled bins that holds each bin's."""
    return np.arange(n_bins) // BACKGROUND_STEP


def _db(power: float) -> float:
    return 10 * math.log10(power + POWER_FLOOR)


def clipped_fraction(
    y: np.ndarray, *, magnitude: np.ndarray | None = None, peak_at: int | None = None
) -> float:
    """The share of ``y``'s samples that sit on its peak magnitude beside another that does;
    ``magnitude`` is ``np.abs(y)`` and ``peak_at`` the index of its peak, when at hand."""
    magnitude = np.abs(y) if magnitude is None else magnitude
    peak = magnitude[peak_at] if peak_at is not None else np.maximum.reduce(magnitude)
    on_peak = magnitude >= (1 - CLIP_MARGIN) * peak
    if np.count_nonzero(on_peak) < 2:  # most recordings: no pair can sit on the peak
        return 0.0
    pairs = on_peak[1:] & on_peak[:-1]  # a sample and the next both on the peak
    flat = np.zeros(len(y), dtype=bool)
    flat[1:] |= pairs
    flat[:-1] |= pairs
    return float(np.count_nonzero(flat) / len(y))


def companded_levels(
    y: np.ndarray, *, magnitude: np.ndarray | None = None, peak_at: int | None = None
) -> int:
    """How many distinct values ``y``'s samples take when they are few and spread as a
    companding code spreads them (see the module's text), else 0; ``magnitude`` is ``np.abs(y)``
    and ``peak_at`` the index of its peak, when at hand. Most recordings are told apart by the
    ``CODE_WINDOW`` samples around their peak alone, which take more than ``CODE_LEVELS``
    values; the rest are sorted whole."""
    magnitude = np.abs(y) if magnitude is None else magnitude
    at = int(np.argmax(magnitude)) if peak_at is None else peak_at
    around = np.sort(y[max(at - CODE_WINDOW // 2, 0) : at + CODE_WINDOW // 2])
    if _distinct(around) > CODE_LEVELS:
        return 0
    values = np.sort(y)
    with np.errstate(over="ignore"):  # steps across a clip near the float maximum: inf, still > 0
        steps = np.diff(values)
    steps = steps[steps > 0]
    levels = steps.size + 1
    if levels > CODE_LEVELS or levels < 2:
        return 0
    span = float(magnitude[at]) / float(np.minimum.reduce(steps))
    return levels if span >= COMPANDED_SPAN * levels else 0


def _distinct(ordered: np.ndarray) -> int:
    """How many distinct values the sorted 1-D ``ordered`` holds."""
    return int(np.count_nonzero(ordered[1:] != ordered[:-1])) + 1 if ordered.size else 0


def bandwidth(speech: np.ndarray, background: np.ndarray, bin_hz: float) -> float:
    """Hz up to which the (bins,) mean ``speech`` power spectrum carries speech: the top of the
    highest bin within ``BAND_DB`` of the spectrum's peak and ``BAND_SNR_DB`` above the
    (bins,) ``background``, both smoothed; 0 when none is."""
    level, floor = _smoothed(speech), _smoothed(background)
    carries = level >= np.maximum(
        np.maximum.reduce(level) * BAND_PEAK_RATIO, floor * BAND_SNR_RATIO
    )
    found = np.flatnonzero(carries)
    return float((found[-1] + 0.5) * bin_hz) if found.size else 0.0


def _smoothed(values: np.ndarray) -> np.ndarray:
    """``values`` (bins,) averaged over ``SMOOTH_BINS`` neighbouring bins (the kernel is
    symmetric: correlating is convolving, with less overhead)."""
    return np.correlate(values, _SMOOTHING, mode="same")


def low_band_db(speech: np.ndarray, bin_hz: float) -> float:
    """dB of the (bins,) ``speech`` power in ``LOW_BAND_HZ`` against that in ``MID_BAND_HZ``."""
    low, mid = _bins_within(len(speech), bin_hz)
    return _db(float(np.add.reduce(speech[low]))) - _db(float(np.add.reduce(speech[mid])))


@lru_cache(maxsize=16)
def _bins_within(n_bins: int, bin_hz: float) -> tuple[slice, slice]:
    """The bins of ``n_bins`` spaced ``bin_hz`` apart from 0 Hz whose frequencies lie in
    ``LOW_BAND_HZ`` and in ``MID_BAND_HZ`` (each from its low edge up to, not including, its
    high edge)."""
    freqs = np.arange(n_bins) * bin_hz
    low, mid = (
        slice(*map(int, np.searchsorted(freqs, band))) for band in (LOW_BAND_HZ, MID_BAND_HZ)
    )
    return low, mid


def fall_db(power: np.ndarray, background: np.ndarray, bin_hz: float, top_hz: float) -> float:
    """dB of the steepest fall of the (frames, bins) ``power`` of frames ``HOP_S`` apart over
    ``FALL_FRAMES`` frames, in any octave band of ``FALL_EDGES_HZ`` below ``top_hz``, against
    the (bins,) ``background`` (see the module's text); 0 when no frame can start one, or when
    the energy rises after every frame that can."""
    span, octaves = _octaves(power.shape[1], bin_hz, top_hz, power.dtype)
    if len(power) <= FALL_FRAMES or not octaves.shape[1]:
        return 0.0
    # (frames, bands) and (bands,), over the bins the bands span only
    bands, floor = power[:, span] @ octaves, background[span] @ octaves
    start = bands[:-FALL_FRAMES]
    loudest = np.maximum.reduce(bands, axis=0)
    can_start = start >= np.maximum(loudest * _FALL_WITHIN, floor * _FALL_ABOVE)
    steepest = _steepest(start, bands[FALL_FRAMES:], floor, can_start)
    if not math.isfinite(steepest):  # a float32 ratio overflowed (samples far beyond full scale)
        wide = np.float64
        steepest = _steepest(start.astype(wide), bands[FALL_FRAMES:].astype(wide),
                             floor.astype(wide), can_start)  # fmt: skip
    return 10 * math.log10(steepest) if steepest > 1 else 0.0  # every start rose: no fall


def _steepest(
    start: np.ndarray, after: np.ndarray, floor: np.ndarray, can_start: np.ndarray
) -> float:
    """The largest ratio of the (frames, bands) ``start`` to ``after`` (or to the (bands,)
    ``floor``, when that is louder) where ``can_start``; 0 where none can."""
    falls = np.divide(start, np.maximum(after, floor + POWER_FLOOR))
    np.multiply(falls, can_start, out=falls)  # the falls that start nowhere read 0
    return float(np.maximum.reduce(falls, axis=None))


@lru_cache(maxsize=16)
def _octaves(
    n_bins: int, bin_hz: float, top_hz: float, dtype: np.dtype
) -> tuple[slice, np.ndarray]:
    """The bins of ``n_bins`` bins of ``bin_hz`` that the octave bands of :func:`fall_db` span
    (``FALL_EDGES_HZ`` below ``top_hz`` and ``FALL_TOP_HZ``), and (bins spanned, bands) 0/1:
    which of them each band sums (one matrix product sums them all; the bins outside the span
    would add only zeros, so leaving them out halves the product at 16 kHz)."""
    top = min(top_hz, FALL_TOP_HZ)
    hz = np.array([edge for edge in FALL_EDGES_HZ if edge < top] + [top])
    edges = np.minimum(np.round(hz / bin_hz).astype(int), n_bins)
    octaves = np.zeros((n_bins, len(edges) - 1), dtype=dtype)
    for band, (low, high) in enumerate(itertools.pairwise(edges)):
        octaves[low:high, band] = 1
    span = slice(int(edges[0]), max(int(edges[-1]), int(edges[0])))
    return span, octaves[span]


def _rounded(db: float) -> float:
    """``db`` to 0.01 dB, a difference of two nearly equal levels that rounds to zero reading 0,
    not -0 (``-0.0`` in an answer's JSON)."""
    return round(db, 2) + 0.0


def measure(
    y: np.ndarray,
    sample_rate: int,
    *,
    source_rate: int | None = None,
    clipped: float | None = None,
    companded: int | None = None,
    spectrum: Stft | None = None,
) -> Quality:
    """The :class:`Quality` of 1-D float ``y`` at ``sample_rate`` Hz, recorded at
    ``source_rate`` Hz (``sample_rate`` when not given); ``clipped`` is the clipped fraction
    measured on the recording before it was resampled (measured on ``y`` when not given), and
    ``companded`` its companded levels, likewise;
    ``spectrum`` is ``y``'s ``pipeline.features.stft`` when at hand, read when its frames are
    ``FRAME_S`` every ``STFT_HOP_S`` (computed here otherwise: the values are the same)."""
    if sample_rate < 1 or (source_rate is not None and source_rate < 1):
        raise ParameterError(
            f"sample_rate={sample_rate!r} and source_rate={source_rate!r} must be positive"
        )
    if y.ndim != 1 or len(y) == 0:
        raise ParameterError(f"waveform must be 1-D and not empty, not of shape {y.shape}")
    power, n_fft, hop = _frame_power(y, sample_rate, spectrum)
    frame_power = np.add.reduce(power, axis=1)
    # Within SPEECH_DB of the loudest frame, compared as powers rather than as decibels.
    speech = np.flatnonzero(
        frame_power >= (np.maximum.reduce(frame_power) + POWER_FLOOR) * SPEECH_SHARE - POWER_FLOOR
    )
    first, last = int(speech[0]), int(speech[-1])
    floor = _floor(power)
    background = floor / NOISE_BIAS
    spectrum_mean = np.add.reduce(power[speech], axis=0) / len(speech)
    above = np.maximum(spectrum_mean - background, 0.0)
    available_hz = min(source_rate or sample_rate, sample_rate) / 2
    bin_hz = sample_rate / n_fft
    top = int(available_hz / bin_hz) + 1  # bins the recording really has
    quality = Quality(
        speech_s=round(float((last - first) * hop + n_fft) / sample_rate, 4),
        level_dbfs=_rounded(_db(float(np.add.reduce(spectrum_mean)) / _unit_power(n_fft))),
        clipped_fraction=round(clipped_fraction(y) if clipped is None else clipped, 5),
        snr_db=_rounded(_db(float(np.add.reduce(above))) - _db(float(np.add.reduce(background)))),
        bandwidth_hz=round(
            min(bandwidth(spectrum_mean[:top], floor[:top], bin_hz), available_hz), 1
        ),
        available_hz=available_hz,
        low_band_db=_rounded(low_band_db(spectrum_mean, bin_hz)),
        background_low_band_db=_rounded(low_band_db(floor, bin_hz)),
        fall_db=_rounded(fall_db(power, background, bin_hz, available_hz)),
        companded_levels=companded_levels(y) if companded is None else companded,
    )
    return _finite(y, quality)


def _finite(y: np.ndarray, quality: Quality) -> Quality:
    """``quality``, refused when a measure of it is not finite: a float clip's finite samples
    far beyond full scale overflow its float32 power spectrum, as the features refuse them
    (``pipeline.features.band_powers``), and NaN is no number an answer's JSON may hold."""
    if all(map(math.isfinite, (quality.level_dbfs, quality.snr_db, quality.low_band_db,
                               quality.background_low_band_db, quality.fall_db))):  # fmt: skip
        return quality
    raise InvalidAudioError(
        f"clip overflows the spectrum: its peak sample {float(np.max(np.abs(y))):.3g} is far "
        "beyond full scale (1.0)"
    )
