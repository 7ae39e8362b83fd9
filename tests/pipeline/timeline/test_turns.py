"""Smoothing hop labels, merging them into turns, totals and RTTM."""

from __future__ import annotations

import numpy as np

from pipeline.timeline.turns import (
    HopLabel,
    Segment,
    bridge_pauses,
    claim_unknown,
    merge_turns,
    refine_edges,
    smooth_labels,
    speaking_time,
    to_rttm,
)


def test_a_one_hop_flicker_is_smoothed_away_and_a_two_hop_run_kept() -> None:
    hops = ["A", "A", "B", "A", "A", "B", "B", "A"]

    assert smooth_labels(hops, 3) == ["A", "A", "A", "A", "A", "B", "B", "A"]  # an end ties


def test_a_width_of_one_changes_nothing_and_ties_keep_the_hop() -> None:
    hops = ["A", None, "B", "A"]

    assert smooth_labels(hops, 1) == hops
    assert smooth_labels(["A", "B"], 3) == ["A", "B"]


U = "unknown"


def test_an_unknown_stretch_inside_a_turn_and_heard_as_its_voice_is_that_voice() -> None:
    speakers = ["A", "A", U, U, U, "A", None, "B", U, U, U, "B"]
    heard_as = ["A", "A", "A", "B", "A", "A", None, "B", "A", "A", "B", "B"]

    claimed = claim_unknown(speakers, heard_as, inside=3, edge=1, unknown=U)

    # The first stretch is heard mostly as A, between two runs of A; the second mostly as A,
    # between two runs of B: a stranger who sounds like A, not B, stays unknown.
    assert claimed == ["A", "A", "A", "A", "A", "A", None, "B", U, U, U, "B"]


def test_only_stretches_up_to_the_limits_are_claimed() -> None:
    speakers = ["A", U, U, U, U, "A", None, U, U, "B", "B", U, None]
    heard_as = ["A", "A", "A", "A", "A", "A", None, "B", "B", "B", "B", "B", None]

    claimed = claim_unknown(speakers, heard_as, inside=3, edge=1, unknown=U)
    edges = claim_unknown(speakers, heard_as, inside=3, edge=2, unknown=U)

    assert claimed == ["A", U, U, U, U, "A", None, U, U, "B", "B", "B", None]  # 4 > inside
    assert edges == ["A", U, U, U, U, "A", None, "B", "B", "B", "B", "B", None]
    assert claim_unknown(speakers, heard_as, inside=0, edge=0, unknown=U) == speakers


def test_a_stretch_heard_as_its_voice_by_half_its_hops_or_fewer_stays_unknown() -> None:
    speakers = ["A", U, U, "A"]

    assert claim_unknown(speakers, ["A", "A", "B", "A"], inside=4, edge=4, unknown=U) == speakers


def test_runs_become_segments_silence_none_and_the_ends_reach_the_recording() -> None:
    speakers = ["A", "A", None, "unknown", "B", "B"]
    far = [HopLabel("unknown", 0.5, "far"), HopLabel("unknown", 0.6, "far")]
    labels = [HopLabel("A", 0.9), HopLabel("A", 0.7), HopLabel(None), far[0], HopLabel("B", 0.8),
              far[1]]  # fmt: skip
    times = np.array([0.5, 0.75, 1.0, 1.25, 1.5, 1.75])

    segments = merge_turns(labels, speakers, times, 0.25, 2.0, "unknown")

    assert segments == [
        Segment(0.0, 0.875, "A", 0.8, False, None),
        Segment(1.125, 1.375, "unknown", 0.5, True, "far"),
        Segment(1.375, 2.0, "B", 0.8, False, None),
    ]


def test_speaking_time_sums_each_speakers_segments_most_first() -> None:
    segments = [Segment(0, 1, "A", 1, False, None), Segment(1, 4, "B", 1, False, None),
                Segment(5, 5.5, "A", 1, False, None)]  # fmt: skip

    assert speaking_time(segments) == {"B": 3.0, "A": 1.5}


def test_rttm_lines_follow_nist_fields_without_spaces() -> None:
    segments = [Segment(0.5, 1.75, "Anna Lee", 0.9, False, None),
                Segment(2.0, 2.5, "unknown", 0.4, True, "far")]  # fmt: skip

    assert to_rttm(segments, "my talk") == (
        "SPEAKER my_talk 1 0.500 1.250 <NA> <NA> Anna_Lee <NA> <NA>\n"
        "SPEAKER my_talk 1 2.000 0.500 <NA> <NA> unknown <NA> <NA>\n"
    )


def test_short_pauses_go_to_the_speech_around_them_and_long_ones_stay_silent() -> None:
    hops = [None, "A", None, "A", None, None, "B", None, None, None, "B", None]

    assert bridge_pauses(hops, 2) == [None, "A", "A", "A", "A", "B", "B", None, None, None, "B",
                                      None]  # fmt: skip
    assert bridge_pauses(hops, 0) == hops


def test_edges_that_meet_silence_move_to_the_nearest_speech_frame() -> None:
    frames = np.zeros(200, bool)  # 10 ms frames
    frames[52:90] = True  # speech from 0.515 s to 0.895 s
    frames[120:150] = True
    segments = [Segment(0.375, 0.875, "A", 1, False, None), Segment(0.875, 1.625, "B", 1, False,
                None)]  # fmt: skip

    refined = refine_edges(segments, frames, 0.01, 0.25)

    assert [(s.start, s.end) for s in refined] == [(0.515, 0.875), (0.875, 1.495)]


def test_edges_across_a_short_silence_meet_at_its_middle_and_never_cross() -> None:
    frames = np.zeros(200, bool)  # 10 ms frames
    frames[50:] = True  # speech on through the silent hop between the turns
    segments = [Segment(0.5, 1.0, "A", 1, False, None), Segment(1.25, 2.0, "B", 1, False, None)]

    refined = refine_edges(segments, frames, 0.01, 0.25)

    assert [(s.start, s.end) for s in refined] == [(0.495, 1.125), (1.125, 1.995)]
