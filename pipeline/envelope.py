"""A clip's spectral envelope: line spectral frequencies, a second witness for a taught voice.

A voice taught with a dozen takes (``pipeline.openset``'s few-take voices) is judged against a
radius of its own in the open set's view, and that view, made for voices of hundreds of clips,
moves a take from another sitting about as far from the taught takes as a stranger lies. The
vocal tract's resonances move less: on ``bench.enrol``'s FSDD rows (each speaker taught takes
5-16 of "zero", judged on takes 17-49 and on the other five speakers' clips of the same word) the
nearest taught take in this view told fresh takes from strangers' clips far better than the
open set's view did (see ``docs/benchmarks.md``). So a clean clip of a few-take voice that the
open set refuses as "far", and that the network is sure of, is named after all when its envelope
lies within that voice's envelope radius (:class:`Envelopes`); so is a clip whose runner-up is
such a voice, as the open set's runner-up rule names one near it. Takes of many different words
spread far apart in it, and a voice taught so gets no envelope (``SPREAD_LIMIT``). The radii
are fitted where the few-take radii are (``pipeline.openset.fit_envelopes``).

For a mono waveform ``y`` at ``sample_rate``:

1. Pre-emphasis ``y[t] - 0.97 y[t-1]``; 25 ms Hamming frames every 10 ms; the frames within
   ``SPEECH_DB`` of the loudest are kept (a clip of nothing but silence has none).
2. Each frame's linear prediction polynomial ``A(z)`` of order ``ORDER`` from its
   autocorrelation (Levinson-Durbin).
3. Its line spectral frequencies: the angles in (0, pi) of the roots of
   ``A(z) +- z^-(p+1) A(1/z)``, which interleave on the unit circle.
4. Their means and standard deviations over the kept frames, ``2 * ORDER`` numbers, each divided
   by ``SCALE``: their spread over LibriSpeech-mini's 1 s pieces (721 of them, 16 kHz, read
   speech of ten speakers FSDD does not hold), so every number counts alike.

It costs a few milliseconds a clip, so a decision measures it only for a clip it would otherwise
refuse in favour of such a voice (``pipeline.predict``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.errors import ParameterError

__all__ = [
    "CAP",
    "ORDER",
    "SCALE",
    "SPEECH_DB",
    "SPREAD_LIMIT",
    "Envelopes",
    "envelope",
    "line_spectral_frequencies",
]

ORDER = 16
SPEECH_DB = 30.0  # frames within this many dB of the loudest are measured
PRE_EMPHASIS = 0.97
FRAME_S, HOP_S = 0.025, 0.010
MAX_FRAMES = 200  # a longer clip is measured on this many of its frames, evenly spread
GRID = 1024  # points round the unit circle where the frequencies are looked for ...
REFINE = 1  # ... and steps of false position that then place each one
# each number's standard deviation over LibriSpeech-mini's 1 s pieces at 16 kHz (means, then
# standard deviations, of the 16 frequencies in radians)
SCALE = np.array([
    0.04579, 0.06968, 0.08851, 0.08086, 0.08738, 0.07587, 0.07941, 0.07272,
    0.05875, 0.05526, 0.06214, 0.07285, 0.08375, 0.07394, 0.05822, 0.04287,
    0.02664, 0.04300, 0.03957, 0.04825, 0.04941, 0.04507, 0.04771, 0.04368,
    0.03901, 0.03888, 0.03996, 0.03745, 0.03630, 0.03196, 0.02053, 0.01822,
])  # fmt: skip
# A few-take voice's envelope radius: twice the median distance from each taught take to its
# nearest other one (``pipeline.openset.FEW_TAKES_MARGIN``), at most CAP * sqrt(2 * ORDER), about
# where other people's voices lie. Measured in-process on bench.enrol's FSDD rows (25 fresh takes
# and 145 strangers' clips a speaker besides the benchmark's own), the fresh takes of "zero"
# named and the strangers' clips taken: 0.35 0.907 and 33 of 870; 0.4 0.913 and 34; 0.45 0.920
# and 37 (without the envelope: 0.860 and 33).
CAP = 0.4
# Takes of one word lie close in it, takes of ten words do not: twice their median gap was
# 2.1-3.2 for each FSDD speaker's dozen takes of "zero", 4.0-5.5 for a dozen of mixed digits.
# Takes that spread more than SPREAD_LIMIT * sqrt(2 * ORDER) (3.6) get no envelope: with one,
# capped, voices taught mixed digits named 0.700 of their fresh takes instead of 0.587 but took
# 39 of 870 strangers' clips instead of 11.
SPREAD_LIMIT = 0.64


def _frames(y: np.ndarray, sample_rate: int) -> np.ndarray:
    """The pre-emphasised, windowed frames (F, n) within ``SPEECH_DB`` of the loudest, at most
    ``MAX_FRAMES`` of them."""
    n = max(round(FRAME_S * sample_rate), ORDER + 2)
    hop = max(round(HOP_S * sample_rate), 1)
    y = np.asarray(y, dtype=np.float64)
    y = np.append(y[:1], y[1:] - PRE_EMPHASIS * y[:-1])
    if len(y) < n:
        y = np.pad(y, (0, n - len(y)))
    frames = np.lib.stride_tricks.sliding_window_view(y, n)[::hop] * np.hamming(n)
    energy = np.einsum("ij,ij->i", frames, frames)
    if not np.isfinite(energy).all() or energy.max() <= 0:
        return frames[:0]
    speech = frames[energy >= energy.max() * 10 ** (-SPEECH_DB / 10)]
    if len(speech) > MAX_FRAMES:
        speech = speech[np.linspace(0, len(speech) - 1, MAX_FRAMES).round().astype(int)]
    return speech


def _autocorrelation(frames: np.ndarray) -> np.ndarray:
    """Each frame's autocorrelation at lags 0..ORDER (F, ORDER + 1)."""
    n_fft = 1 << math.ceil(math.log2(2 * frames.shape[1]))
    power = np.abs(np.fft.rfft(frames, n_fft, axis=1)) ** 2
    r = np.fft.irfft(power, n_fft, axis=1)[:, : ORDER + 1]
    r[:, 0] *= 1 + 1e-6  # white noise 60 dB under the frame: a band with nothing in it (8 kHz
    # audio at 16 kHz) or a pure tone leaves the prediction well defined
    return r


def _levinson(r: np.ndarray) -> np.ndarray:
    """Prediction polynomials ``[1, a1, ..., ap]`` (F, p + 1) from autocorrelations (F, p + 1),
    every frame at once."""
    frames, p = r.shape[0], r.shape[1] - 1
    a = np.zeros((frames, p + 1))
    a[:, 0] = 1.0
    error = r[:, 0].copy()
    for i in range(1, p + 1):
        k = -(a[:, :i] * r[:, i:0:-1]).sum(axis=1) / error
        a[:, 1 : i + 1] = a[:, 1 : i + 1] + k[:, None] * a[:, i - 1 :: -1][:, :i]
        error = error * (1 - k * k)
    return a


def line_spectral_frequencies(a: np.ndarray) -> np.ndarray:
    """The ``p`` line spectral frequencies in radians, ascending, of each prediction polynomial
    ``[1, a1, ..., ap]`` (``p`` even) in ``a`` (F, p + 1): (F, p).

    ``P(z) = A(z) + z^-(p+1) A(1/z)`` is symmetric and ``Q`` antisymmetric, so on the unit circle
    ``P(e^jw) e^(jw(p+1)/2)`` is real and ``Q``'s imaginary, and their zeros in (0, pi) are the
    frequencies: found where they change sign on a grid of ``GRID`` points round the circle (one
    FFT a polynomial), and placed by ``REFINE`` steps of false position. A frame
    where a polynomial changes sign other than ``p / 2`` times (two of its zeros within one step
    of the grid) has its polynomials' roots found instead, as eigenvalues."""
    frames, p = a.shape[0], a.shape[1] - 1
    padded = np.concatenate([a, np.zeros((frames, 1))], axis=1)
    flipped = padded[:, ::-1]
    w = np.arange(1, GRID // 2) * (2 * math.pi / GRID)  # strictly inside (0, pi)
    turned = np.fft.rfft(np.concatenate([padded + flipped, padded - flipped]), GRID, axis=1)
    turned = turned[:, 1 : GRID // 2] * np.exp(1j * w * (p + 1) / 2)
    values = np.concatenate([turned[:frames].real, turned[frames:].imag])  # (2F, steps)
    change = np.signbit(values[:, :-1]) != np.signbit(values[:, 1:])
    found = change.sum(axis=1) == p // 2
    zeros = np.zeros((2 * frames, p // 2))
    rows, cols = np.nonzero(change[found])
    polys = np.concatenate([padded + flipped, padded - flipped])[found][rows]
    kind = np.concatenate([np.zeros(frames), np.ones(frames)])[found][rows]
    bracket = (w[cols], values[found][rows, cols], w[cols + 1], values[found][rows, cols + 1])
    zeros[found] = _false_position(polys, kind, bracket).reshape(-1, p // 2)
    lsf = np.sort(np.concatenate([zeros[:frames], zeros[frames:]], axis=1), axis=1)
    missed = ~(found[:frames] & found[frames:])
    if missed.any():
        lsf[missed] = _by_eigenvalues(a[missed])
    return lsf


def _false_position(
    polys: np.ndarray, kind: np.ndarray, bracket: tuple[np.ndarray, ...], steps: int = REFINE
) -> np.ndarray:
    """The zero inside each bracket ``(x0, y0, x1, y1)`` of the turned polynomial ``polys[i]``
    (real part where ``kind`` is 0, for ``P``; imaginary where 1, for ``Q``), by ``steps`` of
    the Illinois false position, each keeping the zero bracketed."""
    x0, y0, x1, y1 = (np.array(b, dtype=np.float64) for b in bracket)
    n = np.arange(polys.shape[1])
    half = (polys.shape[1] - 1) / 2
    side = np.zeros(len(x0))  # which end moved last: -1 the left, +1 the right
    for _ in range(steps):
        x = x1 - y1 * (x1 - x0) / (y1 - y0)
        turned = (polys * np.exp(-1j * np.outer(x, n))).sum(axis=1) * np.exp(1j * x * half)
        y = np.where(kind == 0, turned.real, turned.imag)
        left = np.signbit(y) == np.signbit(y0)
        # Illinois: halve the far end's value when the same end moves twice, so it cannot stall
        y1 = np.where(left & (side == -1), y1 / 2, y1)
        y0 = np.where(~left & (side == 1), y0 / 2, y0)
        x0, y0 = np.where(left, x, x0), np.where(left, y, y0)
        x1, y1 = np.where(left, x1, x), np.where(left, y1, y)
        side = np.where(left, -1.0, 1.0)
    return x1 - y1 * (x1 - x0) / (y1 - y0)


def _by_eigenvalues(a: np.ndarray) -> np.ndarray:
    """:func:`line_spectral_frequencies` by the roots of ``P`` and ``Q``, as eigenvalues of their
    companion matrices; where rounding leaves fewer than ``p`` angles strictly inside (0, pi),
    the rest are pi."""
    frames, p = a.shape[0], a.shape[1] - 1
    padded = np.concatenate([a, np.zeros((frames, 1))], axis=1)
    flipped = padded[:, ::-1]
    angles = []
    for poly in (padded + flipped, padded - flipped):  # degree p + 1, leading coefficient 1
        companion = np.zeros((frames, p + 1, p + 1))
        companion[:, 0, :] = -poly[:, 1:] / poly[:, :1]
        companion[:, np.arange(1, p + 1), np.arange(p)] = 1.0
        angles.append(np.angle(np.linalg.eigvals(companion)))
    both = np.concatenate(angles, axis=1)
    inside = (both > 1e-6) & (both < math.pi - 1e-6)
    return np.sort(np.where(inside, both, math.pi), axis=1)[:, :p]


def envelope(y: np.ndarray, sample_rate: int) -> np.ndarray | None:
    """The clip's envelope row (``2 * ORDER``,), already divided by ``SCALE``; None when it has
    no frame to measure (silence)."""
    if sample_rate <= 0:
        raise ParameterError(f"sample_rate={sample_rate!r} must be positive")
    frames = _frames(y, sample_rate)
    if len(frames) == 0:
        return None
    lsf = line_spectral_frequencies(_levinson(_autocorrelation(frames)))
    return np.concatenate([lsf.mean(axis=0), lsf.std(axis=0)]) / SCALE


@dataclass(frozen=True)
class Envelopes:
    """Envelope rows of the voices taught with few takes, and each voice's radius.

    references: (R, 2 * ORDER) float32, grouped by speaker as the open set's rows are;
    offsets: (N + 1,) int64, speaker ``i``'s rows are ``references[offsets[i]:offsets[i + 1]]``
    (none for a voice judged by the open set alone);
    radii: (N,) each voice's radius (0 where it has no rows).
    """

    references: np.ndarray
    offsets: np.ndarray
    radii: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.radii)
        if self.references.ndim != 2 or self.references.shape[1] != 2 * ORDER:
            raise ParameterError(
                f"envelope rows must be (rows, {2 * ORDER}), not {self.references.shape}"
            )
        if self.offsets.shape != (n + 1,) or self.offsets[0] != 0:
            raise ParameterError(f"envelope offsets must be {n + 1} numbers from 0")
        if np.any(np.diff(self.offsets) < 0) or self.offsets[-1] != len(self.references):
            raise ParameterError("envelope offsets must rise to the number of rows")
        if not (np.all(np.isfinite(self.references)) and np.all(np.isfinite(self.radii))):
            raise ParameterError("envelope rows and radii must be finite")

    def rows(self, speaker: int) -> np.ndarray:
        """``speaker``'s envelope rows (k, 2 * ORDER); none for a voice judged by the open set
        alone."""
        return self.references[self.offsets[speaker] : self.offsets[speaker + 1]]

    def has(self, speaker: int) -> bool:
        return bool(self.offsets[speaker + 1] > self.offsets[speaker])

    def near(self, row: np.ndarray, speaker: int) -> bool:
        """Whether the envelope ``row`` lies within ``speaker``'s radius of its nearest row."""
        rows = self.rows(speaker)
        if len(rows) == 0:
            return False
        nearest = float(np.sqrt(((rows - row) ** 2).sum(axis=1)).min())
        return nearest <= float(self.radii[speaker])
