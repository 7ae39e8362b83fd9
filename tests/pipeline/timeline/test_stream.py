"""A live stream: PCM in pieces of any size, one answer per hop, bounded memory."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from pipeline.bundle import Bundle
from pipeline.errors import InvalidAudioError, ParameterError
from pipeline.timeline.config import TimelineConfig
from pipeline.timeline.recording import hop_labels
from pipeline.timeline.stream import Listener, pcm16_samples
from pipeline.timeline.windows import recording_windows
from tests.conversations import SR, conversation


def test_pcm16_is_read_little_endian_and_an_odd_byte_count_refused() -> None:
    assert pcm16_samples(b"\x00\x40\x00\xc0").tolist() == [0.5, -0.5]
    with pytest.raises(InvalidAudioError, match=r"^a frame of 3 bytes is not whole 16-bit"):
        pcm16_samples(b"\x00\x40\x00")


@pytest.mark.parametrize("rate", [4000, 400_000])
def test_a_rate_out_of_range_is_refused(default_bundle: Bundle, rate: int) -> None:
    with pytest.raises(ParameterError, match=f"^sample_rate={rate} must be from 8000 to 192000"):
        Listener(default_bundle, rate, TimelineConfig())


def _answers(listener: Listener, y: np.ndarray, piece: int) -> list[tuple[float, str | None]]:
    hops = []
    for i in range(0, len(y), piece):
        hops += listener.push(y[i : i + piece])
    return [(h.t, None if h.prediction is None else h.prediction.speaker) for h in hops]


@pytest.mark.parametrize("piece", [77, 333, 4000, 50_000])
def test_the_stream_answers_as_the_recording_does_whatever_the_pieces(
    default_bundle: Bundle, piece: int
) -> None:
    # A second of quiet first: a recording's first hops take their noise floor from its first
    # noise_s seconds, which a stream has not heard yet.
    y, _ = conversation(["Steve", "David"])
    quiet = 1e-4 * np.random.default_rng(1).standard_normal(SR).astype(np.float32)
    y = np.concatenate([quiet, y])
    tcfg = TimelineConfig()
    windows = recording_windows(y, default_bundle.feature_config, tcfg)
    whole = [h.speaker for h in hop_labels(default_bundle, windows)]

    answers = _answers(Listener(default_bundle, SR, tcfg), y, piece)

    assert [t for t, _ in answers] == windows.times.tolist()
    same = np.mean([a == b for (_, a), b in zip(answers, whole, strict=True)])
    assert same >= 0.9  # only a window's edge frames differ (zeros beyond them for the stream)


def test_a_48_khz_stream_names_the_same_voices(default_bundle: Bundle) -> None:
    y, truth = conversation(["Steve", "David"])
    y48 = soxr.resample(y, SR, 48_000)

    answers = _answers(Listener(default_bundle, 48_000, TimelineConfig()), y48, 4096)

    named = {s for t, s in answers if s not in (None, "unknown")}
    steve = {s for t, s in answers if truth[0][0] + 0.5 < t < truth[0][1] - 0.5} - {None}
    assert named == {"Steve", "David"} and "David" not in steve


def test_memory_stays_the_same_however_long_the_stream(default_bundle: Bundle) -> None:
    listener = Listener(default_bundle, SR, TimelineConfig())
    y, _ = conversation(["Steve", "David"])
    listener.push(y)
    held = (listener.samples.values.nbytes, listener.levels.values.nbytes)

    for _ in range(5):
        listener.push(y)

    assert (listener.samples.values.nbytes, listener.levels.values.nbytes) == held
    assert held == (16_000 * 4, 1000 * 8)  # a window of samples, noise_s of frame levels


@pytest.mark.parametrize("rate", [8000, 16_000, 44_100, 48_000])
def test_the_work_due_counts_a_window_for_each_answer_a_push_gives_or_one_more(
    default_bundle: Bundle, rate: int
) -> None:
    listener = Listener(default_bundle, rate, TimelineConfig())
    window = listener.window_samples
    pieces = np.random.default_rng(0).integers(1, 3 * rate, 200)
    noise = np.random.default_rng(1).normal(0, 0.1, int(pieces.max())).astype(np.float32)
    extra = []
    for n in pieces.tolist():
        due = listener.work_due(n)
        extra.append(due - len(listener.push(noise[:n])) * window)

    assert (window, listener.hop_samples) == (16_000, 4000)
    assert set(extra) <= {0, window}
    assert extra.count(window) <= (0 if rate == 16_000 else len(pieces) // 2)
