"""Tests of ``train``: the split, the report it writes, and the datasets it refuses."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.augment import CONDITIONS
from pipeline.bundle import TRAIN_FEATURES_FILE, load_bundle
from pipeline.config import FeatureConfig, TrainConfig
from pipeline.dataset import (
    NO_CONDITION,
    Degradation,
    copy_condition,
    file_digest,
    scan_folder,
)
from pipeline.demo.synth import VOICES, write_demo_data
from pipeline.errors import BundleError, DatasetError, ParameterError
from pipeline.train import (
    MIN_CLIPS_PER_SPEAKER,
    TrainOptions,
    feature_config_for,
    split_indices,
    train,
)
from tests.signals import encode, tone


def _report(bundle: Path) -> dict[str, object]:
    report: dict[str, object] = json.loads((bundle / "report.json").read_text())
    return report


# The split


def test_split_is_stratified_by_class() -> None:
    labels = np.array([0] * 10 + [1] * 5 + [2] * 4)

    train_idx, val_idx = split_indices(labels, 0.2, seed=0)

    assert np.bincount(labels[val_idx]).tolist() == [2, 1, 1]
    assert np.bincount(labels[train_idx]).tolist() == [8, 4, 3]
    assert sorted([*train_idx, *val_idx]) == list(range(len(labels)))
    assert train_idx.tolist() == sorted(train_idx.tolist())
    assert val_idx.tolist() == sorted(val_idx.tolist())


def test_split_is_seeded() -> None:
    labels = np.repeat(np.arange(3), 20)

    first, again, other = (split_indices(labels, 0.25, seed=s)[1] for s in (7, 7, 8))

    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_every_class_gives_at_least_one_validation_clip() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])

    _, val_idx = split_indices(labels, 0.1, seed=0)

    assert np.bincount(labels[val_idx]).tolist() == [1, 1]


# The feature config


def test_fmax_comes_from_the_lowest_source_rate(tmp_path: Path) -> None:
    for name, rate in (("a/hi.wav", 16000), ("b/lo.wav", 8000)):
        (tmp_path / name).parent.mkdir()
        (tmp_path / name).write_bytes(encode(tone(440, sample_rate=rate), rate))
    recordings = scan_folder(tmp_path)

    spread = (80.0, 20.0)
    assert feature_config_for(recordings, None) == FeatureConfig(
        fmax=3800.0, band_spread=spread, cepstra=12
    )
    assert feature_config_for(recordings, 5000.0) == FeatureConfig(
        fmax=5000.0, band_spread=spread, cepstra=12
    )


# The report of a trained bundle


def test_report_counts_files_and_writes_the_split(trained_bundle: Path) -> None:
    report = _report(trained_bundle)

    assert report["labels"] == ["David", "Steve"]
    assert report["files"] == {"found": 24, "used": 24, "skipped": 0, "decoded": 24}
    assert report["clips_per_speaker"] == {"David": 12, "Steve": 12}
    split = report["split"]
    assert isinstance(split, dict)
    assert len(split["train"]) == 20
    assert len(split["validation"]) == 4
    assert sorted(s.split("/")[0] for s in split["validation"]) == ["David"] * 2 + ["Steve"] * 2
    assert not set(split["train"]) & set(split["validation"])


def test_report_holds_validation_and_unknown_speaker_figures(trained_bundle: Path) -> None:
    report = _report(trained_bundle)

    metrics = report["metrics"]
    assert isinstance(metrics, dict)
    assert sorted(metrics) == [
        "false_accept_rate",
        "false_reject_rate",
        "n_train",
        "n_train_degraded",
        "n_val",
        "open_set_auroc",
        "train_accuracy",
        "val_accuracy",
        "val_degraded_false_reject_rate",
        "val_false_reject_rate",
    ]
    assert (metrics["n_train"], metrics["n_val"], metrics["val_accuracy"]) == (20, 4, 1.0)
    assert metrics["n_train_degraded"] == 20 * TrainConfig().copies_per_clip  # copies and crops
    unknown = report["unknown"]
    assert isinstance(unknown, dict)
    assert unknown["n"] == 6
    assert unknown["rejected"] == round(6 * (1 - unknown["false_accept_rate"]))
    assert unknown["skipped"] == []
    assert unknown["open_set_auroc"] == metrics["open_set_auroc"]
    assert 0 <= metrics["val_degraded_false_reject_rate"] <= 1


def test_the_open_set_is_calibrated_on_the_training_and_validation_clips(
    trained_bundle: Path,
) -> None:
    bundle = load_bundle(trained_bundle)
    summary, metrics = bundle.metadata.open_set, bundle.metadata.metrics

    assert summary.method == "nearest-training-clip-scaled"
    assert summary.threshold == bundle.open_set.threshold
    assert metrics.n_val > 0
    assert (
        summary.n_references == len(bundle.open_set.references) == (metrics.n_train + metrics.n_val)
    )
    assert summary.leave_one_out_false_reject_rate <= summary.quantile + 0.1


def test_the_bundle_records_which_condition_made_each_copy(
    trained_bundle: Path, demo_data: Path
) -> None:
    with np.load(trained_bundle / TRAIN_FEATURES_FILE) as npz:
        arrays = dict(npz)
    codes, has_copy = arrays["copy_conditions"], np.isfinite(arrays["copies"]).all(axis=2)
    names = arrays["condition_names"].tolist()

    assert names == list(CONDITIONS)
    assert codes.shape == has_copy.shape == (len(arrays["files"]), 4 + 2)
    assert (codes[:, 4:] == NO_CONDITION).all()  # the crops
    assert ((codes[:, :4] != NO_CONDITION) == has_copy[:, :4]).all()
    for i, file in enumerate(arrays["files"]):
        digest = file_digest(demo_data / str(file))
        assert digest is not None
        made = [copy_condition(digest, Degradation(0, c)) for c in range(4)]
        assert [names[k] for k in codes[i, :4] if k != NO_CONDITION] == [
            m for m, has in zip(made, has_copy[i, :4], strict=True) if has
        ]


def test_the_bundle_keeps_the_sha256_of_each_clip_it_learnt_from(
    trained_bundle: Path, demo_data: Path
) -> None:
    with np.load(trained_bundle / TRAIN_FEATURES_FILE) as npz:
        files, digests = npz["files"], npz["digests"]

    assert digests.shape == (len(files), 32) and digests.dtype == np.uint8
    for file, digest in zip(files, digests, strict=True):
        assert digest.tobytes().hex() == file_digest(demo_data / str(file))


def test_the_open_set_is_matched_to_the_conditions_of_the_copies(trained_bundle: Path) -> None:
    bundle = load_bundle(trained_bundle)

    thresholds = {c: m.threshold for c, m in bundle.open_set.matched.items()}
    assert thresholds == bundle.metadata.open_set.matched
    assert set(thresholds) == {"clipped", "band-limited", "noisy", "reverberant"}
    for matched in bundle.open_set.matched.values():  # a speaker's clean rows and copies
        assert (np.diff(matched.offsets) > np.diff(bundle.open_set.offsets)).all()


def test_metadata_records_training_settings(
    trained_bundle: Path, tiny_train_config: TrainConfig
) -> None:
    meta = json.loads((trained_bundle / "metadata.json").read_text())

    assert meta["training"] == tiny_train_config.to_dict() | {
        "hidden": 6,  # the width the rule chose for two speakers
        "max_seconds": 60.0,
        "fmax_derived": True,
        "hidden_pinned": False,
    }
    assert meta["architecture"] == _report(trained_bundle)["architecture"] == [60, 6, 2]
    assert meta["device"] in ("/CPU:0", "/GPU:0")
    assert meta["name"] == "model"
    assert {"python", "numpy", "keras", "librosa"} <= set(meta["versions"])


def test_a_pinned_width_is_the_networks_and_is_recorded_as_pinned(
    demo_data: Path, tiny_train_config: TrainConfig, tmp_path: Path
) -> None:
    config = dataclasses.replace(tiny_train_config, hidden=3, max_epochs=20)

    report = train(demo_data, tmp_path / "model", TrainOptions(train=config, jobs=1))

    bundle = load_bundle(tmp_path / "model")
    assert bundle.network.sizes == (60, 3, 2)
    assert report["architecture"] == [60, 3, 2]
    assert (bundle.metadata.training.hidden, bundle.metadata.training.hidden_pinned) == (3, True)


# Refusals


def test_a_speaker_with_too_few_usable_clips_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_demo_data(data, clips_per_voice=5)
    for name in ("hello_001.wav", "hello_003.wav"):
        (data / "David" / name).write_bytes(encode(np.zeros(800, np.float32)))  # silent

    with pytest.raises(DatasetError) as error:
        train(data, tmp_path / "model", TrainOptions(jobs=1))

    assert str(error.value) == (
        f"speaker 'David' has 3 usable clips; at least {MIN_CLIPS_PER_SPEAKER} are needed; "
        "skipped: David/hello_001.wav: clip is silent: peak level -inf dBFS is below -80 dBFS; "
        "David/hello_003.wav: clip is silent: peak level -inf dBFS is below -80 dBFS"
    )
    assert not (tmp_path / "model").exists()


def test_a_single_speaker_folder_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_demo_data(data, clips_per_voice=4, voices=[VOICES["Steve"]])

    with pytest.raises(DatasetError) as error:
        train(data, tmp_path / "model", TrainOptions(jobs=1))

    assert str(error.value) == f"'{data}' holds 1 speaker folder(s); at least 2 are needed"
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize(
    ("folder", "fault"),
    [
        ("unknown", "reads as 'unknown', the answer for a voice the model does not know"),
        ("red\x1b[31mX", "holds U+001B (a control character), which no answer can show"),
    ],
)
def test_a_speaker_folder_no_answer_could_name_is_refused(
    tmp_path: Path, folder: str, fault: str
) -> None:
    data = tmp_path / "data"
    write_demo_data(data, clips_per_voice=4)
    (data / "Steve").rename(data / folder)

    with pytest.raises(DatasetError) as error:
        train(data, tmp_path / "model", TrainOptions(jobs=1))

    assert str(error.value) == f"speaker folder {folder!r} of '{data}' {fault}: rename the folder"
    assert not (tmp_path / "model").exists()


def test_an_out_dir_it_should_not_replace_is_refused_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    precious = tmp_path / "photos"
    precious.mkdir()
    (precious / "cat.jpg").write_bytes(b"meow")

    def no_work(*args: object) -> None:
        raise AssertionError("training started")

    monkeypatch.setattr("pipeline.train.prepare", no_work)
    with pytest.raises(BundleError) as error:
        train(tmp_path / "data", precious)

    assert str(error.value) == (
        f"'{precious}' exists and is not a model bundle; refusing to replace it"
    )


def test_a_held_out_folder_that_is_missing_or_empty_is_refused_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held-out folders are read once training ends: a typo found then costs the whole run."""
    (tmp_path / "empty").mkdir()

    def no_work(*args: object) -> None:
        raise AssertionError("training started")

    monkeypatch.setattr("pipeline.train.prepare", no_work)
    with pytest.raises(DatasetError) as missing:
        train(tmp_path / "data", tmp_path / "model", TrainOptions(unknown_dir=tmp_path / "nowhere"))
    with pytest.raises(DatasetError) as empty:
        train(tmp_path / "data", tmp_path / "model", TrainOptions(test_dir=tmp_path / "empty"))

    assert str(missing.value) == (
        f"unknown_dir={str(tmp_path / 'nowhere')!r} does not exist or is not a folder"
    )
    assert str(empty.value).startswith(f"no recordings found in {str(tmp_path / 'empty')!r}")


@pytest.mark.parametrize("jobs", [0, -3, True])
def test_jobs_that_is_not_a_positive_integer_is_refused(jobs: int) -> None:
    with pytest.raises(ParameterError) as error:
        TrainOptions(jobs=jobs)
    assert str(error.value) == f"jobs={jobs!r} must be a positive integer"


def test_tensorflow_is_not_imported_for_data_that_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that exits while TensorFlow is still being imported aborts: refusing the data
    must come first."""
    started: list[str] = []
    monkeypatch.setattr("pipeline.train.import_in_background", started.append)
    (tmp_path / "data" / "ann").mkdir(parents=True)
    (tmp_path / "data" / "ann" / "1.wav").write_bytes(encode(tone(seconds=0.5)))

    with pytest.raises(DatasetError, match=r"holds 1 speaker folder\(s\); at least 2"):
        train(tmp_path / "data", tmp_path / "out")

    assert started == []
