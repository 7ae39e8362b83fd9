"""Windows: speech against the noise floor, and each window's histogram as a clip's."""

from __future__ import annotations

import dataclasses
import math
import re
import tracemalloc
from collections.abc import Iterator

import numpy as np
import pytest

from pipeline.config import FeatureConfig
from pipeline.errors import InvalidAudioError, ParameterError
from pipeline.features import band_powers, histogram
from pipeline.timeline.config import TimelineConfig
from pipeline.timeline.windows import (
    Windows,
    band_powers_of_blocks,
    describe_window,
    full_scale_db,
    middle_hop,
    recording_band_powers,
    recording_windows,
    windows_of_blocks,
)
from tests.conversations import conversation
from tests.signals import SR, harmonics, tone

CFG = FeatureConfig(sample_rate=SR)
TCFG = TimelineConfig()


def test_a_full_scale_tone_is_zero_dbfs() -> None:
    from pipeline.features import band_powers

    t = np.arange(SR) / SR
    _, raw_db = band_powers(np.sin(2 * np.pi * 1000 * t).astype(np.float32), CFG)

    assert float(np.median(raw_db)) - full_scale_db(CFG) == pytest.approx(0.0, abs=1e-6)


def test_speech_between_silences_is_found_hop_by_hop() -> None:
    quiet = 1e-4 * np.random.default_rng(0).standard_normal(2 * SR).astype(np.float32)
    y = np.concatenate([quiet, harmonics(seconds=2.0), quiet])

    windows = recording_windows(y, CFG, TCFG)

    spoken = windows.times[windows.speech]
    assert windows.times[0] == 0.5 and np.allclose(np.diff(windows.times), 0.25)
    assert spoken.min() == pytest.approx(2.0, abs=0.25)
    assert spoken.max() == pytest.approx(4.0, abs=0.25)
    assert np.all(np.diff(spoken) == 0.25)  # one run: nothing inside the voice was lost
    voiced = np.flatnonzero(windows.frame_speech) * windows.frame_s
    assert voiced.min() == pytest.approx(2.0, abs=0.03)  # frames place it to within a few
    assert voiced.max() == pytest.approx(4.0, abs=0.03)


def test_a_window_has_the_histogram_of_its_samples_as_a_clip() -> None:
    y, _ = conversation(["Steve"])
    windows = recording_windows(y, CFG, TCFG)

    i = int(np.flatnonzero(windows.speech)[2])
    start = i * SR // 4  # a hop is 0.25 s
    # Only the window's edge frames differ: the clip's see zeros beyond its ends.
    assert np.allclose(windows.rows[i], histogram(y[start : start + SR], CFG), atol=1.0)


def test_a_recording_that_starts_with_speech_is_speech_from_its_start() -> None:
    """The first words have no quiet before them: the floor comes from the first noise_s
    seconds, not from the frames up to them alone, which are all speech."""
    y, truth = conversation(["Steve"])
    y = np.concatenate([y, 1e-4 * np.random.default_rng(1).standard_normal(2 * SR)])

    windows = recording_windows(y.astype(np.float32), CFG, TCFG)

    ((start, end, _),) = truth
    spoken = np.flatnonzero(windows.speech)
    assert spoken[0] == 0  # from the first hop
    assert bool(np.all(np.diff(spoken) == 1))  # in one run
    assert windows.times[spoken[-1]] == pytest.approx(end, abs=0.25)
    voiced = np.flatnonzero(windows.frame_speech) * windows.frame_s
    assert voiced.min() == pytest.approx(start, abs=0.03)  # before the first middle hop too


def test_a_word_in_the_last_frames_is_speech() -> None:
    quiet = 1e-4 * np.random.default_rng(0).standard_normal(3 * SR).astype(np.float32)
    y = np.concatenate([quiet, harmonics(seconds=0.3)])

    windows = recording_windows(y, CFG, TCFG)

    assert windows.speech.tolist()[-1] and not windows.speech[:-1].any()
    voiced = np.flatnonzero(windows.frame_speech) * windows.frame_s
    assert voiced.max() == pytest.approx(3.3, abs=0.03)


def test_a_steady_sound_from_the_start_is_background_not_speech() -> None:
    assert not recording_windows(harmonics(seconds=3.0), CFG, TCFG).speech.any()


def test_silence_and_a_level_under_the_floor_hold_no_speech() -> None:
    quiet = 1e-6 * np.random.default_rng(0).standard_normal(2 * SR).astype(np.float32)
    faint = np.concatenate([quiet, harmonics(seconds=2.0) * 10 ** (-70 / 20)])  # peak -76 dBFS

    assert not recording_windows(np.zeros(3 * SR, np.float32), CFG, TCFG).speech.any()
    assert not recording_windows(faint.astype(np.float32), CFG, TCFG).speech.any()


def test_a_recording_shorter_than_a_window_is_one_window() -> None:
    y, _ = conversation(["David"], takes=1)

    windows = recording_windows(y[: SR // 2], CFG, TCFG)

    assert windows.times.tolist() == [0.25]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("window_s", 0.1, "window_s=0.1 must be from 0.25 to 10 s"),
        ("hop_s", 2.0, "hop_s=2.0 must be positive and at most window_s=1.0"),
        ("smooth", 2, "smooth=2 must be an odd positive integer"),
        ("noise_s", 0.5, "noise_s=0.5 must be from window_s=1.0 to 86400 s"),
        ("noise_s", math.inf, "noise_s=inf must be from window_s=1.0 to 86400 s"),
        ("pause_s", math.inf, "pause_s=inf must be from 0 to 86400 s"),
        ("pause_s", -1.0, "pause_s=-1.0 must be from 0 to 86400 s"),
        ("claim_s", math.nan, "claim_s=nan must be from 0 to 86400 s"),
        ("claim_s", -0.5, "claim_s=-0.5 must be from 0 to 86400 s"),
        (
            "floor_dbfs",
            math.nan,
            "floor_dbfs=nan must be a number of dB at most 0 (a full-scale tone's level)",
        ),
        (
            "floor_dbfs",
            math.inf,
            "floor_dbfs=inf must be a number of dB at most 0 (a full-scale tone's level)",
        ),
        ("over_noise_db", math.nan, "over_noise_db=nan must be a number of dB >= 0"),
        ("over_noise_db", -3.0, "over_noise_db=-3.0 must be a number of dB >= 0"),
    ],
)
def test_config_refuses_bad_values_naming_them(field: str, value: float, message: str) -> None:
    with pytest.raises(ParameterError, match=f"^{re.escape(message)}$"):
        TimelineConfig(**{field: value})  # type: ignore[arg-type]


def test_a_hop_shorter_than_one_feature_frame_is_refused() -> None:
    with pytest.raises(ParameterError) as caught:
        TimelineConfig(hop_s=0.005).frames(CFG)

    assert str(caught.value) == (
        "hop_s=0.005 is shorter than one feature frame: it must be from 0.01 s to window_s=1.0"
    )


@pytest.mark.parametrize(
    ("window_s", "hop_s", "in_use"),
    [(1.0, 0.25, (1.0, 0.25)), (0.333, 0.013, (0.33, 0.01)), (0.335, 0.335, (0.33, 0.33))],
)
def test_the_window_and_hop_in_use_are_whole_frames_and_the_hop_no_longer_than_the_window(
    window_s: float, hop_s: float, in_use: tuple[float, float]
) -> None:
    assert TimelineConfig(window_s=window_s, hop_s=hop_s).in_use(CFG) == in_use


@pytest.mark.parametrize("block_frames", [1, 7, 6000])
@pytest.mark.parametrize("cut", [0, 7, 1123])  # samples off the end: any length, not whole hops
def test_band_powers_in_blocks_are_those_of_the_whole_recording(
    block_frames: int, cut: int
) -> None:
    y = conversation(["Steve"], takes=1)[0][: -cut or None]

    bands, raw_db = recording_band_powers(y, CFG, block_frames=block_frames)

    whole_bands, whole_db = band_powers(y, CFG)
    _assert_same_powers((bands, raw_db), (whole_bands, whole_db))


def test_a_long_recordings_spectrum_is_never_held_whole() -> None:
    y = (1e-3 * np.random.default_rng(0).standard_normal(10 * 60 * SR)).astype(np.float32)

    tracemalloc.start()
    try:
        recording_windows(y, CFG, TimelineConfig())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert peak < 2 * y.nbytes  # the whole spectrum and its frames: 7 times y


def _assert_same_powers(
    found: tuple[np.ndarray, np.ndarray], whole: tuple[np.ndarray, np.ndarray]
) -> None:
    """The same band powers and levels, frame for frame, to float32's rounding: BLAS may add a
    product of a few rows in another order than one of many (OpenBLAS 0.3.31 on an AMD EPYC
    differs in the last bit, 2e-7 of a band's power, where Intel machines gave equal bits)."""
    (bands, raw_db), (whole_bands, whole_db) = found, whole
    assert bands.shape == whole_bands.shape and raw_db.shape == whole_db.shape
    np.testing.assert_allclose(bands, whole_bands, rtol=1e-6, atol=0)
    np.testing.assert_allclose(raw_db, whole_db, rtol=0, atol=1e-5)


def _cut(y: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    """``y`` in blocks of ``sizes`` (repeated), as a decoder gives a recording."""
    edges = np.cumsum(np.resize(sizes, len(y)))
    return np.split(y, edges[edges < len(y)])


@pytest.mark.parametrize("sizes", [[1], [159, 160, 161], [4000], [65_536, 1, 300_000]])
@pytest.mark.parametrize("block_frames", [7, 6000])
def test_band_powers_of_a_waveform_in_blocks_are_those_of_the_whole(
    sizes: list[int], block_frames: int
) -> None:
    y = conversation(["Steve"], takes=1)[0][:-1123]
    pieces: list[tuple[np.ndarray, np.ndarray]] = []

    n_samples = band_powers_of_blocks(
        _cut(y, sizes), CFG, lambda *p: pieces.append(p), block_frames=block_frames
    )

    whole_bands, whole_db = band_powers(y, CFG)
    assert n_samples == len(y)
    joined = (np.concatenate([b for b, _ in pieces]), np.concatenate([d for _, d in pieces]))
    _assert_same_powers(joined, (whole_bands, whole_db))


def _windows_one_by_one(y: np.ndarray, tcfg: TimelineConfig) -> Windows:
    """The windows of ``y`` as the definition has them: every window of the whole recording's
    frames described in turn, each standing for its middle hop (the first from the recording's
    start, the last to its end) with the noise floor of the ``noise_s`` seconds up to that
    hop's end, or of the recording's first ``noise_s`` seconds when that is later."""
    bands, raw_db = band_powers(y, CFG)
    dbfs = raw_db - full_scale_db(CFG)
    window_frames, hop_frames = tcfg.frames(CFG)
    window_frames = min(window_frames, len(raw_db))
    noise_frames = round(tcfg.noise_s * SR / CFG.hop_length)
    middle = middle_hop(window_frames, min(hop_frames, window_frames))
    starts = range(0, len(raw_db) - window_frames + 1, hop_frames)
    rows = np.zeros((len(starts), CFG.row_width), np.float32)
    speech = np.zeros(len(starts), bool)
    frame_speech = np.zeros(len(raw_db), bool)
    for i, start in enumerate(starts):
        stop = start + window_frames
        span_from = 0 if i == 0 else start + middle.start
        heard = len(raw_db) if i == len(starts) - 1 else start + middle.stop
        recent = dbfs[max(0, heard - noise_frames) : max(heard, noise_frames)]
        row, frames = describe_window(bands[start:stop], raw_db[start:stop], recent, CFG, tcfg,
                                      span_db=raw_db[span_from:heard])  # fmt: skip
        frame_speech[span_from:heard] = frames
        if row is not None:
            rows[i], speech[i] = row, True
    centre = (np.array(starts) + (middle.start + middle.stop - 1) / 2) * CFG.hop_length
    return Windows(centre / SR, rows, speech, len(y) / SR, frame_speech, CFG.hop_length / SR)


@pytest.mark.parametrize("seconds", [0.3, 1.0, 1.005, 30.0])
@pytest.mark.parametrize("tcfg", [TCFG, TimelineConfig(window_s=0.5, hop_s=0.13, noise_s=1.0)])
def test_windows_of_a_waveform_in_blocks_are_each_window_described_in_turn(
    seconds: float, tcfg: TimelineConfig
) -> None:
    quiet = 1e-4 * np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    turns = conversation(["Steve", "David"], takes=2)[0]
    y = np.concatenate([quiet, turns])[: round(seconds * SR)]

    expected = _windows_one_by_one(y, tcfg)
    for blocks in ([y], _cut(y, [4000, 65_536])):
        found = windows_of_blocks(blocks, CFG, tcfg)
        for field in dataclasses.fields(Windows):
            assert np.array_equal(getattr(found, field.name), getattr(expected, field.name))
    assert expected.speech.any() == (seconds == 30.0)


def test_a_blocks_failure_waits_for_the_failure_of_the_recording() -> None:
    def blocks() -> Iterator[np.ndarray]:
        yield np.full(SR, 1e30, np.float32)  # finite, but its power overflows
        yield tone(440)
        raise InvalidAudioError("the decoder's verdict on the whole recording")

    with pytest.raises(InvalidAudioError, match=r"^the decoder's verdict"):
        windows_of_blocks(blocks(), CFG, TCFG)
