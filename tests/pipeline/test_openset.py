"""Tests of the open-set decision: calibration by leave-one-out, distances, limits and files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.envelope import ORDER, Envelopes
from pipeline.errors import BundleError, ParameterError
from pipeline.network import Network
from pipeline.openset import (
    CEPSTRAL_SCALE_FLOOR,
    DEFAULT_DIMENSION,
    FEW_TAKES_CAP,
    FEW_TAKES_CAP_WITHOUT_CEPSTRA,
    FEW_TAKES_MARGIN,
    Copies,
    Decision,
    Nuisance,
    OpenSet,
    Spread,
    auroc,
    calibrate,
    count_scales,
    effective_dimension,
    equal_weight_quantile,
    few_take_cap,
    few_take_radii,
    fit_nuisance,
    fit_spread,
    leave_one_out_distances,
    leave_one_recording_out_distances,
    load_open_set,
    open_set_view,
    save_open_set,
)
from pipeline.quality.issues import Issue
from tests.helpers import switch_network

# Speaker 0 at x = 0, 1, 3 on a line; speaker 1 at x = 10, 12, 16. As many clips each: every
# scale is 1.
ROWS = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [10.0, 0.0], [12.0, 0.0], [16.0, 0.0]])
LABELS = np.array([0, 0, 0, 1, 1, 1])


def test_leave_one_out_distances_are_to_the_nearest_other_row() -> None:
    assert leave_one_out_distances(ROWS[:3]).tolist() == [1.0, 1.0, 2.0]
    assert leave_one_out_distances(ROWS[:1]).tolist() == [np.inf]


def test_the_threshold_is_the_quantile_of_the_leave_one_out_distances() -> None:
    # Leave-one-out distances: speaker 0 gives 1, 1, 2; speaker 1 gives 2, 2, 4.
    open_set, loo = calibrate(ROWS, LABELS, 2, quantile=0.0)

    assert open_set.scales is not None and open_set.scales.tolist() == [1.0, 1.0]
    assert sorted(loo.tolist()) == [1.0, 1.0, 2.0, 2.0, 2.0, 4.0]
    assert open_set.threshold == 4.0
    assert open_set.offsets.tolist() == [0, 3, 6]
    assert calibrate(ROWS, LABELS, 2, quantile=0.5)[0].threshold == 2.0
    assert calibrate(ROWS, LABELS, 2, quantile=0.9)[0].threshold == 1.0


def test_each_speaker_weighs_the_same_in_the_quantile_whatever_its_clips() -> None:
    many, few = np.ones(99), np.array([5.0])

    assert equal_weight_quantile([many, few], 0.75) == 5.0  # pooled, 5.0 is the top 1 %
    assert equal_weight_quantile([many, few], 0.5) == 1.0
    assert equal_weight_quantile([np.array([np.inf])], 0.5) == np.inf


def test_a_speaker_with_fewer_clips_gets_a_scale_for_its_sparser_clips() -> None:
    # 1 / d: with d = 2, a quarter of the median count doubles the scale.
    assert count_scales(np.array([100, 100, 25]), 2.0).tolist() == [1.0, 1.0, 2.0]
    assert count_scales(np.array([80, 80]), 5.0).tolist() == [1.0, 1.0]


def test_the_effective_dimension_is_measured_by_thinning_the_clips() -> None:
    rng = np.random.default_rng(0)
    cloud = [rng.standard_normal((400, 4)), rng.standard_normal((400, 4))]

    assert 3.0 <= effective_dimension(cloud) <= 5.5  # 4 dimensions, measured from 400 rows
    assert effective_dimension([rng.standard_normal((10, 4))]) == 5.0  # too few to measure


def test_sparse_speakers_alone_are_judged_by_their_count() -> None:
    rng = np.random.default_rng(1)
    rows = np.concatenate([rng.standard_normal((30, 3)), rng.standard_normal((12, 3)) + 20])

    open_set, _ = calibrate(rows, np.repeat([0, 1], [30, 12]), 2, quantile=0.05)

    assert open_set.scales is not None
    assert open_set.scales[1] == pytest.approx((21 / 12) ** (1 / DEFAULT_DIMENSION))


# the few-take cap of an open set without cepstral correlations, as it was measured before them
CAP_BEFORE = FEW_TAKES_CAP_WITHOUT_CEPSTRA


def test_the_few_take_cap_is_wider_where_the_cepstra_keep_strangers_out() -> None:
    with_cepstra = Spread(np.zeros(2), np.ones(2), 1.0, np.array([1.0, 0.7]))

    assert few_take_cap(with_cepstra) == FEW_TAKES_CAP == 1.0
    assert few_take_cap(Spread(np.zeros(2), np.ones(2), 1.0)) == CAP_BEFORE == 0.9
    assert few_take_cap(None) == CAP_BEFORE


def test_a_voice_of_a_dozen_takes_beside_measured_ones_gets_its_own_radius() -> None:
    rng = np.random.default_rng(1)
    dense = rng.standard_normal((400, 3))
    sparse = 3 * rng.standard_normal((12, 3)) + 20  # wider than the dense voice
    labels = np.repeat([0, 1], [400, 12])

    open_set, _ = calibrate(np.concatenate([dense, sparse]), labels, 2, quantile=0.05)
    radius = open_set.threshold * open_set.scales[1] if open_set.scales is not None else 0.0

    dense_alone, _ = calibrate(dense, np.zeros(400, dtype=int), 1, quantile=0.05)
    assert open_set.threshold == dense_alone.threshold  # its takes do not set the threshold ...
    assert open_set.scales is not None and open_set.scales[0] == 1.0  # ... nor the others' scale
    loo = leave_one_out_distances(sparse)
    assert radius == pytest.approx(few_take_radii([loo], np.sqrt(3), cap=CAP_BEFORE)[0])
    widest = max(FEW_TAKES_MARGIN * np.median(loo), loo.max())
    assert few_take_radii([loo], np.sqrt(3))[0] == min(widest, FEW_TAKES_CAP * np.sqrt(3))


@pytest.mark.parametrize(
    ("gaps", "radius"),
    [
        ([1.0, 1.0, 1.5], 2.0),  # twice the median gap
        ([1.0, 1.0, 3.0], 3.0),  # the widest gap, when more
        ([4.0, 4.0, 4.0], FEW_TAKES_CAP * 4.0),  # never beyond where other voices lie
        ([np.inf], FEW_TAKES_CAP * 4.0),  # a voice of one take
    ],
)
def test_a_few_take_radius_has_known_answers(gaps: list[float], radius: float) -> None:
    assert few_take_radii([np.array(gaps)], 4.0)[0] == pytest.approx(radius)


@pytest.mark.parametrize(
    ("gaps", "radius"),
    [
        ([0.01, 0.01, 0.02], 1.5),  # takes all but identical: the floor
        ([1.0, 1.0, 1.5], 2.0),  # wider than the floor: as without it
        ([4.0, 4.0, 4.0], FEW_TAKES_CAP * 4.0),  # the cap still holds
    ],
)
def test_a_few_take_radius_is_never_under_its_floor(gaps: list[float], radius: float) -> None:
    assert few_take_radii([np.array(gaps)], 4.0, floor=1.5)[0] == pytest.approx(radius)


def test_a_voice_of_all_but_identical_takes_is_held_no_tighter_than_the_measured_ones() -> None:
    # Five takes of one recording, as a synthetic voice or a loop played back gives them: their
    # gaps are a thousandth of the measured voice's, and so would their radius be.
    rng = np.random.default_rng(4)
    dense = rng.standard_normal((400, 3))
    takes = 1e-3 * rng.standard_normal((5, 3)) + 20
    labels = np.repeat([0, 1], [400, 5])

    open_set, _ = calibrate(np.concatenate([dense, takes]), labels, 2, quantile=0.05)

    assert open_set.scales is not None and open_set.scales[1] == 1.0
    assert (
        open_set.threshold
        == calibrate(dense, np.zeros(400, dtype=int), 1, quantile=0.05)[0].threshold
    )


def test_the_few_take_cap_is_the_standardised_input_s_spread_whatever_the_hidden_view() -> None:
    rng = np.random.default_rng(3)
    dense = rng.standard_normal((400, 2))
    lone = np.array([[50.0, 50.0]])  # a voice of one take: its radius is the cap
    z = np.concatenate([dense, lone])
    hidden = np.concatenate([np.zeros(200), np.full(200, 4.0), [2.0]])[:, None]  # variance 4.0
    labels = np.repeat([0, 1], [400, 1])

    open_set, _ = calibrate(np.hstack([z, hidden]), labels, 2, quantile=0.05, inputs=2)
    assert open_set.scales is not None
    spread = np.sqrt(2)  # the input's two unit-variance bands; the hidden column adds nothing
    assert open_set.threshold * open_set.scales[1] == pytest.approx(CAP_BEFORE * spread)


def test_duplicate_clips_do_not_tighten_the_threshold() -> None:
    doubled = np.concatenate([ROWS, ROWS])

    open_set, loo = calibrate(doubled, np.concatenate([LABELS, LABELS]), 2, quantile=0.0)

    assert open_set.threshold == 4.0  # twice the same clip would otherwise give distance 0
    assert len(open_set.references) == len(ROWS)
    assert len(loo) == len(ROWS)


def test_distance_is_to_the_nearest_row_of_the_given_speaker_only() -> None:
    open_set, _ = calibrate(ROWS, LABELS, 2, quantile=0.0)

    assert open_set.distance(np.array([2.0, 0.0]), 0) == pytest.approx(1.0)
    assert open_set.distance(np.array([2.0, 0.0]), 1) == pytest.approx(8.0)
    assert open_set.distances(np.array([[5.0, 0.0], [11.0, 1.0]]), np.array([0, 1])) == (
        pytest.approx([2.0, np.sqrt(2)])
    )


def test_distance_equals_the_brute_force_minimum() -> None:
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((500, 60)).astype(np.float32)
    open_set = OpenSet(rows, np.array([0, 200, 500]), 5.0)
    z = rng.standard_normal(60)

    expected = np.sqrt(((rows[200:] - z) ** 2).sum(axis=1)).min()

    assert open_set.distance(z, 1) == pytest.approx(expected, rel=1e-4)


def test_each_speaker_keeps_at_most_the_limit_spread_over_its_clips() -> None:
    line = np.array([[float(x), 0.0] for x in range(101)])

    open_set, _ = calibrate(line, np.zeros(101, dtype=int), 1, quantile=0.0, limit=5)

    kept = sorted(open_set.references[:, 0].tolist())
    assert len(kept) == 5
    assert kept[0] == 0.0 and kept[-1] == 100.0  # both ends of the line are covered


def test_calibrate_refuses_a_speaker_without_rows() -> None:
    with pytest.raises(ParameterError) as error:
        calibrate(ROWS, LABELS, 3, quantile=0.05)

    assert str(error.value) == "speaker 2 has no training rows for the open set"


def test_calibrate_refuses_rows_that_give_no_finite_distances() -> None:
    with pytest.raises(ParameterError) as error:
        calibrate(np.full((6, 2), 1e30), np.array([0, 0, 0, 1, 1, 1]), 2, quantile=0.05)

    assert str(error.value) == (
        "the training rows give no finite open-set distances (threshold=inf): their values are "
        "too large or not numbers"
    )


@pytest.mark.parametrize(
    ("known", "unknown", "area"),
    [
        ([0.0, 1.0], [2.0, 3.0], 1.0),
        ([2.0, 3.0], [0.0, 1.0], 0.0),
        ([0.0, 2.0], [1.0, 3.0], 0.75),
        ([1.0, 1.0], [1.0, 1.0], 0.5),
    ],
)
def test_auroc_has_known_answers(known: list[float], unknown: list[float], area: float) -> None:
    assert auroc(np.array(known), np.array(unknown)) == area


def test_auroc_needs_both_kinds() -> None:
    assert auroc(np.array([1.0]), np.zeros(0)) is None


def test_an_open_set_round_trips_through_its_file(tmp_path: Path) -> None:
    open_set, _ = calibrate(ROWS, LABELS, 2, quantile=0.0)
    save_open_set(open_set, tmp_path / "openset.npz")

    loaded = load_open_set(tmp_path / "openset.npz", 2.0, n_speakers=2, n_inputs=2)

    np.testing.assert_array_equal(loaded.references, open_set.references)
    assert loaded.offsets.tolist() == [0, 3, 6]
    assert loaded.scales is not None and loaded.scales.tolist() == [1.0, 1.0]


def test_an_open_set_saved_before_scales_loads_with_every_scale_1(tmp_path: Path) -> None:
    np.savez(tmp_path / "openset.npz", references=ROWS.astype(np.float32), offsets=[0, 3, 6])

    loaded = load_open_set(tmp_path / "openset.npz", 2.0, n_speakers=2, n_inputs=2)

    assert loaded.scales is not None and loaded.scales.tolist() == [1.0, 1.0]


def test_scales_that_are_not_positive_are_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "openset.npz", references=ROWS.astype(np.float32), offsets=[0, 3, 6],
             scales=[1.0, 0.0])  # fmt: skip

    with pytest.raises(BundleError, match="open-set scales must be 2 positive numbers"):
        load_open_set(tmp_path / "openset.npz", 2.0, n_speakers=2, n_inputs=2)


def test_an_open_set_of_another_shape_is_refused(tmp_path: Path) -> None:
    open_set, _ = calibrate(ROWS, LABELS, 2, quantile=0.0)
    save_open_set(open_set, tmp_path / "openset.npz")

    with pytest.raises(BundleError) as error:
        load_open_set(tmp_path / "openset.npz", 2.0, n_speakers=3, n_inputs=2)

    assert str(error.value).endswith(
        "references (6, 2) and offsets (3,) do not fit a network of 2 inputs and 3 speakers"
    )


def test_offsets_that_do_not_cover_the_rows_are_refused() -> None:
    with pytest.raises(ParameterError) as error:
        OpenSet(ROWS.astype(np.float32), np.array([0, 3, 4]), 1.0)

    assert str(error.value) == (
        "open-set offsets run from 0 to 4, not from 0 to the 6 reference rows"
    )


def _decision(unsure_below: float) -> Decision:
    open_set, _ = calibrate(ROWS, LABELS, 2, quantile=0.0)  # threshold 4
    network = Network(np.zeros((2, 1)), np.zeros(1), np.zeros((1, 2)), np.zeros(2),
                      "softmax", np.zeros(2), np.ones(2))  # fmt: skip
    return Decision(network, unsure_below, open_set)


@pytest.mark.parametrize(
    ("distance", "score", "poor", "reason"),
    [
        (3.0, 0.9, False, None),
        (3.0, 0.9, True, None),  # a named voice stays named whatever its recording
        (5.0, 0.9, False, "far"),
        (3.0, 0.4, False, "unsure"),
        (5.0, 0.9, True, "poor_recording"),
        (3.0, 0.4, True, "poor_recording"),
    ],
)
def test_a_refusal_of_a_poor_recording_is_blamed_on_the_recording(
    distance: float, score: float, poor: bool, reason: str | None
) -> None:
    assert _decision(unsure_below=0.5).reason(distance, score, poor) == reason


@pytest.mark.parametrize(
    ("score", "runner_up", "reason"),
    [
        (0.55, 0.45, "unsure"),  # odds 1.22: torn between two voices
        (0.55, 0.40, None),  # odds 1.375
        (0.40, 0.30, None),  # odds 1.33, the rest spread over other voices
        (0.40, 0.35, "unsure"),  # odds 1.14
    ],
)
def test_a_clip_under_the_odds_against_the_runner_up_is_unsure_whatever_the_threshold(
    score: float, runner_up: float, reason: str | None
) -> None:
    decision = _decision(unsure_below=0.0)

    assert decision.reason(3.0, score, False, runner_up=runner_up) == reason
    assert decision.reason(5.0, score, False, runner_up=runner_up) == "far"


def test_decide_holds_a_tie_between_two_voices_unsure_with_no_threshold() -> None:
    reasons = _decision(unsure_below=0.0).decide(ROWS[:2]).reasons  # both scores are 0.5

    assert reasons == ["unsure", "unsure"]


def test_decide_takes_each_rows_recording_issues() -> None:
    issue = Issue("snr_db", -5.0, 0.0, "too much background noise", "record somewhere quieter")
    decision = _decision(unsure_below=0.6)  # both scores are 0.5: every row is unsure

    reasons = decision.decide(ROWS[:2], [(), (issue,)]).reasons

    assert reasons == ["unsure", "poor_recording"]
    assert decision.decide(ROWS[:2])[3] == ["unsure", "unsure"]


# Condition-matched references. Noisy copies of clips 0 and 1 (speaker 0) and of clips 3 and 4
# (speaker 1), 5 above their clean rows.
NOISY = Copies(np.array([[0.0, 5.0], [1.0, 5.0], [10.0, 5.0], [12.0, 5.0]]), np.array([0, 1, 3, 4]),
               np.array(["noisy"] * 4))  # fmt: skip


def test_leave_one_recording_out_skips_every_row_of_the_same_recording() -> None:
    rows = np.array([[0.0, 0.0], [0.0, 1.0], [3.0, 0.0], [0.0, 4.0]])
    recordings = np.array([0, 0, 1, 2])  # rows 0 and 1: a clip and its copy

    distances = leave_one_recording_out_distances(rows, recordings, np.array([0, 1, 1, 0], bool))

    assert distances.tolist() == [3.0, 3.0]  # row 1 to row 3, not to row 0 1 away
    alone = leave_one_recording_out_distances(rows[:2], recordings[:2], np.ones(2, bool))
    assert alone.tolist() == [np.inf, np.inf]


def test_a_matched_threshold_holds_the_copies_by_leave_one_recording_out() -> None:
    # Speaker 0's copies lie 1 apart, speaker 1's 2 apart; each copy's own clean row is 5 away
    # and never counts.
    open_set, _ = calibrate(ROWS, LABELS, 2, quantile=0.0, copies=NOISY, copy_quantile=0.0)
    half, _ = calibrate(ROWS, LABELS, 2, quantile=0.0, copies=NOISY, copy_quantile=0.5)

    assert list(open_set.matched) == ["noisy"]
    noisy = open_set.matched["noisy"]
    assert noisy.threshold == 2.0 and half.matched["noisy"].threshold == 1.0
    assert noisy.offsets.tolist() == [0, 5, 10]  # each speaker's clean rows and its copies
    assert open_set.threshold == 4.0  # the clean threshold is the clean rows' alone


def test_a_few_take_voice_neither_sets_a_matched_threshold_nor_reaches_past_the_cap() -> None:
    rng = np.random.default_rng(4)
    dense = 4 * rng.standard_normal((60, 2))
    sparse = 4 * rng.standard_normal((3, 2)) + 40  # three wide takes, far from the others
    z, labels = np.concatenate([dense, sparse]), np.repeat([0, 1], [60, 3])
    of = np.arange(63)
    copies = Copies(z[of] + [0.0, 3.0], of, np.array(["noisy"] * 63))  # each copy 3 above

    open_set, _ = calibrate(z, labels, 2, quantile=0.05, copies=copies, copy_quantile=0.15)
    dense_alone, _ = calibrate(dense, np.zeros(60, dtype=int), 1, quantile=0.05,
                               copies=Copies(copies.rows[:60], of[:60], copies.conditions[:60]),
                               copy_quantile=0.15)  # fmt: skip

    noisy, alone = open_set.matched["noisy"], dense_alone.matched["noisy"]
    assert noisy.threshold == alone.threshold  # the dense voice's copies alone set it ...
    assert noisy.scales is not None and alone.scales is not None
    assert noisy.scales[0] == alone.scales[0] == 1.0  # ... and its scale is as it was
    # Three takes' copies against the dense voice's 60: the count scale alone (at least
    # (120 / 6) ** (1 / 20), the widest dimension measured) would carry the sparse voice's
    # radius past the cap (sqrt(D) for D unit-variance bands); the cap holds it.
    assert noisy.threshold * (120 / 6) ** (1 / 20) > CAP_BEFORE * np.sqrt(2)
    assert noisy.threshold * noisy.scales[1] == pytest.approx(CAP_BEFORE * np.sqrt(2))


def test_a_clip_is_judged_by_its_conditions_references_where_they_pass_more_easily() -> None:
    open_set, _ = calibrate(ROWS, LABELS, 2, quantile=0.0, copies=NOISY, copy_quantile=0.0)
    noisy_clip, clean_clip = np.array([0.5, 5.0]), np.array([2.0, 0.0])

    assert open_set.judge(noisy_clip, 0, "noisy") == (0.5, 2.0)
    assert open_set.judge(noisy_clip, 0, "clean") == pytest.approx((np.sqrt(25.25), 4.0))
    assert open_set.judge(noisy_clip, 0, "clipped") == pytest.approx((np.sqrt(25.25), 4.0))
    # A clean clip taken for a noisy one keeps the clean judgement when it passes more easily.
    assert open_set.judge(clean_clip, 0, "noisy") == (1.0, 4.0)


def test_decide_judges_each_row_under_the_condition_its_recording_resembles() -> None:
    open_set, _ = calibrate(ROWS, LABELS, 2, quantile=0.0, copies=NOISY, copy_quantile=0.0)
    network = Network(np.zeros((2, 1)), np.zeros(1), np.zeros((1, 2)), np.array([1.0, 0.0]),
                      "softmax", np.zeros(2), np.ones(2))  # fmt: skip
    decision = Decision(network, 0.4, open_set)  # every row's top speaker is 0, at odds e:1
    rows = np.array([[0.5, 5.0], [0.5, 5.0]])

    _, _, distance, reasons, _ = decision.decide(rows, None, ["noisy", "clean"])

    assert reasons == [None, "far"]
    assert distance.tolist() == [0.5, pytest.approx(np.sqrt(25.25))]
    assert decision.decide(rows)[3] == ["far", "far"]  # without conditions: all clean


def _always_speaker_0() -> Network:
    """A 2-1-2 network whose scores are softmax(1, 0) for every row: speaker 0 on top, at odds
    e:1, and speaker 1 the runner-up."""
    return Network(np.zeros((2, 1)), np.zeros(1), np.zeros((1, 2)), np.array([1.0, 0.0]),
                   "softmax", np.zeros(2), np.ones(2))  # fmt: skip


def test_a_clip_far_from_the_top_voice_and_near_the_runner_up_is_named_as_the_runner_up() -> None:
    open_set = OpenSet(ROWS.astype(np.float32), np.array([0, 3, 6]), 1.5)
    decision = Decision(_always_speaker_0(), 0.4, open_set)
    issue = Issue("clipped_fraction", 0.05, 0.01, "clipped", "lower the gain")
    # near speaker 0's x = 0; 1 from speaker 1's x = 10; 3.5 from either voice's nearest clip
    rows = np.array([[0.5, 0.0], [11.0, 0.0], [6.5, 0.0], [11.0, 0.0]])

    decided = decision.decide(rows, [(), (), (), (issue,)])

    assert decided.voices.tolist() == [0, 1, 0, 1]
    assert decided.reasons == [None, None, "far", None]  # named whatever the recording
    assert decided.distance.tolist() == [0.5, 1.0, 3.5, 1.0]


def test_the_runner_up_is_not_named_over_a_top_voice_that_is_near_but_unsure() -> None:
    open_set = OpenSet(ROWS.astype(np.float32), np.array([0, 3, 6]), 1.5)
    decision = Decision(_always_speaker_0(), 0.9, open_set)  # the top score 0.73 is unsure

    decided = decision.decide(np.array([[0.5, 0.0]]))

    assert (decided.voices.tolist(), decided.reasons) == ([0], ["unsure"])


def _envelopes_of_speaker_0() -> Envelopes:
    """Speaker 0 taught with few takes: one envelope row at the origin, radius 1; speaker 1
    judged by the open set alone."""
    return Envelopes(np.zeros((1, 2 * ORDER), np.float32), np.array([0, 1, 1]), np.array([1.0, 0]))


def _envelope(x: float) -> np.ndarray:
    row = np.zeros(2 * ORDER)
    row[0] = x
    return row


def test_a_clean_clip_far_from_a_few_take_voice_is_named_by_its_envelope() -> None:
    open_set = OpenSet(ROWS.astype(np.float32), np.array([0, 3, 6]), 1.5,
                       envelopes=_envelopes_of_speaker_0())  # fmt: skip
    decision = Decision(_always_speaker_0(), 0.4, open_set)
    rows = np.array([[6.5, 0.0]] * 2)  # 3.5 from either voice: far
    asked: list[int] = []

    def envelope_of(i: int) -> np.ndarray:
        asked.append(i)
        return _envelope([0.5, 1.5][i])  # within speaker 0's radius, and outside it

    decided = decision.decide(rows, None, None, envelope_of)

    assert decided.reasons == [None, "far"]
    assert decided.voices.tolist() == [0, 0]
    assert asked == [0, 1]
    assert decision.decide(rows)[3] == ["far", "far"]  # no clips at hand: the open set alone


def test_the_envelope_names_no_clip_that_is_degraded_unsure_or_of_a_voice_without_one() -> None:
    open_set = OpenSet(ROWS.astype(np.float32), np.array([0, 3, 6]), 1.5,
                       envelopes=_envelopes_of_speaker_0())  # fmt: skip
    issue = Issue("clipped_fraction", 0.05, 0.01, "clipped", "lower the gain")
    far = np.array([[6.5, 0.0]])
    asked: list[int] = []

    def envelope_of(i: int) -> np.ndarray:
        asked.append(i)
        return _envelope(0.0)  # on speaker 0's own row

    sure = Decision(_always_speaker_0(), 0.4, open_set)
    assert sure.decide(far, [(issue,)], None, envelope_of)[3] == ["poor_recording"]
    assert sure.decide(far, None, ["noisy"], envelope_of)[3] == ["far"]
    unsure = Decision(_always_speaker_0(), 0.9, open_set)  # the top score 0.73 is unsure
    assert unsure.decide(far, None, None, envelope_of)[3] == ["far"]
    # speaker 0 without an envelope, speaker 1 (the runner-up) taught with many clips
    plain = OpenSet(ROWS.astype(np.float32), np.array([0, 3, 6]), 1.5)
    assert Decision(_always_speaker_0(), 0.4, plain).decide(far, None, None, envelope_of)[3] == [
        "far"
    ]
    assert asked == []  # and none of them was measured


def test_a_clip_far_from_the_top_voice_is_named_as_a_runner_up_whose_envelope_it_has() -> None:
    open_set = OpenSet(ROWS.astype(np.float32), np.array([0, 3, 6]), 1.5,
                       envelopes=_envelopes_of_speaker_0())  # fmt: skip
    # speaker 1 on top at odds e:1, speaker 0, taught with few takes, the runner-up
    flipped = Network(np.zeros((2, 1)), np.zeros(1), np.zeros((1, 2)), np.array([0.0, 1.0]),
                      "softmax", np.zeros(2), np.ones(2))  # fmt: skip
    rows = np.array([[7.0, 0.0], [7.0, 0.0]])  # 4 from speaker 0, 3 from speaker 1: far

    decided = Decision(flipped, 0.4, open_set).decide(
        rows, None, None, lambda i: _envelope([0.5, 1.5][i])
    )

    assert decided.reasons == [None, "far"]
    assert decided.voices.tolist() == [0, 1]
    assert decided.distance.tolist() == [4.0, 3.0]  # to the voice it is answered as


def test_envelopes_survive_a_round_trip_and_old_files_have_none(tmp_path: Path) -> None:
    path, old = tmp_path / "openset.npz", tmp_path / "old.npz"
    open_set = OpenSet(ROWS.astype(np.float32), np.array([0, 3, 6]), 1.5,
                       envelopes=_envelopes_of_speaker_0())  # fmt: skip
    save_open_set(open_set, path)
    save_open_set(OpenSet(ROWS.astype(np.float32), np.array([0, 3, 6]), 1.5), old)

    loaded = load_open_set(path, 1.5, 2, 2)

    assert loaded.envelopes is not None
    np.testing.assert_array_equal(loaded.envelopes.references, np.zeros((1, 2 * ORDER)))
    assert loaded.envelopes.offsets.tolist() == [0, 1, 1]
    assert loaded.envelopes.radii.tolist() == [1.0, 0.0]
    assert load_open_set(old, 1.5, 2, 2).envelopes is None
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays | {"envelope.offsets": np.array([0, 1, 1, 1]),
                              "envelope.radii": np.array([1.0, 0.0, 0.0])})  # fmt: skip
    with pytest.raises(BundleError, match="envelope radii for 3 speakers, the model has 2"):
        load_open_set(bad, 1.5, 2, 2)


def test_matched_references_survive_a_round_trip_and_old_files_have_none(tmp_path: Path) -> None:
    open_set, _ = calibrate(ROWS, LABELS, 2, quantile=0.0, copies=NOISY, copy_quantile=0.0)
    path = tmp_path / "openset.npz"
    save_open_set(open_set, path)

    loaded = load_open_set(path, 4.0, 2, 2, {"noisy": 2.0})
    without = load_open_set(path, 4.0, 2, 2)

    np.testing.assert_array_equal(loaded.matched["noisy"].references,
                                  open_set.matched["noisy"].references)  # fmt: skip
    assert loaded.matched["noisy"].threshold == 2.0
    assert without.matched == {}
    with pytest.raises(BundleError, match=r"cannot read .*'clipped\.references'"):
        load_open_set(path, 4.0, 2, 2, {"clipped": 2.0})


def test_calibrate_refuses_a_copy_quantile_outside_0_to_1() -> None:
    with pytest.raises(ParameterError, match=r"copy_quantile=1.0 must be in \[0, 1\)"):
        calibrate(ROWS, LABELS, 2, quantile=0.05, copies=NOISY, copy_quantile=1.0)


def test_the_open_set_view_adds_the_weighted_hidden_activations() -> None:
    network = switch_network()  # standardises x[0] = 2 to +2, hidden units about (1, 0)
    rows = np.array([[2.0, 3.0]])
    hidden = network.forward(rows)[0]

    plain, weighted = open_set_view(network, rows, 0.0), open_set_view(network, rows, 5.0)

    assert plain.tolist() == [[2.0, 3.0]]
    np.testing.assert_allclose(weighted, [[2.0, 3.0, *(5.0 * hidden[0])]])


def test_decide_measures_distances_in_the_view_the_open_set_was_calibrated_in() -> None:
    network = switch_network()
    references = open_set_view(network, np.array([[2.0, 0.0], [0.0, 0.0]]), 5.0)
    open_set = OpenSet(references.astype(np.float32), np.array([0, 1, 2]), 0.5,
                       hidden_weight=5.0)  # fmt: skip
    rows = np.array([[2.0, 0.0], [2.0, 1.0]])  # a reference itself; one 1 away in the input

    _, _, distance, reasons, _ = Decision(network, 0.0, open_set).decide(rows)

    np.testing.assert_allclose(distance, [0.0, 1.0], atol=1e-6)
    assert reasons == [None, "far"]


def test_an_open_set_of_the_hidden_view_loads_with_its_weight(tmp_path: Path) -> None:
    open_set = OpenSet(np.zeros((2, 4), np.float32), np.array([0, 1, 2]), 1.0, hidden_weight=6.0)
    save_open_set(open_set, tmp_path / "openset.npz")

    loaded = load_open_set(tmp_path / "openset.npz", 1.0, 2, 4, hidden_weight=6.0)

    assert loaded.hidden_weight == 6.0
    with pytest.raises(BundleError, match="do not fit a network of 2 inputs"):
        load_open_set(tmp_path / "openset.npz", 1.0, 2, 2)


# The band spread after the histogram (FeatureConfig.band_spread)

SPREAD = Spread(np.array([1.0, 1.0]), np.array([2.0, 2.0]), 3.0)


def test_the_open_set_view_ends_with_the_standardised_band_spread() -> None:
    network = switch_network()  # two inputs: the spread columns after them are not its
    rows = np.array([[2.0, 3.0, 5.0, -1.0]])
    hidden = network.forward(rows[:, :2])[0]

    view = open_set_view(network, rows, 5.0, SPREAD)

    np.testing.assert_allclose(view, [[2.0, 3.0, *(5.0 * hidden[0]), 6.0, -3.0]])
    np.testing.assert_array_equal(network.forward(rows)[1], network.forward(rows[:, :2])[1])


def test_a_clip_that_differs_only_in_its_band_spread_is_far() -> None:
    network = switch_network()
    references = open_set_view(network, np.array([[2.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]]),
                               0.0, SPREAD)  # fmt: skip
    open_set = OpenSet(references.astype(np.float32), np.array([0, 1, 2]), 1.0, spread=SPREAD)
    rows = np.array([[2.0, 0.0, 1.0, 1.0], [2.0, 0.0, 3.0, 1.0]])  # the same histogram

    _, _, distance, reasons, _ = Decision(network, 0.0, open_set).decide(rows)

    np.testing.assert_allclose(distance, [0.0, 3.0], atol=1e-6)  # 3 x (3 - 1) / 2
    assert reasons == [None, "far"]


def test_the_spread_has_one_scale_and_leaves_out_the_columns_training_never_moved() -> None:
    # after one input band: columns of standard deviation 1 and 3 dB, and one never moved
    rows = np.array([[0.0, 1.0, 0.0, 7.0], [0.0, 3.0, 6.0, 7.0]])

    spread = fit_spread(rows, 1, 2.0)

    assert spread is not None
    assert spread.mean.tolist() == [2.0, 3.0, 7.0]
    assert spread.scale.tolist() == [np.sqrt(5.0), np.sqrt(5.0), np.inf]  # RMS of 1 and 3
    assert (spread.weight, spread.measured) == (2.0, 2)
    np.testing.assert_allclose(spread.view(np.array([[0.0, 2.0, 3.0, 9.0]]), 1), [[0.0, 0.0, 0.0]])
    assert fit_spread(rows, 4, 1.0) is None  # rows of the histogram alone
    assert fit_spread(rows, 1, 0.0) is None  # weight 0: left out


def test_each_cepstral_column_has_its_own_scale_and_the_cepstral_weight() -> None:
    # after one input band: two band-spread columns (sd 1 and 3 dB), then three cepstral
    # correlations: sd 0.4 and 0.8, and one of 0.1, under the floor of real speech
    rows = np.array([[0.0, 1.0, 0.0, -0.4, -0.8, 0.1], [0.0, 3.0, 6.0, 0.4, 0.8, 0.3]])

    spread = fit_spread(rows, 1, 2.0, cepstral=(3, 0.5))

    assert spread is not None and spread.column_weights is not None
    floor = CEPSTRAL_SCALE_FLOOR
    np.testing.assert_allclose(spread.scale, [np.sqrt(5.0), np.sqrt(5.0), 0.4, 0.8, floor])
    assert spread.weight == 2.0
    assert spread.column_weights.tolist() == [1.0, 1.0, 0.25, 0.25, 0.25]  # 0.5 over 2.0
    np.testing.assert_allclose(  # each correlation 1 sd from its mean counts 0.5
        spread.view(np.array([[0.0, 2.0, 3.0, 0.4, 0.8, 0.2 + floor]]), 1), [[0, 0, 0.5, 0.5, 0.5]]
    )
    assert spread.variance == pytest.approx(2.0**2 * 2 + 0.5**2 * 3)  # every column counted


def test_the_cepstra_alone_or_left_out() -> None:
    rows = np.array([[0.0, 1.0, 0.1], [0.0, 3.0, 0.3]])

    alone = fit_spread(rows, 1, 0.0, cepstral=(1, 0.7))  # the band spread weighed 0
    left_out = fit_spread(rows, 1, 1.0, cepstral=(1, 0.0))

    assert alone is not None and alone.column_weights is not None
    assert (alone.weight, alone.scale[0], alone.column_weights[1]) == (1.0, np.inf, 0.7)
    assert alone.scale[1] == CEPSTRAL_SCALE_FLOOR  # sd 0.1: less than real speech varies
    assert left_out is not None and left_out.column_weights is None
    assert left_out.scale.tolist() == [1.0, np.inf]  # as a bundle made before the cepstra
    assert fit_spread(rows, 1, 0.0, cepstral=(1, 0.0)) is None
    with pytest.raises(ParameterError, match="2 cepstral columns, but the rows carry 1"):
        fit_spread(rows[:, :2], 1, 1.0, cepstral=(2, 0.7))


def test_the_few_take_cap_counts_the_cepstral_columns_at_their_weight() -> None:
    rng = np.random.default_rng(3)
    dense = np.hstack([rng.standard_normal((400, 4)), np.zeros((400, 1))])
    lone = np.full((1, 5), 50.0)
    labels = np.repeat([0, 1], [400, 1])
    spread = Spread(np.zeros(3), np.array([1.0, 1.0, 1.0]), 1.5, np.array([1.0, 0.5, 0.5]))

    open_set, _ = calibrate(np.concatenate([dense, lone]), labels, 2, quantile=0.05, inputs=2,
                            spread=spread)  # fmt: skip

    assert open_set.scales is not None
    rms = np.sqrt(2 + 1.5**2 * (1 + 0.25 + 0.25))
    assert open_set.threshold * open_set.scales[1] == pytest.approx(FEW_TAKES_CAP * rms)


def test_the_spread_refuses_rows_of_another_width() -> None:
    with pytest.raises(ParameterError) as error:
        SPREAD.view(np.zeros((1, 3)), 2)

    assert str(error.value) == (
        "feature rows of 3 numbers, but the open set measures 2 bands and 2 numbers after them"
    )


def test_the_few_take_cap_counts_the_spread_columns_as_inputs() -> None:
    rng = np.random.default_rng(3)
    dense = np.hstack([rng.standard_normal((400, 4)), np.zeros((400, 1))])
    lone = np.full((1, 5), 50.0)  # a voice of one take: its radius is the cap
    labels = np.repeat([0, 1], [400, 1])
    spread = Spread(np.zeros(3), np.array([1.0, 1.0, np.inf]), 1.5)  # the third left out

    open_set, _ = calibrate(np.concatenate([dense, lone]), labels, 2, quantile=0.05, inputs=2,
                            spread=spread)  # fmt: skip

    assert open_set.spread is spread and open_set.scales is not None
    rms = np.sqrt(2 + 1.5**2 * 2)  # two input bands, two spread columns at weight 1.5
    assert open_set.threshold * open_set.scales[1] == pytest.approx(CAP_BEFORE * rms)


def test_an_open_set_with_a_band_spread_survives_a_round_trip(tmp_path: Path) -> None:
    open_set = OpenSet(np.zeros((2, 4), np.float32), np.array([0, 1, 2]), 1.0, spread=SPREAD)
    path = tmp_path / "openset.npz"
    save_open_set(open_set, path)

    loaded = load_open_set(path, 1.0, 2, 4, spread_weight=3.0)

    assert loaded.spread is not None
    assert (loaded.spread.mean.tolist(), loaded.spread.scale.tolist()) == ([1.0, 1.0], [2.0, 2.0])
    assert loaded.spread.weight == 3.0
    assert loaded.spread.column_weights is None
    assert load_open_set(path, 1.0, 2, 4).spread is None  # weight 0: a bundle made before it
    save_open_set(OpenSet(np.zeros((2, 4), np.float32), np.array([0, 1, 2]), 1.0), path)
    with pytest.raises(BundleError) as error:
        load_open_set(path, 1.0, 2, 4, spread_weight=3.0)
    assert str(error.value) == (
        f"{path}: cannot read the band spread's standardisation: it lacks spread.mean and "
        "spread.scale"
    )


def test_the_cepstral_weights_survive_a_round_trip(tmp_path: Path) -> None:
    spread = Spread(np.ones(2), np.array([2.0, 0.1]), 1.0, np.array([1.0, 0.7]))
    path = tmp_path / "openset.npz"
    save_open_set(OpenSet(np.zeros((2, 4), np.float32), np.array([0, 1, 2]), 1.0, spread=spread),
                  path)  # fmt: skip

    loaded = load_open_set(path, 1.0, 2, 4, spread_weight=1.0).spread

    assert loaded is not None and loaded.column_weights is not None
    assert (loaded.scale.tolist(), loaded.column_weights.tolist()) == ([2.0, 0.1], [1.0, 0.7])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"column_weights": np.ones(3)}, "the spread's column weights must be (S,) numbers >= 0"),
        ({"column_weights": np.array([1.0, -1.0])},
         "the spread's column weights must be (S,) numbers >= 0"),
        ({"scale": np.ones(3)}, "the spread's mean and scale must be (S,) arrays alike"),
        ({"scale": np.zeros(2)}, "the spread's mean must be finite, its scale and weight positive"),
        ({"weight": 0.0}, "the spread's mean must be finite, its scale and weight positive"),
        ({"mean": np.array([np.nan, 0.0])},
         "the spread's mean must be finite, its scale and weight positive"),
    ],
)  # fmt: skip
def test_a_bad_spread_is_refused(fields: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"mean": np.zeros(2), "scale": np.ones(2), "weight": 1.0} | fields

    with pytest.raises(ParameterError) as error:
        Spread(**values)  # type: ignore[arg-type]

    assert str(error.value) == message


# Room for noise

ALONG_X = Nuisance(np.array([1.0, 0.0]), 2.0)  # a clip may move up to 2 along x for free


@pytest.mark.parametrize(
    ("z", "expected"),
    [
        ([5.0, 0.0], 3.0),  # 5 along the direction, 2 of them free
        ([-1.5, 0.0], 0.0),  # within the allowance either way
        ([4.0, 3.0], 3.605551),  # sqrt(2^2 + 3^2): across the direction nothing is free
        ([0.0, 4.0], 4.0),
    ],
)
def test_a_clip_moves_along_the_noise_direction_up_to_the_limit_at_no_cost(
    z: list[float], expected: float
) -> None:
    open_set = OpenSet(np.zeros((1, 2), np.float32), np.array([0, 1]), 1.0, nuisance=ALONG_X)

    assert open_set.distance(np.array(z), 0) == pytest.approx(expected, rel=1e-5)


def test_the_noise_room_is_the_brute_force_minimum_over_every_move() -> None:
    rng = np.random.default_rng(3)
    refs = rng.standard_normal((40, 5)).astype(np.float32)
    direction = rng.standard_normal(5)
    nuisance = Nuisance(direction / np.linalg.norm(direction), 0.7)
    open_set = OpenSet(refs, np.array([0, 40]), 1.0, nuisance=nuisance)
    z = rng.standard_normal(5)
    moves = np.linspace(-0.7, 0.7, 14001)[:, None] * nuisance.direction  # steps of 1e-4

    brute = min(float(np.linalg.norm(z - moves - r, axis=1).min()) for r in refs)

    assert open_set.distance(z, 0) == pytest.approx(brute, abs=1e-4)
    assert open_set.distance(z, 0) < min(float(np.linalg.norm(z - r)) for r in refs)


def test_leave_one_out_distances_make_the_same_room_for_noise() -> None:
    rows = np.array([[0.0, 0.0], [3.0, 0.0], [3.0, 5.0]])

    assert leave_one_out_distances(rows, ALONG_X).tolist() == [1.0, 1.0, 5.0]
    assert leave_one_out_distances(rows).tolist() == [3.0, 3.0, 5.0]


def test_calibrate_measures_the_clean_distances_with_the_noise_room_and_keeps_it() -> None:
    rows = np.array([[0.0, 0.0], [3.0, 0.0], [6.0, 0.0], [20.0, 0.0], [23.0, 0.0], [26.0, 0.0]])
    labels = np.array([0, 0, 0, 1, 1, 1])

    open_set, loo = calibrate(rows, labels, 2, quantile=0.0, nuisance=ALONG_X)

    assert open_set.nuisance is ALONG_X
    assert loo.tolist() == [1.0] * 6
    assert open_set.threshold == 1.0


def test_the_noise_direction_is_the_mean_shift_of_the_noisy_copies() -> None:
    z = np.array([[0.0, 0.0], [10.0, 0.0]])
    copies = Copies(
        rows=np.array([[0.0, 3.0], [10.0, 5.0], [50.0, 50.0]]),
        of=np.array([0, 1, 0]),
        conditions=np.array(["noisy", "noisy", "clipped"]),
    )

    nuisance = fit_nuisance(z, copies, 0.5)

    assert nuisance is not None
    assert nuisance.direction.tolist() == [0.0, 1.0]
    assert nuisance.limit == 2.0  # half the mean shift of 4
    assert fit_nuisance(z, copies, 0.0) is None
    assert fit_nuisance(z, None, 1.0) is None
    no_noise = Copies(copies.rows[2:], copies.of[2:], copies.conditions[2:])
    assert fit_nuisance(z, no_noise, 1.0) is None


def test_the_matched_references_make_no_room_for_noise() -> None:
    rows = np.array([[0.0, 0.0], [1.0, 0.0], [30.0, 0.0], [31.0, 0.0]])
    copies = Copies(np.array([[0.0, 0.5], [30.0, 0.5]]), np.array([0, 2]),
                    np.array(["noisy", "noisy"]))  # fmt: skip

    open_set, _ = calibrate(rows, np.array([0, 0, 1, 1]), 2, 0.0, copies=copies,
                            nuisance=ALONG_X)  # fmt: skip

    assert open_set.nuisance is ALONG_X
    assert open_set.matched["noisy"].nuisance is None


def test_an_open_set_with_room_for_noise_survives_a_round_trip(tmp_path: Path) -> None:
    open_set = OpenSet(np.zeros((2, 2), np.float32), np.array([0, 1, 2]), 1.0, nuisance=ALONG_X)
    path = tmp_path / "openset.npz"
    save_open_set(open_set, path)

    loaded = load_open_set(path, 1.0, 2, 2, noise_limit=2.0)

    assert loaded.nuisance is not None
    assert (loaded.nuisance.direction.tolist(), loaded.nuisance.limit) == ([1.0, 0.0], 2.0)
    assert loaded.distance(np.array([5.0, 0.0]), 0) == pytest.approx(3.0)
    assert load_open_set(path, 1.0, 2, 2).nuisance is None  # limit 0: a bundle made before it
    save_open_set(OpenSet(np.zeros((2, 2), np.float32), np.array([0, 1, 2]), 1.0), path)
    with pytest.raises(BundleError) as error:
        load_open_set(path, 1.0, 2, 2, noise_limit=2.0)
    assert str(error.value) == f"{path}: cannot read the noise direction: it lacks noise.direction"


def test_a_noise_direction_of_another_width_is_refused(tmp_path: Path) -> None:
    wide = Nuisance(np.array([0.0, 0.0, 1.0]), 1.0)
    with pytest.raises(ParameterError) as error:
        OpenSet(np.zeros((2, 2), np.float32), np.array([0, 1, 2]), 1.0, nuisance=wide)
    assert str(error.value) == "the noise direction has 3 numbers, the reference rows 2"

    path = tmp_path / "openset.npz"
    with path.open("wb") as f:
        np.savez(f, references=np.zeros((2, 2), np.float32), offsets=np.array([0, 1, 2]),
                 scales=np.ones(2), **{"noise.direction": np.ones(3) / np.sqrt(3)})  # fmt: skip
    with pytest.raises(BundleError) as load_error:
        load_open_set(path, 1.0, 2, 2, noise_limit=1.0)
    assert str(load_error.value) == (
        f"{path}: cannot read the noise direction: noise.direction has shape (3,), the "
        "reference rows 2 numbers"
    )


@pytest.mark.parametrize(
    ("direction", "limit", "message"),
    [
        ([3.0, 4.0], 1.0, "the noise direction must have length 1, not 5"),
        ([np.nan, 1.0], 1.0, "the noise direction must be a finite (D,) array"),
        ([1.0, 0.0], 0.0, "the noise allowance's limit 0.0 must be positive"),
        ([1.0, 0.0], np.inf, "the noise allowance's limit inf must be positive"),
    ],
)
def test_a_bad_noise_allowance_is_refused(
    direction: list[float], limit: float, message: str
) -> None:
    with pytest.raises(ParameterError) as error:
        Nuisance(np.array(direction), limit)

    assert str(error.value) == message
