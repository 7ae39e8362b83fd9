"""Tests of the figures: accuracy, per-speaker precision and recall, confusion, the decision."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.bundle import Bundle, load_bundle
from pipeline.config import FeatureConfig
from pipeline.demo.synth import write_demo_data
from pipeline.errors import DatasetError, ParameterError
from pipeline.evaluate import (
    UNSURE_CEILING,
    calibrate_threshold,
    case_mismatches,
    classification_report,
    condition_figures,
    evaluate_folder,
    open_set_rates,
)
from pipeline.network import Network
from pipeline.openset import Decision, OpenSet
from pipeline.predict import Judged
from pipeline.quality.issues import Issue
from tests.helpers import switch_network

LABELS = ["left", "right"]
LEFT, RIGHT = [2.0, 0.0], [0.0, 0.0]  # rows the switch network gives to "left" and "right"


def test_classification_report_counts_hits_per_speaker() -> None:
    features = np.array([LEFT, LEFT, RIGHT, RIGHT, RIGHT])
    speakers = ["left", "right", "right", "right", "left"]  # rows 1 and 4 are mistaken

    report = classification_report(Decision(switch_network(), 0.5), LABELS, features, speakers)

    assert report["accuracy"] == 3 / 5
    assert report["answers"] == {"named_right": 3, "named_wrong": 2, "unknown": 0}
    assert (report["named_right_rate"], report["named_wrong_rate"]) == (3 / 5, 2 / 5)
    assert report["false_reject_rate"] == 0.0
    assert report["n"] == 5
    assert report["labels"] == LABELS
    assert report["confusion"] == [[1, 1], [1, 2]]  # rows: true, columns: predicted
    assert report["per_speaker"] == {
        "left": {"precision": 1 / 2, "recall": 1 / 2, "count": 2},
        "right": {"precision": 2 / 3, "recall": 2 / 3, "count": 3},
    }


def test_a_threshold_above_every_score_rejects_every_clip() -> None:
    features = np.array([LEFT, RIGHT])

    report = classification_report(Decision(switch_network(), 1.01), LABELS, features, LABELS)

    assert report["accuracy"] == 1.0
    assert report["answers"] == {"named_right": 0, "named_wrong": 0, "unknown": 2}
    assert (report["named_right_rate"], report["named_wrong_rate"]) == (0.0, 0.0)
    assert report["false_reject_rate"] == 1.0


def test_a_speaker_never_predicted_has_zero_precision() -> None:
    features = np.array([LEFT, LEFT])

    report = classification_report(Decision(switch_network(), 0.0), LABELS, features, LABELS)

    assert report["per_speaker"]["right"] == {"precision": 0.0, "recall": 0.0, "count": 1}


def test_no_clips_give_zeros() -> None:
    report = classification_report(Decision(switch_network(), 0.5), LABELS, np.zeros((0, 2)), [])

    assert (report["accuracy"], report["n"], report["false_reject_rate"]) == (0.0, 0, 0.0)
    assert report["confusion"] == [[0, 0], [0, 0]]


def test_folders_matching_a_label_only_in_case_are_named_with_the_label() -> None:
    warnings = case_mismatches(["Dad", "dad", "mum", "Stranger"], ["Dad", "Mum"])

    assert warnings == [
        "folder 'dad' matches no label, only 'Dad' in another case: its clips count as unknown "
        "speakers (labels are case-sensitive; rename the folder)",
        "folder 'mum' matches no label, only 'Mum' in another case: its clips count as unknown "
        "speakers (labels are case-sensitive; rename the folder)",
    ]


@pytest.mark.parametrize(
    ("scores", "quantile", "threshold"),
    [
        ([0.9, 0.75, 0.7, 0.8], 0.25, 0.7),  # the lower of the two values around the quantile
        ([0.9, 0.75, 0.7, 0.8], 0.5, 0.75),
        ([0.9, 0.3, 0.7, 0.8], 0.25, 0.3),  # no floor: torn clips are the odds rule's
        ([0.99, 0.98, 0.97], 0.25, UNSURE_CEILING),  # never above the ceiling
        ([0.9, 0.5, 0.7, 0.8], 0.0, 0.0),  # 0: accept everything
        ([], 0.05, 0.0),
    ],
)
def test_calibrate_threshold_keeps_the_share_asked_for(
    scores: list[float], quantile: float, threshold: float
) -> None:
    assert calibrate_threshold(np.array(scores), quantile) == threshold


def test_a_new_voice_s_low_validation_clip_leaves_a_clip_torn_between_two_voices_unsure() -> None:
    # Two voices' validation clips score high; a new voice's two score 0.98 and 0.456.
    scores = np.array([0.99, 0.98, 0.97, 0.99, 0.98, 0.456])
    speakers = np.array([0, 0, 0, 1, 1, 2])
    threshold = calibrate_threshold(scores, 0.01, speakers)
    net = switch_network()

    decision = Decision(net, threshold)

    assert threshold == 0.456
    # 0.485 against 0.479 for another voice is no answer, however low the threshold fell ...
    assert decision.reason(0.0, top_score=0.485, poor_recording=False, runner_up=0.479) == "unsure"
    # ... while 0.485 against 0.3 (odds above 1.25) names the voice
    assert decision.reason(0.0, top_score=0.485, poor_recording=False, runner_up=0.3) is None


def test_open_set_rates_count_unknown_clips_that_pass() -> None:
    net = switch_network()
    _, scores = net.forward(np.array([LEFT, [1.0, 0.0]]))  # sure, then undecided (0.5, 0.5)

    rates = open_set_rates(Decision(net, 0.9), np.array([LEFT, [1.0, 0.0]]))

    assert scores[1].tolist() == [0.5, 0.5]
    assert rates == {"n": 2, "false_accept_rate": 0.5, "rejected": 1, "poor_recording": 0}
    poor = open_set_rates(Decision(net, 0.9), np.array([[1.0, 0.0]]), [(CLIPPED,)])
    assert (poor["rejected"], poor["poor_recording"]) == (1, 1)
    assert open_set_rates(Decision(net, 0.9), np.zeros((0, 2))) == {
        "n": 0,
        "false_accept_rate": 0.0,
        "rejected": 0,
        "poor_recording": 0,
    }


def _near_left_only(threshold: float) -> Decision:
    """The switch network with one reference row per speaker: "left" at LEFT, "right" at RIGHT
    (standardised: (2, 0) and (-2, 0))."""
    open_set = OpenSet(np.array([[2.0, 0.0], [-2.0, 0.0]], np.float32), np.array([0, 1, 2]),
                       threshold)  # fmt: skip
    return Decision(switch_network(), 0.5, open_set)


def test_a_clip_far_from_its_speakers_clips_is_rejected_as_far() -> None:
    far_left = [2.0, 3.0]  # standardised (2, 3): 3 from the "left" reference

    _, _, distance, reasons, _ = _near_left_only(2.5).decide(np.array([LEFT, far_left]))

    assert distance.tolist() == pytest.approx([0.0, 3.0])
    assert reasons == [None, "far"]


def test_far_clips_of_known_speakers_count_as_false_rejects() -> None:
    report = classification_report(
        _near_left_only(2.5), LABELS, np.array([LEFT, [2.0, 3.0]]), ["left", "left"]
    )

    assert (report["accuracy"], report["named_right_rate"]) == (1.0, 0.5)
    assert report["false_reject_rate"] == 0.5


CLIPPED = Issue("clipped_fraction", 0.2, 0.01, "the recording is clipped", "lower the gain")
NOISY = Issue("snr_db", -4.0, 0.0, "too much background noise", "record somewhere quieter")


def test_condition_figures_split_known_and_unknown_clips_by_their_recording() -> None:
    far_left = [2.0, 3.0]  # refused as far from "left"; as poor_recording when its recording is
    features = np.array([LEFT, RIGHT, far_left, LEFT, far_left, LEFT, far_left])
    speakers = ["left", "left", "left", "left", "left", "nobody", "nobody"]
    found: list[tuple[Issue, ...]] = [(), (), (), (CLIPPED,), (CLIPPED, NOISY), (), (NOISY,)]
    judged = Judged(found, [()] * len(found), ["clean"] * len(found))

    figures = condition_figures(_near_left_only(2.5), LABELS, features, speakers, judged)

    assert figures["clean"] == {
        "n": 3, "coverage": 2 / 3, "named_precision": 1 / 2, "false_reject_rate": 1 / 3,
        "poor_recording": 0.0, "n_unknown_speakers": 1, "false_accept_rate": 1.0,
    }  # fmt: skip
    assert figures["clipped"] == {
        "n": 2, "coverage": 1 / 2, "named_precision": 1.0, "false_reject_rate": 1 / 2,
        "poor_recording": 1.0, "n_unknown_speakers": 0, "false_accept_rate": None,
    }  # fmt: skip
    assert figures["noisy"] == {
        "n": 0, "coverage": None, "named_precision": None, "false_reject_rate": None,
        "poor_recording": None, "n_unknown_speakers": 1, "false_accept_rate": 0.0,
    }  # fmt: skip
    assert list(figures) == ["clean", "short", "clipped", "band-limited", "noisy", "quiet"]


def test_a_runner_up_named_where_the_top_voice_is_far_counts_as_what_the_user_is_told() -> None:
    # Speaker 0 is always on top (softmax(1, 0)); the clip lies on speaker 1's one reference.
    network = Network(np.zeros((2, 1)), np.zeros(1), np.zeros((1, 2)), np.array([1.0, 0.0]),
                      "softmax", np.zeros(2), np.ones(2))  # fmt: skip
    open_set = OpenSet(np.array([[0.0, 0.0], [10.0, 0.0]], np.float32), np.array([0, 1, 2]), 1.0)

    report = classification_report(Decision(network, 0.4, open_set), ["a", "b"],
                                   np.array([[10.0, 0.5]]), ["b"])  # fmt: skip

    assert report["answers"] == {"named_right": 1, "named_wrong": 0, "unknown": 0}
    assert report["accuracy"] == 0.0  # the network's own top label is "a"


# evaluate_folder's arguments


def test_a_bundle_gives_its_own_labels_and_config(default_bundle: Bundle, tmp_path: Path) -> None:
    held_out = tmp_path / "held_out"  # clips the shipped model was not trained on
    write_demo_data(held_out, clips_per_voice=12, seed=9)

    by_bundle = evaluate_folder(str(held_out), default_bundle, jobs=1)
    by_parts = evaluate_folder(
        held_out, default_bundle.decision(), default_bundle.labels,
        default_bundle.feature_config, jobs=1,
    )  # fmt: skip
    assert by_bundle == by_parts
    assert by_bundle["n"] == 24


@pytest.mark.parametrize(
    ("labels", "cfg", "message"),
    [
        (["george"], None,
         "labels=['george'] are not the model's labels ('David', 'Steve'): leave them out to use "
         "the model's"),
        (None, FeatureConfig(fmax=3800.0),
         "cfg is not the model's feature config: leave it out to use the model's"),
    ],
)  # fmt: skip
def test_labels_or_config_of_another_model_are_refused(
    default_bundle: Bundle, demo_data: Path, labels: list[str] | None,
    cfg: FeatureConfig | None, message: str,
) -> None:  # fmt: skip
    with pytest.raises(ParameterError) as caught:
        evaluate_folder(demo_data, default_bundle, labels, cfg)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ("george", "labels='george' must be a list of the model's speaker names"),
        (["george"], "labels=['george'] are 1; the model has 2"),
    ],
)
def test_labels_must_match_a_decision_s_outputs(
    default_bundle: Bundle, demo_data: Path, labels: object, message: str
) -> None:
    decision = default_bundle.decision()
    with pytest.raises(ParameterError) as caught:
        evaluate_folder(demo_data, decision, labels, default_bundle.feature_config)  # type: ignore[arg-type]
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("folder", "jobs", "message"),
    [
        (None, None, "folder=None must be a path: a str or an os.PathLike"),
        (".", 0, "jobs=0 must be a positive integer"),
        (".", -3, "jobs=-3 must be a positive integer"),
    ],
)
def test_bad_arguments_are_parameter_errors(
    default_bundle: Bundle, demo_data: Path, folder: str | None, jobs: int | None, message: str
) -> None:
    with pytest.raises(ParameterError) as caught:
        evaluate_folder(demo_data if folder == "." else folder, default_bundle, jobs=jobs)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_a_folder_without_a_usable_clip_is_a_dataset_error(
    default_bundle: Bundle, tmp_path: Path
) -> None:
    for speaker in ("Steve", "David"):
        (tmp_path / speaker).mkdir()
        (tmp_path / speaker / "empty.wav").write_bytes(b"")
    with pytest.raises(DatasetError) as caught:
        evaluate_folder(tmp_path, default_bundle, jobs=1)
    assert str(caught.value) == (
        f"no usable clips in {str(tmp_path)!r}: David/empty.wav: clip is empty (0 bytes); "
        "Steve/empty.wav: clip is empty (0 bytes)"
    )


def test_the_clips_a_bundle_learnt_from_are_not_scored_under_any_name(
    trained_bundle: Path, demo_data: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "held_out"
    fresh = write_demo_data(folder, clips_per_voice=3, seed=9)
    for take in sorted(demo_data.glob("*/*.wav"))[:5]:  # renamed copies of training clips
        shutil.copy(take, folder / take.parent.name / f"again_{take.name}")

    report = evaluate_folder(folder, load_bundle(trained_bundle))

    assert report["n"] == sum(len(paths) for paths in fresh.values()) == 6
    assert report["warnings"] == [
        "5 clip(s) have the same bytes as clips the model learnt from: skipped, not scored"
    ]


def test_a_folder_of_only_the_clips_a_bundle_learnt_from_says_to_hold_some_out(
    trained_bundle: Path, demo_data: Path
) -> None:
    with pytest.raises(DatasetError) as refused:
        evaluate_folder(demo_data, load_bundle(trained_bundle))

    assert str(refused.value) == (
        f"every clip in {str(demo_data)!r} (24) is one the model learnt from, so its figures "
        "would say nothing of new recordings: evaluate on clips it has not heard (keep some of "
        "each speaker's out of the training folder)"
    )
