"""A whole recording's timeline with the shipped model: turns, totals, and its limits."""

from __future__ import annotations

import itertools
import os
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from pipeline.audio import decode
from pipeline.bundle import Bundle
from pipeline.errors import InvalidAudioError
from pipeline.timeline import recording
from pipeline.timeline.config import TimelineConfig
from pipeline.timeline.recording import hop_labels, timeline, timeline_of_clip
from pipeline.timeline.turns import HopLabel
from pipeline.timeline.windows import Windows, recording_windows
from tests.conversations import conversation
from tests.signals import SR, encode


def test_steve_then_david_are_named_in_turn_with_their_speaking_time(
    default_bundle: Bundle,
) -> None:
    y, truth = conversation(["Steve", "David", "Steve"])

    found = timeline(default_bundle, y, TimelineConfig())

    known = [s for s in found.segments if not s.unknown]
    for start, end, name in truth:  # each turn's named speech is its own voice alone
        inside = [s.speaker for s in known if s.start < end and s.end > start]
        assert set(inside) == {name}
    assert set(found.totals) <= {"Steve", "David", "unknown"}
    assert found.totals["Steve"] > found.totals["David"] > 0
    assert found.hops == len(y) // 4000 - 3


def test_silence_between_turns_is_no_segment(default_bundle: Bundle) -> None:
    y, truth = conversation(["Steve", "David"])

    found = timeline(default_bundle, y, TimelineConfig())

    gap = (truth[0][1] + 0.3, truth[1][0] - 0.3)  # well inside the silence
    assert [s for s in found.segments if s.start < gap[1] and s.end > gap[0]] == []


def test_a_recording_over_the_limit_is_refused_naming_it(default_bundle: Bundle) -> None:
    y, _ = conversation(["Steve"])

    with pytest.raises(InvalidAudioError, match=r"long; the maximum is 1 s$"):
        timeline_of_clip(default_bundle, encode(y), TimelineConfig(), max_seconds=1.0)


@pytest.mark.parametrize("hop_s", [0.125, 0.013])
def test_a_hop_of_part_of_a_feature_frame_is_used_and_given_in_whole_frames(
    default_bundle: Bundle, hop_s: float
) -> None:
    y, _ = conversation(["Steve", "David", "Steve"])

    found = timeline(default_bundle, y, TimelineConfig(hop_s=hop_s))

    overlaps = [(a, b) for a, b in itertools.pairwise(found.segments) if b.start < a.end]
    assert overlaps == []
    assert (found.window_s, found.hop_s) == (1.0, round(hop_s, 2))


@pytest.mark.parametrize("given", ["bytes", "path"])
def test_a_long_recording_is_never_held_whole(
    default_bundle: Bundle, tmp_path: Path, given: str
) -> None:
    y = (1e-3 * np.random.default_rng(0).standard_normal(15 * 60 * SR)).astype(np.float32)
    path = tmp_path / "long.wav"
    path.write_bytes(encode(y))
    source = path.read_bytes() if given == "bytes" else path

    tracemalloc.start()
    try:
        found = timeline_of_clip(default_bundle, source, TimelineConfig(), max_seconds=3600)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert found.duration_s == 900.0
    assert peak < y.nbytes  # decoded whole, it took 4 times y (and a path the limit in bytes)


def _labels_and_peak(bundle: Bundle, windows: Windows) -> tuple[list[HopLabel], int]:
    tracemalloc.start()
    try:
        labels = hop_labels(bundle, windows)
        return list(labels), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_long_recording_s_windows_are_named_in_batches_as_in_one(
    default_bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    y, _ = conversation(["Steve", "David", "Steve"])
    one = recording_windows(y, default_bundle.feature_config, TimelineConfig())
    n = 120  # copies: 5,520 windows, 23 minutes
    windows = Windows(np.arange(n * len(one.speech)) * 0.25, np.tile(one.rows, (n, 1)),
                      np.tile(one.speech, n), n * one.duration_s,
                      np.tile(one.frame_speech, n), one.frame_s)  # fmt: skip

    batched, batched_peak = _labels_and_peak(default_bundle, windows)
    monkeypatch.setattr(recording, "NAMING_BATCH", len(windows.speech))
    whole, whole_peak = _labels_and_peak(default_bundle, windows)

    assert (len(windows.speech), int(windows.speech.sum())) == (5520, 4320)
    assert batched == whole
    assert {label.speaker for label in batched} == {None, "Steve", "David", "unknown"}
    assert batched_peak < whole_peak / 2


@pytest.mark.requires_ffmpeg
@pytest.mark.parametrize("given", ["bytes", "path", "pipe"])
def test_a_flac_libsndfile_fails_on_part_way_is_decoded_whole_as_a_clip_is(
    default_bundle: Bundle, tmp_path: Path, given: str
) -> None:
    y, _ = conversation(["Steve", "David", "Steve"])
    data = encode(y, fmt="FLAC")
    data = data[: len(data) * 3 // 4]  # libsndfile loses sync part-way; ffmpeg reads on
    path = tmp_path / "cut.flac"
    path.write_bytes(data)
    if given == "pipe":  # as <(...) gives it: read once, so what was read is decoded whole
        read_end, write_end = os.pipe()
        path = Path(f"/dev/fd/{read_end}")
        writer = threading.Thread(target=_write_and_close, args=(write_end, data))
        writer.start()

    try:
        found = timeline_of_clip(
            default_bundle, data if given == "bytes" else path, TimelineConfig()
        )
    finally:
        if given == "pipe":
            writer.join()
            os.close(read_end)

    clip = decode(data, sample_rate=default_bundle.feature_config.sample_rate, max_seconds=600)
    assert found == timeline(default_bundle, clip.samples, TimelineConfig())
    assert found.duration_s > 4  # past libsndfile's first block


def _write_and_close(fd: int, data: bytes) -> None:
    with os.fdopen(fd, "wb") as pipe:
        pipe.write(data)
