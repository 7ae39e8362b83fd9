"""Degraded training copies: deterministic, and each condition does what its name says."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import augment
from pipeline.augment import (
    CONDITIONS,
    GAIN_DB,
    SNR_DB,
    add_noise,
    channel,
    codec,
    degrade,
    dull,
    overdrive,
    reverb,
    telephone,
)
from tests.signals import SR, harmonics, tone


def _level_db(y: np.ndarray, hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(y)) ** 2 / len(y)
    bin_hz = SR / len(y)
    return float(10 * np.log10(spectrum[round(hz / bin_hz)] + 1e-20))


def test_the_same_seed_gives_the_same_copy() -> None:
    y = harmonics()
    a = degrade(y, SR, np.random.default_rng(3))
    b = degrade(y, SR, np.random.default_rng(3))
    c = degrade(y, SR, np.random.default_rng(4))

    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert (a.dtype, a.shape) == (np.dtype(np.float32), y.shape)


def test_every_condition_is_drawn(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[str] = []

    def recorder(name: str) -> augment.Condition:
        def condition(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
            drawn.append(name)
            return y

        return condition

    monkeypatch.setattr(augment, "CONDITIONS", {name: recorder(name) for name in CONDITIONS})
    for seed in range(60):
        degrade(tone(440), SR, np.random.default_rng(seed))

    assert sorted(set(drawn)) == sorted(CONDITIONS)


def test_copies_are_played_back_within_the_gain_range() -> None:
    y = tone(440, amplitude=0.1)
    for seed in range(20):
        out = degrade(y, SR, np.random.default_rng(seed))
        assert np.max(np.abs(out)) <= 1.0
        assert np.all(np.isfinite(out))
    assert GAIN_DB[0] < GAIN_DB[1]


@pytest.mark.parametrize("name", sorted(CONDITIONS))
def test_each_condition_keeps_the_length_and_stays_finite(name: str) -> None:
    y = harmonics().astype(np.float64)
    for seed in range(4):
        out = CONDITIONS[name](y, SR, np.random.default_rng(seed))
        assert out.shape == y.shape
        assert np.all(np.isfinite(out))


def test_overdrive_clips_at_full_scale() -> None:
    y = tone(440, amplitude=0.5).astype(np.float64)
    for seed in range(10):
        out = overdrive(y, SR, np.random.default_rng(seed))
        assert np.max(np.abs(out)) <= 1.0
        assert np.max(np.abs(out)) >= np.tanh(1.0) - 1e-9  # the peak reaches full scale or more


def test_noise_is_added_within_the_snr_range() -> None:
    y = tone(200, amplitude=0.1).astype(np.float64)
    for seed in range(10):
        noise = add_noise(y, SR, np.random.default_rng(seed)) - y
        snr = 10 * np.log10(np.mean(y**2) / np.mean(noise**2))
        assert SNR_DB[0] - 0.01 <= snr <= SNR_DB[1] + 0.01


def test_telephone_keeps_the_voice_band_and_removes_the_rumble() -> None:
    y = (tone(80, amplitude=0.2) + tone(1000, amplitude=0.2)).astype(np.float64)
    for seed in range(6):
        out = telephone(y, SR, np.random.default_rng(seed))
        # The line's level varies by +-6 dB; the rumble falls 15 dB more than the voice band.
        assert abs(_level_db(out, 1000) - _level_db(y, 1000)) < 7.0
        assert (
            _level_db(out, 80) - _level_db(out, 1000) < _level_db(y, 80) - _level_db(y, 1000) - 15
        )


def test_reverb_keeps_the_peak_and_leaves_a_tail() -> None:
    y = np.zeros(SR)
    y[: SR // 4] = tone(500, seconds=0.25, amplitude=0.5)
    for seed in range(4):
        out = reverb(y, SR, np.random.default_rng(seed))
        assert np.max(np.abs(out)) == pytest.approx(0.5)
        tail = out[SR // 4 + SR // 50 : SR // 4 + SR // 10]
        assert np.sqrt(np.mean(tail**2)) > 1e-3  # the room rings on after the sound stops


def test_codec_keeps_a_speech_band_tone() -> None:
    y = tone(500, amplitude=0.3).astype(np.float64)
    for seed in range(6):
        out = codec(y, SR, np.random.default_rng(seed))
        assert abs(_level_db(out, 500) - _level_db(y, 500)) < 3.0


def test_channel_keeps_a_low_tone() -> None:
    y = tone(300, amplitude=0.3).astype(np.float64)
    for seed in range(9):
        out = channel(y, SR, np.random.default_rng(seed))
        assert abs(_level_db(out, 300) - _level_db(y, 300)) < 3.0  # the mix: -2.5 dB at most


def test_dull_cuts_above_the_corner_and_keeps_the_low_band() -> None:
    y = (tone(300, amplitude=0.2) + tone(6000, amplitude=0.2)).astype(np.float64)
    for seed in range(6):
        out = dull(y, SR, np.random.default_rng(seed))
        assert abs(_level_db(out, 300) - _level_db(y, 300)) < 6.0  # the tilt: +-3 dB an octave
        assert _level_db(out, 6000) < _level_db(y, 6000) - 15.0


@pytest.mark.parametrize("seed", range(5))
def test_a_crop_is_60_to_90_percent_of_the_speech_and_lies_within_it(seed: int) -> None:
    voice = harmonics(seconds=1.0)
    gap = np.zeros(SR // 2, np.float32)
    y = np.concatenate([gap, voice, gap])

    crop = augment.speech_crop(y, SR, np.random.default_rng(seed))

    assert 0.6 * SR - 160 <= len(crop) <= 0.9 * SR + 160  # the speech span to a 10 ms frame
    windows = np.lib.stride_tricks.sliding_window_view(y, len(crop))
    start = int(np.flatnonzero(np.all(windows == crop, axis=1))[0])
    assert start >= SR // 2 - 160 and start + len(crop) <= SR // 2 + SR + 160
    assert crop.dtype == np.float32
