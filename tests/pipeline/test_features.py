"""Tests of the 60-bin histogram with signals whose spectrum is known."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import scipy.fft
from scipy.signal import butter, sosfilt

from pipeline.config import FeatureConfig
from pipeline.errors import InvalidAudioError
from pipeline.features import (
    _window,
    band_centres,
    band_edges,
    band_percentiles,
    band_powers,
    cepstral_correlations,
    filterbank,
    histogram,
    power_spectrogram,
    remove_background,
    require_speech,
    squared_magnitude,
    stft,
    voiced_frames,
)
from tests.signals import SR, harmonics, tone

CFG = FeatureConfig()
SPREAD = FeatureConfig(band_spread=(80.0, 20.0))  # as training makes it


@pytest.mark.parametrize("freq_hz", [300.0, 1000.0, 2500.0])
def test_a_tone_peaks_in_the_band_centred_nearest_to_it(freq_hz: float) -> None:
    h = histogram(tone(freq_hz), CFG)

    assert int(np.argmax(h)) == int(np.argmin(np.abs(band_centres(CFG) - freq_hz)))


def test_band_limited_noise_raises_only_its_bands() -> None:
    noise = np.random.default_rng(0).standard_normal(SR)
    sos = butter(8, [1000, 2000], btype="bandpass", fs=SR, output="sos")
    y = (0.3 * sosfilt(sos, noise)).astype(np.float32)
    centres = band_centres(CFG)

    h = histogram(y, CFG)

    inside = h[(centres > 1100) & (centres < 1900)]
    outside = h[(centres < 700) | (centres > 2800)]
    assert h.max() - inside.min() < 6.0  # dB
    assert h.max() - outside.max() > 30.0


@pytest.mark.filterwarnings("ignore:n_fft=512 is too large:UserWarning")  # librosa's, for 1 and 255
@pytest.mark.parametrize("n_samples", [1, 255, 512, 4_000, 16_000, 16_001, 160_123])
def test_power_spectrogram_is_librosas_centred_stft_squared(n_samples: int) -> None:
    y = (0.3 * np.random.default_rng(n_samples).standard_normal(n_samples)).astype(np.float32)
    spec = librosa.stft(y, n_fft=CFG.n_fft, hop_length=CFG.hop_length, center=True)
    expected = (np.abs(spec) ** 2).T

    power = power_spectrogram(y, CFG)

    assert power.shape == expected.shape == (1 + n_samples // CFG.hop_length, CFG.n_fft // 2 + 1)
    np.testing.assert_allclose(power, expected, rtol=1e-4, atol=1e-6 * expected.max())


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_squared_magnitude_of_every_third_frame_is_the_real_part_squared_plus_the_imaginary(
    dtype: type,
) -> None:
    rng = np.random.default_rng(0)
    values: np.ndarray = (rng.standard_normal((30, 9)) + 1j * rng.standard_normal((30, 9))).astype(
        dtype
    )
    some = values[1:][::3, :7]  # rows apart, as the quality measures read the features' STFT

    power = squared_magnitude(some)

    assert power.dtype == some.real.dtype and power.shape == (10, 7)
    np.testing.assert_array_equal(power, some.real * some.real + some.imag * some.imag)


# Configs for the filterbank's equality with librosa: the default, the 8 kHz-derived fmax, a
# narrow one, one up to Nyquist, another rate and frame size, a single band, fmin at 0 Hz.
FILTERBANK_CONFIGS = [
    FeatureConfig(),
    FeatureConfig(fmax=3400.0),
    FeatureConfig(fmax=2000.0, n_bands=20),
    FeatureConfig(fmin=0.0, fmax=8000.0, n_bands=40),
    FeatureConfig(sample_rate=22050, n_fft=1024, hop_length=256, fmin=30.0, fmax=11025.0),
    FeatureConfig(n_bands=1, fmin=300.0, fmax=3400.0),
    FeatureConfig(n_fft=256, n_bands=24, fmax=7600.0),
]


def _config_id(cfg: FeatureConfig) -> str:
    return f"{cfg.n_bands}x{cfg.n_fft}@{cfg.sample_rate}:{cfg.fmin:g}-{cfg.fmax:g}"


@pytest.mark.parametrize("cfg", [CFG, FeatureConfig(n_fft=400, hop_length=128)], ids=_config_id)
def test_a_shared_stft_gives_the_same_histogram_and_one_of_other_frames_is_not_read(
    cfg: FeatureConfig,
) -> None:
    y = harmonics(seconds=1.0)
    other = stft(np.zeros_like(y), n_fft=cfg.n_fft, hop_length=2 * cfg.hop_length)

    shared = histogram(y, cfg, spectrum=stft(y, n_fft=cfg.n_fft, hop_length=cfg.hop_length))

    np.testing.assert_array_equal(shared, histogram(y, cfg))
    np.testing.assert_array_equal(histogram(y, cfg, spectrum=other), histogram(y, cfg))


@pytest.mark.parametrize("cfg", FILTERBANK_CONFIGS, ids=_config_id)
def test_filterbank_is_librosas_htk_mel_filterbank(cfg: FeatureConfig) -> None:
    expected = librosa.filters.mel(
        sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_bands, fmin=cfg.fmin, fmax=cfg.fmax,
        htk=True, norm=None,
    )  # fmt: skip

    weights = filterbank(cfg)

    assert weights.dtype == np.float32
    assert weights.shape == expected.shape == (cfg.n_bands, cfg.n_fft // 2 + 1)
    np.testing.assert_allclose(weights, expected, rtol=0, atol=float(np.finfo(np.float32).eps))


@pytest.mark.parametrize("cfg", FILTERBANK_CONFIGS, ids=_config_id)
def test_band_edges_are_librosas_htk_mel_frequencies(cfg: FeatureConfig) -> None:
    expected = librosa.mel_frequencies(cfg.n_bands + 2, fmin=cfg.fmin, fmax=cfg.fmax, htk=True)

    np.testing.assert_allclose(band_edges(cfg), expected, rtol=1e-12)


@pytest.mark.parametrize("n_fft", [2, 255, 256, 400, 512, 1024, 2048])
def test_window_is_librosas_periodic_hann_window(n_fft: int) -> None:
    expected = librosa.filters.get_window("hann", n_fft, fftbins=True).astype(np.float32)

    window = _window(n_fft)

    assert window.dtype == np.float32
    np.testing.assert_allclose(window, expected, rtol=0, atol=float(np.finfo(np.float32).eps))


def test_output_is_one_float32_value_per_band() -> None:
    h = histogram(harmonics(), CFG)

    assert h.shape == (60,)
    assert h.dtype == np.float32
    assert np.all(np.isfinite(h))


def test_is_deterministic() -> None:
    y = harmonics()

    np.testing.assert_array_equal(histogram(y, CFG), histogram(y.copy(), CFG))


def syllables(seconds: float = 1.0) -> np.ndarray:
    """``harmonics()`` with a 4 Hz syllable-rate envelope, so its level varies like speech's."""
    t = np.arange(round(seconds * SR)) / SR
    return (harmonics(seconds=seconds) * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t))).astype(
        np.float32
    )


def test_leading_and_trailing_silence_are_left_out() -> None:
    y = syllables()
    half_second = np.zeros(SR // 2, np.float32)

    padded = histogram(np.concatenate([half_second, y, half_second]), CFG)

    difference = np.abs(padded - histogram(y, CFG))
    assert difference.mean() < 0.5  # dB; the background estimate moves a little
    assert difference.max() < 2.0


@pytest.mark.parametrize("gain_db", [-30.0, -20.0, -6.0, 6.0])
def test_does_not_depend_on_the_recording_level(gain_db: float) -> None:
    y = syllables()

    np.testing.assert_allclose(
        histogram(y * 10 ** (gain_db / 20), CFG), histogram(y, CFG), atol=1e-3
    )


def test_does_not_depend_on_the_level_after_16_bit_quantisation() -> None:
    y = syllables()
    quiet = np.round(y * 10 ** (-30 / 20) * 32767) / 32767  # what a quiet 16-bit file holds

    np.testing.assert_allclose(
        histogram(quiet.astype(np.float32), CFG), histogram(y, CFG), atol=0.5
    )


def test_values_are_relative_to_each_frames_loudest_band() -> None:
    h = histogram(syllables(), CFG)

    assert h.max() <= 1e-4  # 0 up to rounding
    assert h.min() >= -CFG.band_floor_db


def test_a_steady_background_is_subtracted() -> None:
    y = syllables()
    rng = np.random.default_rng(1)
    noise = rng.standard_normal(len(y))
    noisy = (y + noise * np.sqrt(np.mean(y**2) / 100 / np.mean(noise**2))).astype(np.float32)
    plain = FeatureConfig(noise_percentile=0.0)

    change = np.abs(histogram(noisy, CFG) - histogram(y, CFG)).mean()
    change_without = np.abs(histogram(noisy, plain) - histogram(y, plain)).mean()

    assert change < change_without / 2  # white noise at 20 dB SNR


@pytest.mark.filterwarnings("error::RuntimeWarning")  # the refusal says it; numpy does not too
def test_samples_far_beyond_full_scale_are_refused() -> None:
    with pytest.raises(InvalidAudioError) as error:
        histogram(tone(440, amplitude=1e30), CFG)

    assert str(error.value) == (
        "clip overflows the spectrum: its peak sample 1e+30 is far beyond full scale (1.0)"
    )


def test_band_layout_spans_fmin_to_fmax() -> None:
    edges, centres = band_edges(CFG), band_centres(CFG)

    assert edges.shape == (62,)
    assert (edges[0], edges[-1]) == pytest.approx((50.0, 3800.0))
    assert centres.shape == (60,)
    assert np.all(np.diff(centres) > 0)
    assert filterbank(CFG).shape == (60, CFG.n_fft // 2 + 1)
    assert filterbank(CFG).dtype == np.float32


def test_voiced_frames_keeps_frames_within_top_db_of_the_loudest() -> None:
    frame_db = np.array([-100.0, -45.0, -20.0, *[0.0] * 10, -29.0, -31.0, -100.0])

    mask = voiced_frames(frame_db, FeatureConfig(top_db=30.0))

    assert mask.tolist() == [False, False, True, *[True] * 10, True, False, False]


def test_require_speech_refuses_a_span_shorter_than_min_speech() -> None:
    frame_db = np.array([-100.0, *[0.0] * 5, -100.0])  # 5 frames of 10 ms

    with pytest.raises(InvalidAudioError) as error:
        require_speech(frame_db, CFG)

    assert str(error.value) == (
        "clip holds no speech: it has 0.05 s of sound within 40 dB of its loudest frame; "
        "at least 0.1 s is needed"
    )


def test_require_speech_counts_quiet_consonants_as_sound() -> None:
    # A short word: 5 frames of a consonant 30 dB below 6 frames of vowel, like a spoken "six".
    frame_db = np.array([-100.0, *[-30.0] * 5, *[0.0] * 6, -100.0])

    require_speech(frame_db, CFG)  # 0.11 s of sound: no error

    assert voiced_frames(frame_db, CFG).tolist() == [False, *[False] * 5, *[True] * 6, False]


def test_a_short_word_with_a_quiet_consonant_is_kept() -> None:
    vowel = harmonics(seconds=0.07)
    hiss = np.random.default_rng(0).standard_normal(SR * 6 // 100)
    consonant = (0.5 * 10 ** (-30 / 20) * hiss / np.abs(hiss).max()).astype(np.float32)

    h = histogram(np.concatenate([consonant, vowel]), CFG)

    assert np.isfinite(h).all()


def test_a_lower_fmax_moves_the_bands_down() -> None:
    narrow = FeatureConfig(fmax=2000.0, n_bands=20)

    h = histogram(tone(1000), narrow)

    assert h.shape == (20,)
    assert band_edges(narrow)[-1] == pytest.approx(2000.0)
    assert int(np.argmax(h)) == int(np.argmin(np.abs(band_centres(narrow) - 1000.0)))


# Each band's spread over the frames (FeatureConfig.band_spread)


@pytest.mark.parametrize("frames", [1, 2, 3, 7, 90])
def test_band_percentiles_are_numpys_linear_percentiles(frames: int) -> None:
    x = np.random.default_rng(frames).standard_normal((frames, 60)).astype(np.float32)

    np.testing.assert_allclose(
        band_percentiles(x, (80.0, 20.0, 50.0)), np.percentile(x, (80, 20, 50), axis=0), atol=1e-6
    )


def test_the_spread_follows_the_histogram_left_as_it_was() -> None:
    y = syllables()

    row = histogram(y, SPREAD)

    assert SPREAD.row_width == row.shape[0] == 180 and row.dtype == np.float32
    np.testing.assert_array_equal(row[:60], histogram(y, CFG))  # bit for bit
    high, low = row[60:120], row[120:]
    assert np.all(high >= low)
    assert np.all(high <= 1e-4) and np.all(low >= -CFG.band_floor_db)
    assert (high - low).max() > 5.0  # dB: the syllables' level moves the bands


def test_the_spread_is_nil_for_a_steady_tone() -> None:
    row = histogram(tone(1000.0), SPREAD)

    np.testing.assert_array_equal(row[60:120], row[120:])


@pytest.mark.parametrize("gain_db", [-30.0, 6.0])
def test_the_spread_does_not_depend_on_the_recording_level(gain_db: float) -> None:
    y = syllables()

    np.testing.assert_allclose(
        histogram(y * 10 ** (gain_db / 20), SPREAD), histogram(y, SPREAD), atol=1e-3
    )


# The cepstral correlations (FeatureConfig.cepstra)


def test_cepstral_correlations_are_each_pairs_pearson_correlation_over_the_frames() -> None:
    rng = np.random.default_rng(5)
    shapes = -rng.uniform(0, 50, (40, 60))

    got = cepstral_correlations(shapes, 5, 30.0)

    floored = np.maximum(shapes, -30.0)
    ceps = scipy.fft.dct(floored, type=2, norm="ortho", axis=1)[:, 1:6]
    expected = np.corrcoef(ceps.T)[np.triu_indices(5, 1)]
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert got.shape == (10,)


def test_a_cepstrum_that_never_moves_correlates_with_nothing() -> None:
    shapes = np.tile(-np.linspace(0, 40, 60), (8, 1))  # every frame the same shape
    shapes[::2, 10] -= 6.0  # one band moves: every cepstrum moves with it, perfectly

    moving = cepstral_correlations(shapes, 3, 30.0)
    still = cepstral_correlations(shapes[:1], 3, 30.0)  # one frame: nothing moves

    np.testing.assert_allclose(np.abs(moving), 1.0)
    assert still.tolist() == [0.0, 0.0, 0.0]


def test_the_row_ends_with_the_cepstral_correlations_of_the_averaged_frames() -> None:
    cfg = FeatureConfig(band_spread=(80.0, 20.0), cepstra=12)
    y = np.concatenate([harmonics(120.0, seconds=0.5), harmonics(190.0, seconds=0.5)])

    row = histogram(y, cfg)
    plain = histogram(y, FeatureConfig(band_spread=(80.0, 20.0)))

    assert row.shape == (246,) and row.dtype == np.float32
    np.testing.assert_array_equal(row[:180], plain)
    assert np.all(np.abs(row[180:]) <= 1.0 + 1e-6) and np.any(np.abs(row[180:]) > 0.05)


def test_a_long_clip_correlates_its_cepstra_over_its_middle_frames_only() -> None:
    cfg = FeatureConfig(band_spread=(80.0, 20.0), cepstra=6, cepstral_frames=20)
    y = np.concatenate([harmonics(f0, seconds=0.25) for f0 in (110.0, 150.0, 200.0, 130.0)])
    bands = remove_background(band_powers(y, cfg)[0], cfg)
    frame_db = 10 * np.log10(bands.sum(axis=1))
    shapes = 10 * np.log10(bands[voiced_frames(frame_db, cfg)])
    loudest = shapes.max(axis=1, keepdims=True)
    shapes = np.maximum(shapes, loudest - cfg.band_floor_db) - loudest
    middle = (len(shapes) - 20) // 2

    row = histogram(y, cfg)

    assert len(shapes) > 60  # a clip of many more frames than the limit
    np.testing.assert_allclose(
        row[180:], cepstral_correlations(shapes[middle : middle + 20], 6, 30.0), atol=1e-5
    )
    assert np.abs(row[180:] - cepstral_correlations(shapes, 6, 30.0)).max() > 0.01
