"""Degraded training copies: deterministic, duller above the cutoff, noisy at the drawn SNR."""

from __future__ import annotations

import numpy as np

from pipeline.augment import SNR_DB, degrade

SR = 16_000


def _tones() -> np.ndarray:
    t = np.arange(SR) / SR
    return (0.3 * np.sin(2 * np.pi * 500 * t) + 0.3 * np.sin(2 * np.pi * 3700 * t)).astype(
        np.float32
    )


def _level_db(y: np.ndarray, hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(y)) ** 2
    return float(10 * np.log10(spectrum[int(hz)] + 1e-20))  # 1 s at 16 kHz: 1 Hz bins


def test_the_same_seed_gives_the_same_copy() -> None:
    y = _tones()
    a = degrade(y, SR, np.random.default_rng(3), fmax=3800.0)
    b = degrade(y, SR, np.random.default_rng(3), fmax=3800.0)
    c = degrade(y, SR, np.random.default_rng(4), fmax=3800.0)

    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert (a.dtype, a.shape) == (np.dtype(np.float32), y.shape)


def test_high_frequencies_are_dulled_and_low_ones_kept() -> None:
    y = _tones()
    out = degrade(y, SR, np.random.default_rng(0), fmax=3800.0)

    assert abs(_level_db(out, 500) - _level_db(y, 500)) < 0.5
    assert _level_db(out, 3700) < _level_db(y, 3700) - 1.0


def test_noise_is_added_within_the_snr_range() -> None:
    y = np.zeros(SR, dtype=np.float32)
    y[:] = 0.1 * np.sin(2 * np.pi * 200 * np.arange(SR) / SR)
    for seed in range(5):
        out = degrade(y, SR, np.random.default_rng(seed), fmax=3800.0)
        noise = out - y  # a 200 Hz tone is far below any cutoff: the rest is the noise
        snr = 10 * np.log10(np.mean(y**2) / np.mean(noise**2))
        assert SNR_DB[0] - 0.5 <= snr <= SNR_DB[1] + 0.5
