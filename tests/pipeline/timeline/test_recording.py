"""A whole recording's timeline with the shipped model: turns, totals, and its limits."""

from __future__ import annotations

import itertools

import pytest

from pipeline.bundle import Bundle
from pipeline.errors import InvalidAudioError
from pipeline.timeline.config import TimelineConfig
from pipeline.timeline.recording import timeline, timeline_of_clip
from tests.conversations import conversation
from tests.signals import encode


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
