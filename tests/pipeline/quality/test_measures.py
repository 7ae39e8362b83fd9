"""Recording-quality measures on signals with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soxr
from scipy import signal

from pipeline.errors import InvalidAudioError, ParameterError
from pipeline.features import stft
from pipeline.quality.issues import low_band_cut
from pipeline.quality.measures import (
    FRAME_S,
    HOP_S,
    STFT_HOP_S,
    bandwidth,
    clipped_fraction,
    companded_levels,
    fall_db,
    low_band_db,
    measure,
)
from tests.signals import SR, harmonics, tone


def padded(y: np.ndarray, silence_s: float = 0.5) -> np.ndarray:
    gap = np.zeros(round(silence_s * SR), np.float32)
    return np.concatenate([gap, y, gap])


def test_a_full_scale_tone_is_at_minus_3_dbfs_and_its_level_follows_the_gain() -> None:
    loud = measure(tone(seconds=1.0, amplitude=1.0), SR)
    quiet = measure(tone(seconds=1.0, amplitude=0.01), SR)

    assert loud.level_dbfs == pytest.approx(-3.01, abs=0.05)
    assert quiet.level_dbfs == pytest.approx(-43.01, abs=0.05)


def test_the_speech_lasts_as_long_as_the_burst_once_the_silence_is_trimmed() -> None:
    quality = measure(padded(harmonics(seconds=0.6)), SR)

    assert quality.speech_s == pytest.approx(0.6, abs=2 * HOP_S)


def test_a_clean_clip_has_no_clipping_and_a_clipped_sine_sits_on_its_peak() -> None:
    sine = tone(seconds=1.0, amplitude=1.0)

    assert clipped_fraction(sine) == 0.0
    # |cos| >= 0.5 for two thirds of every period: those samples sit on the clipped peak.
    assert clipped_fraction(np.clip(sine, -0.5, 0.5)) == pytest.approx(2 / 3, abs=0.01)
    # and as much after a later gain: clipping is judged against the clip's own peak
    assert clipped_fraction(0.1 * np.clip(sine, -0.5, 0.5)) == pytest.approx(2 / 3, abs=0.01)


def test_one_or_two_lone_samples_on_the_peak_are_not_clipping_but_two_side_by_side_are() -> None:
    y = np.zeros(1000, np.float32)
    y[100] = 0.5

    assert clipped_fraction(y) == 0.0
    y[500] = -0.5
    assert clipped_fraction(y) == 0.0
    y[501] = -0.5
    assert clipped_fraction(y) == 2 / 1000


def test_the_features_stft_gives_the_same_quality_and_one_of_other_frames_is_not_read() -> None:
    y = padded(harmonics(seconds=0.6)) + 0.01 * tone(3000.0, seconds=1.6)
    frames = {"n_fft": round(FRAME_S * SR), "hop_length": round(STFT_HOP_S * SR)}
    other = stft(np.zeros_like(y), n_fft=frames["n_fft"], hop_length=2 * frames["hop_length"])

    assert measure(y, SR, spectrum=stft(y, **frames)) == measure(y, SR)
    assert measure(y, SR, spectrum=other) == measure(y, SR)


def test_a_clip_shorter_than_a_frame_is_measured_on_its_padded_frame() -> None:
    quality = measure(tone(seconds=0.01, amplitude=1.0), SR)

    assert quality.speech_s == FRAME_S
    assert quality.level_dbfs < -3.0  # the zeros padding it out count as silence


def test_noise_lowers_the_snr_estimate() -> None:
    speech = harmonics(seconds=1.0)
    voice = padded(speech)
    noise = np.random.default_rng(0).standard_normal(len(voice)).astype(np.float32)
    power = float(np.mean(speech**2))

    clean = measure(voice + 1e-4 * noise, SR)
    noisy = measure(voice + math.sqrt(power) * noise, SR)  # as loud as the speech

    assert clean.snr_db > 40
    # The noise alone is within 30 dB of the loudest frame, so the gaps count as speech too:
    # the voice fills half of those frames, -3 dB.
    assert noisy.snr_db == pytest.approx(-3.0, abs=1.5)


def test_bandwidth_is_the_top_of_the_smoothed_band_above_the_background() -> None:
    speech = np.zeros(257)
    speech[:50] = 1.0

    # Smoothing over 5 bins spreads the edge by two bins, each within 50 dB of the peak.
    assert bandwidth(speech, np.full(257, 1e-9), 31.25) == 51.5 * 31.25
    assert bandwidth(speech, np.full(257, 1.0), 31.25) == 0.0  # nowhere 6 dB above the floor


def test_an_8_khz_recording_is_measured_on_its_own_band() -> None:
    voice = padded(harmonics(seconds=1.0))
    narrow = soxr.resample(soxr.resample(voice, SR, 8000), 8000, SR).astype(np.float32)

    quality = measure(narrow, SR, source_rate=8000)

    assert quality.available_hz == 4000.0
    assert 3500 <= quality.bandwidth_hz <= 4000


def test_low_band_db_compares_below_250_hz_with_250_hz_to_1_khz() -> None:
    bin_hz = 10.0
    speech = np.zeros(400)
    speech[10:25] = 1.0  # 100-240 Hz: 15 bins
    speech[25:100] = 0.2  # 250-990 Hz: 75 bins, the same power

    assert low_band_db(speech, bin_hz) == pytest.approx(0.0, abs=1e-6)


def test_fall_db_is_the_steepest_fall_over_two_frames_in_any_octave_band() -> None:
    bin_hz, frames = 31.25, 12
    background = np.full(257, 1e-9)
    decaying = np.outer(10 ** (-0.3 * np.arange(frames)), np.ones(257))  # 3 dB a frame
    stopping = decaying.copy()
    stopping[4:, 64:128] = 0.0  # the 2-4 kHz octave stops after frame 3

    assert fall_db(decaying, background, bin_hz, 4000.0) == pytest.approx(6.0, abs=1e-9)
    # From frame 2 (6 dB down, 20 dB within the loudest) to the background two frames later.
    assert fall_db(stopping, background, bin_hz, 4000.0) == pytest.approx(84.0, abs=1e-3)
    # Nothing stands 20 dB above the background: no fall can be measured.
    assert fall_db(decaying, np.ones(257), bin_hz, 4000.0) == 0.0


def test_energy_that_only_rises_has_no_fall_not_a_negative_one() -> None:
    rising = np.outer(10 ** (0.05 * np.arange(10)), np.ones(257))  # 0.5 dB a frame, 4.5 in all

    assert fall_db(rising, np.full(257, 1e-9), 31.25, 4000.0) == 0.0


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # float32's, retried
def test_a_fall_to_silence_too_steep_for_float32_is_still_measured() -> None:
    """Samples far beyond full scale (a float file, peak 2**40): their fall to digital silence,
    over the absolute floor of 1e-12, is a ratio past float32's largest; it read infinite."""
    stops = np.concatenate([harmonics(), np.zeros(SR // 2, np.float32)])
    scaled = (2.0**40 * stops).astype(np.float32)  # exact: a power of two

    fall = fall_db(*_fall_inputs(stops), 31.25, 4000.0)
    assert fall_db(*_fall_inputs(scaled), 31.25, 4000.0) == pytest.approx(
        fall + 20 * math.log10(2.0**40), abs=1e-3
    )  # the fall to the same floor, from 2**60 times the power


def _fall_inputs(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The measured frames' power of ``y`` at ``SR`` and a background of digital silence."""
    power = stft(y, n_fft=512, hop_length=160).power[::3]
    return power, np.zeros(power.shape[1], np.float32)


def test_a_level_difference_that_rounds_to_zero_reads_0_not_minus_0() -> None:
    """A background of near-digital silence has equal low and mid bands to within 0.005 dB."""
    hiss = (1e-9 * np.random.default_rng(0).standard_normal(SR // 2)).astype(np.float32)

    quality = measure(np.concatenate([hiss, harmonics(), hiss]), SR)

    assert repr(quality.background_low_band_db) == "0.0"  # == 0.0 holds for -0.0 too


def test_a_voice_that_stops_falls_fast_and_an_echoing_one_slowly() -> None:
    voice = np.concatenate([harmonics(seconds=0.3), np.zeros(SR // 5, np.float32),
                            harmonics(seconds=0.3)])  # fmt: skip
    rng = np.random.default_rng(0)
    t = np.arange(round(0.8 * SR)) / SR  # a room of RT60 0.8 s: 60 dB in 0.8 s
    room = rng.standard_normal(len(t)) * np.exp(-6.9 * t / 0.8)
    echoing = np.convolve(voice, room)[: len(voice) + SR // 2]
    echoing = (0.5 * echoing / np.abs(echoing).max()).astype(np.float32)

    assert measure(padded(voice) + 1e-4 * rng.standard_normal(len(padded(voice))).astype(
        np.float32), SR).fall_db > 40.0  # fmt: skip
    assert 0.0 < measure(padded(echoing), SR).fall_db < 14.0


def test_the_backgrounds_low_band_follows_the_channel_not_the_voice() -> None:
    rng = np.random.default_rng(0)
    voice = padded(harmonics(f0_hz=300.0, seconds=1.0))  # nothing below 300 Hz
    hiss = (1e-3 * rng.standard_normal(len(voice))).astype(np.float32)
    line = np.fft.irfft(np.fft.rfft(hiss) * (np.fft.rfftfreq(len(hiss), 1 / SR) >= 300), len(hiss))

    room = measure(voice + hiss, SR)
    phone = measure(voice + line.astype(np.float32), SR)

    # White noise: 6 bins from 62.5 Hz below 250 against 24 from 250 Hz below 1 kHz.
    assert room.background_low_band_db == pytest.approx(-6.0, abs=1.5)
    assert phone.background_low_band_db < -40.0
    assert measure(padded(harmonics()), SR).background_low_band_db == 0.0  # digital silence


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ParameterError, match=r"sample_rate=0 and source_rate=None"):
        measure(tone(), 0)
    with pytest.raises(ParameterError, match=r"not of shape \(0,\)"):
        measure(np.zeros(0, np.float32), SR)


def test_a_phone_line_cuts_the_low_band_of_the_voice_and_of_the_room_alike() -> None:
    rng = np.random.default_rng(0)
    voice = padded(harmonics(f0_hz=120.0, seconds=1.0))
    room = voice + (1e-3 * rng.standard_normal(len(voice))).astype(np.float32)
    line = signal.sosfilt(
        signal.butter(4, [300, 3400], btype="bandpass", fs=SR, output="sos"), room
    )

    assert not low_band_cut(measure(room, SR))
    assert low_band_cut(measure(line.astype(np.float32), SR))


def _mu_law(y: np.ndarray, codes: int = 127) -> np.ndarray:
    """``y`` through a mu-law code of ``codes`` steps a side: fine near silence, coarse near
    the peak."""
    mu = 255.0
    code = np.round(np.sign(y) * np.log1p(mu * np.abs(y)) / np.log1p(mu) * codes) / codes
    return (np.sign(code) * ((1 + mu) ** np.abs(code) - 1) / mu).astype(np.float32)


def test_a_telephone_code_takes_few_unevenly_spaced_levels() -> None:
    coded = _mu_law(harmonics(seconds=0.5))
    levels = len(np.unique(coded))

    assert 100 < levels <= 255
    assert companded_levels(coded) == levels
    assert measure(coded, SR).companded_levels == levels
    assert companded_levels(0.3 * coded) == levels  # a later gain keeps the code's spacing


@pytest.mark.parametrize(
    "y",
    [
        harmonics(seconds=0.5),  # a float recording: as many levels as samples
        np.round(harmonics(seconds=0.5) * 128) / 128,  # 8-bit linear: few levels, evenly spaced
        np.round(harmonics(seconds=0.5) * 200) / 32768,  # a quiet 16-bit one, evenly spaced too
    ],
)
def test_a_linear_recording_has_no_companded_levels(y: np.ndarray) -> None:
    assert companded_levels(y.astype(np.float32)) == 0


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_samples_whose_spectrum_overflows_are_refused_not_measured_as_nan() -> None:
    with pytest.raises(InvalidAudioError) as caught:
        measure(tone(440, amplitude=1e20), SR)

    assert str(caught.value) == (
        "clip overflows the spectrum: its peak sample 1e+20 is far beyond full scale (1.0)"
    )
