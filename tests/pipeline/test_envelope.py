"""Tests of pipeline.envelope: line spectral frequencies, the envelope row, and its radii."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import scipy.signal

from pipeline.envelope import (
    CAP,
    ORDER,
    SCALE,
    SPREAD_LIMIT,
    Envelopes,
    _levinson,
    envelope,
    line_spectral_frequencies,
)
from pipeline.errors import ParameterError
from pipeline.openset import fit_envelopes

SR = 16_000


def _stable_polynomial(rng: np.random.Generator, p: int) -> np.ndarray:
    """``[1, a1, ..., ap]`` with every root inside the unit circle, as linear prediction gives."""
    radii = rng.uniform(0.5, 0.95, p // 2)
    angles = rng.uniform(0.1, math.pi - 0.1, p // 2)
    roots = np.concatenate([radii * np.exp(1j * angles), radii * np.exp(-1j * angles)])
    return np.real(np.poly(roots))


def _lsf_by_roots(a: np.ndarray) -> np.ndarray:
    """The textbook way, one polynomial at a time: the angles of the roots of P and Q."""
    padded = np.concatenate([a, [0.0]])
    flipped = padded[::-1]
    angles = np.angle(np.concatenate([np.roots(padded + flipped), np.roots(padded - flipped)]))
    return np.sort(angles[(angles > 1e-6) & (angles < math.pi - 1e-6)])


def _voice(resonances_hz: list[float], seconds: float = 0.5, seed: int = 0) -> np.ndarray:
    """A buzz at 120 Hz through resonators at ``resonances_hz``: a vowel-like sound."""
    t = np.arange(int(seconds * SR))
    y = (t % (SR // 120) == 0).astype(np.float64) + 0.01 * np.random.default_rng(seed).normal(
        size=len(t)
    )
    for f in resonances_hz:
        r, w = 0.97, 2 * math.pi * f / SR
        y = scipy.signal.lfilter([1.0], [1.0, -2 * r * math.cos(w), r * r], y)
    return (y / np.abs(y).max()).astype(np.float32)


def test_line_spectral_frequencies_are_the_roots_angles_for_every_frame_at_once() -> None:
    rng = np.random.default_rng(0)
    polys = np.array([_stable_polynomial(rng, ORDER) for _ in range(5)])

    lsf = line_spectral_frequencies(polys)

    assert lsf.shape == (5, ORDER)
    for row, a in zip(lsf, polys, strict=True):
        np.testing.assert_allclose(row, _lsf_by_roots(a), atol=1e-4)  # the grid's, refined
        assert np.all(np.diff(row) > 0) and row[0] > 0 and row[-1] < math.pi


def _polynomial_of(lsf: np.ndarray) -> np.ndarray:
    """The prediction polynomial whose line spectral frequencies are ``lsf`` (ascending, even
    in number): P's factors take every other one, Q's the rest."""
    p, q = np.array([1.0, 1.0]), np.array([1.0, -1.0])
    for w in lsf[0::2]:
        p = np.convolve(p, [1.0, -2 * math.cos(w), 1.0])
    for w in lsf[1::2]:
        q = np.convolve(q, [1.0, -2 * math.cos(w), 1.0])
    return ((p + q) / 2)[:-1]


@pytest.mark.parametrize("gap", [0.002, 1e-4])
def test_frequencies_closer_than_the_grid_are_found_too(gap: float) -> None:
    # three within a step or two of the grid (2 pi / 1024 = 0.006 rad), two of them P's
    lsf = np.sort(np.concatenate([np.linspace(0.2, 2.9, 13), 1.0 + gap * np.arange(3)]))

    found = line_spectral_frequencies(_polynomial_of(lsf)[None])[0]

    # placed within a few thousandths of a radian, a tenth of the least spread (SCALE) at worst:
    # a resonance this sharp is no voice's
    np.testing.assert_allclose(found, lsf, atol=2.5e-3)


def test_levinson_solves_the_normal_equations_for_every_frame_at_once() -> None:
    rng = np.random.default_rng(1)
    frames = rng.normal(size=(4, 400))
    r = np.array([[f[: len(f) - k] @ f[k:] for k in range(ORDER + 1)] for f in frames])

    a = _levinson(r)

    for row, rr in zip(a, r, strict=True):
        expected = scipy.linalg.solve_toeplitz(rr[:-1], -rr[1:])
        np.testing.assert_allclose(row, np.concatenate([[1.0], expected]), atol=1e-9)


def test_an_envelope_does_not_depend_on_the_level() -> None:
    y = _voice([700.0, 1200.0])

    quiet, loud = envelope(0.05 * y, SR), envelope(y, SR)

    assert quiet is not None and loud is not None
    np.testing.assert_allclose(quiet, loud, rtol=1e-4)  # up to float32's rounding of the samples


def test_another_vocal_tract_lies_farther_than_another_take_of_the_same() -> None:
    one, again = _voice([700.0, 1200.0], seed=1), _voice([700.0, 1200.0], seed=2)
    other = _voice([400.0, 2000.0], seed=1)
    a, b, c = (envelope(y, SR) for y in (one, again, other))
    assert a is not None and b is not None and c is not None

    assert a.shape == (2 * ORDER,)
    assert np.linalg.norm(a - b) < 0.2 * np.linalg.norm(a - c)


def test_silence_has_no_envelope_and_a_rate_must_be_positive() -> None:
    assert envelope(np.zeros(SR, dtype=np.float32), SR) is None
    with pytest.raises(ParameterError, match="sample_rate=0"):
        envelope(np.ones(SR, dtype=np.float32), 0)


def test_the_scale_is_one_positive_number_for_each_of_the_row() -> None:
    assert SCALE.shape == (2 * ORDER,) and np.all(SCALE > 0)


def test_a_radius_is_the_margin_times_the_median_gap_and_at_most_the_cap() -> None:
    d = 2 * ORDER
    # rows on one axis at 0, 0.1, 0.3 and 0.7: gaps to the nearest other 0.1, 0.1, 0.2, 0.4
    line = np.zeros((4, d))
    line[:, 0] = [0.0, 0.1, 0.3, 0.7]
    wider = line * 10  # twice the median gap 3.0: over the cap (2.26), under the limit (3.62)
    words = line * 100  # 30: takes of many words, which get no envelope
    one = np.zeros((1, d))

    envelopes = fit_envelopes([line, None, wider, words, one], margin=2.0)

    cap = CAP * math.sqrt(d)
    assert cap < 3.0 < SPREAD_LIMIT * math.sqrt(d)
    assert envelopes.radii.tolist() == [pytest.approx(0.3), 0.0, cap, 0.0, cap]
    assert envelopes.offsets.tolist() == [0, 4, 4, 8, 8, 9]
    assert [envelopes.has(k) for k in range(5)] == [True, False, True, False, True]
    near, far = np.zeros(d), np.zeros(d)
    near[0], far[0] = 0.99, 1.01  # 0.29 and 0.31 from the row at 0.7
    assert envelopes.near(near, 0) and not envelopes.near(far, 0)
    assert not envelopes.near(np.zeros(d), 1)  # a voice without rows is never near
    assert not envelopes.near(words[0], 3)


@pytest.mark.parametrize(
    ("references", "offsets", "radii", "message"),
    [
        (np.zeros((2, 3)), [0, 2], [1.0], "must be"),
        (np.zeros((2, 2 * ORDER)), [0, 3], [1.0], "rise to the number of rows"),
        (np.zeros((2, 2 * ORDER)), [0, 2], [1.0, 2.0], r"must be 3 numbers from 0"),
        (np.full((2, 2 * ORDER), np.nan), [0, 2], [1.0], "finite"),
    ],
)
def test_envelopes_that_do_not_fit_are_refused(
    references: np.ndarray, offsets: list[int], radii: list[float], message: str
) -> None:
    with pytest.raises(ParameterError, match=message):
        Envelopes(references.astype(np.float32), np.array(offsets), np.array(radii))
