"""Tests of the model bundle: what a trained one holds, atomic writes, and every refusal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from pipeline.bundle import FORMAT_VERSION, MODEL_FILE, load_bundle, sha256_file, write_bundle
from pipeline.config import FeatureConfig, default_fmax
from pipeline.errors import BundleError
from pipeline.evaluate import calibrate_threshold
from pipeline.features import FEATURE_VERSION

BUNDLE_FILES = [
    "confusion_matrix.png",
    "metadata.json",
    "model.keras",
    "report.json",
    "train_features.npz",
    "training_curves.png",
]


@pytest.fixture
def bundle_copy(trained_bundle: Path, tmp_path: Path) -> Path:
    """A copy of the session's bundle that a test may damage."""
    return Path(shutil.copytree(trained_bundle, tmp_path / "model"))


def _edit_metadata(bundle: Path, **changes: Any) -> None:
    path = bundle / "metadata.json"
    meta = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            del meta[key]
        else:
            meta[key] = value
    path.write_text(json.dumps(meta))


def _load_error(bundle: Path) -> str:
    with pytest.raises(BundleError) as error:
        load_bundle(bundle)
    return str(error.value)


def _write(out_dir: Path, model_bytes: bytes = b"model", **metadata: Any) -> Path:
    """write_bundle with a stand-in model file: enough to test the folder handling."""
    return write_bundle(
        out_dir,
        save_model=lambda path: Path(path).write_bytes(model_bytes),
        metadata={"labels": ["a", "b"], **metadata},
        files={"report.json": b"{}"},
        arrays={"train_features.npz": {"features": np.zeros((2, 3), np.float32)}},
    )


# A trained bundle, read back


def test_a_trained_bundle_holds_every_file(trained_bundle: Path) -> None:
    assert sorted(p.name for p in trained_bundle.iterdir()) == BUNDLE_FILES
    for name in ("training_curves.png", "confusion_matrix.png"):
        assert (trained_bundle / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_load_bundle_reads_back_labels_config_and_threshold(trained_bundle: Path) -> None:
    bundle = load_bundle(trained_bundle)
    meta = json.loads((trained_bundle / "metadata.json").read_text())

    assert bundle.labels == ("David", "Steve")
    assert bundle.feature_config == FeatureConfig(fmax=default_fmax(16000))
    assert bundle.feature_config.to_dict() == meta["feature_config"]
    assert bundle.threshold == meta["threshold"]
    assert bundle.network.sizes == (60, 6, 2)
    assert bundle.network.output_activation == "softmax"
    assert bundle.name == "model"
    assert bundle.version == sha256_file(trained_bundle / MODEL_FILE)[:12]
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["architecture"] == [60, 6, 2]


def test_threshold_is_the_calibrated_quantile_of_validation_scores(trained_bundle: Path) -> None:
    bundle = load_bundle(trained_bundle)
    report = json.loads((trained_bundle / "report.json").read_text())
    with np.load(trained_bundle / "train_features.npz") as saved:
        rows = dict(zip(saved["files"].tolist(), saved["features"], strict=True))
    validation = np.array([rows[name] for name in report["split"]["validation"]])

    _, scores = bundle.network.forward(validation)

    assert bundle.threshold == calibrate_threshold(scores.max(axis=1), 0.05)


def test_bundle_predictions_equal_the_keras_model_in_it(trained_bundle: Path) -> None:
    bundle = load_bundle(trained_bundle)
    model = keras.saving.load_model(trained_bundle / MODEL_FILE, compile=False)
    with np.load(trained_bundle / "train_features.npz") as saved:
        features, labels = saved["features"], saved["labels"]

    _, scores = bundle.network.forward(features)

    standardised = (features - bundle.network.mean) / bundle.network.scale
    np.testing.assert_allclose(scores, model(standardised.astype(np.float32)).numpy(), atol=1e-5)
    np.testing.assert_array_equal(scores.argmax(axis=1), labels)  # two distinct voices
    np.testing.assert_array_equal(load_bundle(trained_bundle).network.forward(features)[1], scores)


# Refusals


def test_a_tampered_model_file_fails_its_checksum(bundle_copy: Path) -> None:
    model_path = bundle_copy / MODEL_FILE
    expected = json.loads((bundle_copy / "metadata.json").read_text())["model_sha256"]
    with model_path.open("ab") as f:
        f.write(b"\x00")
    actual = sha256_file(model_path)

    assert _load_error(bundle_copy) == (
        f"{model_path} does not match its checksum: sha256 is {actual[:12]}..., "
        f"metadata.json expects {expected[:12]}..."
    )


def test_a_damaged_model_file_with_a_matching_checksum_cannot_load(bundle_copy: Path) -> None:
    model_path = bundle_copy / MODEL_FILE
    model_path.write_bytes(b"not a keras file")
    _edit_metadata(bundle_copy, model_sha256=sha256_file(model_path))

    assert _load_error(bundle_copy).startswith(f"cannot load {model_path}: ")


def test_a_missing_model_file_is_refused(bundle_copy: Path) -> None:
    (bundle_copy / MODEL_FILE).unlink()

    assert (
        _load_error(bundle_copy) == f"'{bundle_copy}' is not a model bundle: model.keras is missing"
    )


def test_missing_metadata_is_refused(bundle_copy: Path) -> None:
    (bundle_copy / "metadata.json").unlink()

    assert _load_error(bundle_copy) == (
        f"'{bundle_copy}' is not a model bundle: metadata.json is missing"
    )


def test_a_missing_folder_is_refused(tmp_path: Path) -> None:
    assert _load_error(tmp_path / "nowhere") == (
        f"model bundle '{tmp_path / 'nowhere'}' does not exist or is not a folder"
    )


def test_metadata_that_is_not_json_is_refused(bundle_copy: Path) -> None:
    (bundle_copy / "metadata.json").write_text("")

    assert _load_error(bundle_copy) == (
        f"{bundle_copy / 'metadata.json'} is not valid JSON: "
        "Expecting value: line 1 column 1 (char 0)"
    )


def test_metadata_without_required_keys_is_refused(bundle_copy: Path) -> None:
    _edit_metadata(bundle_copy, labels=None, threshold=None)

    assert _load_error(bundle_copy) == f"{bundle_copy / 'metadata.json'} lacks labels, threshold"


@pytest.mark.parametrize("version", [FEATURE_VERSION - 1, None])
def test_features_of_another_version_are_refused(bundle_copy: Path, version: int | None) -> None:
    _edit_metadata(bundle_copy, feature_version=version)

    assert _load_error(bundle_copy) == (
        f"bundle features are version {version!r}, but this voiceid computes version "
        f"{FEATURE_VERSION}: train the model again"
    )


def test_another_format_version_is_refused(bundle_copy: Path) -> None:
    _edit_metadata(bundle_copy, format_version=FORMAT_VERSION + 1)

    assert _load_error(bundle_copy) == (
        f"bundle format version {FORMAT_VERSION + 1} is not supported "
        f"(this voiceid reads version {FORMAT_VERSION})"
    )


def test_more_labels_than_outputs_is_refused(bundle_copy: Path) -> None:
    _edit_metadata(bundle_copy, labels=["David", "Steve", "Zoe"])

    assert _load_error(bundle_copy) == (
        f"bundle '{bundle_copy}' does not check out: the model has 2 outputs for 3 labels"
    )


def test_a_feature_config_that_does_not_fit_the_model_is_refused(bundle_copy: Path) -> None:
    meta = json.loads((bundle_copy / "metadata.json").read_text())
    _edit_metadata(
        bundle_copy,
        feature_config=meta["feature_config"] | {"n_bands": 40},
        normalisation={"mean": [0.0] * 59, "scale": [1.0] * 59},
    )

    assert _load_error(bundle_copy) == (
        f"bundle '{bundle_copy}' does not check out: the model takes 60 inputs but the feature "
        "config has 40 bands; normalisation statistics are not of length 60"
    )


def test_a_non_positive_scale_is_refused(bundle_copy: Path) -> None:
    _edit_metadata(bundle_copy, normalisation={"mean": [0.0] * 60, "scale": [0.0] * 60})

    assert _load_error(bundle_copy) == (
        f"bundle '{bundle_copy}' does not check out: "
        "normalisation scale must be finite and positive"
    )


def test_an_invalid_feature_config_is_refused(bundle_copy: Path) -> None:
    _edit_metadata(bundle_copy, feature_config={"n_bands": 60, "window": "hann"})

    assert _load_error(bundle_copy) == (
        f"{bundle_copy / 'metadata.json'} is inconsistent: unknown feature config keys: window"
    )


# Writing


def test_write_bundle_records_format_version_and_checksum(tmp_path: Path) -> None:
    out = _write(tmp_path / "model", model_bytes=b"weights")

    meta = json.loads((out / "metadata.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["model_sha256"] == sha256_file(out / MODEL_FILE)
    assert sorted(p.name for p in out.iterdir()) == [
        "metadata.json",
        "model.keras",
        "report.json",
        "train_features.npz",
    ]


def test_replacing_a_bundle_leaves_no_temporary_folders(tmp_path: Path) -> None:
    _write(tmp_path / "model", model_bytes=b"first")

    _write(tmp_path / "model", model_bytes=b"second")

    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    assert (tmp_path / "model" / MODEL_FILE).read_bytes() == b"second"


def test_a_failed_write_keeps_the_old_bundle_and_no_temporary_folders(tmp_path: Path) -> None:
    _write(tmp_path / "model", model_bytes=b"first")

    def failing_save(path: Path) -> None:
        path.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_bundle(tmp_path / "model", save_model=failing_save, metadata={}, files={}, arrays={})

    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    assert (tmp_path / "model" / MODEL_FILE).read_bytes() == b"first"


def test_an_empty_folder_may_become_a_bundle(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()

    _write(tmp_path / "model")

    assert (tmp_path / "model" / "metadata.json").is_file()


def test_a_folder_that_is_not_a_bundle_is_not_replaced(tmp_path: Path) -> None:
    precious = tmp_path / "photos"
    precious.mkdir()
    (precious / "cat.jpg").write_bytes(b"meow")

    with pytest.raises(BundleError) as error:
        _write(precious)

    assert str(error.value) == (
        f"'{precious}' exists and is not a model bundle; refusing to replace it"
    )
    assert [p.name for p in precious.iterdir()] == ["cat.jpg"]
    assert (precious / "cat.jpg").read_bytes() == b"meow"
    assert [p.name for p in tmp_path.iterdir()] == ["photos"]


def test_a_file_in_the_way_is_not_replaced(tmp_path: Path) -> None:
    in_the_way = tmp_path / "model"
    in_the_way.write_bytes(b"keep")

    with pytest.raises(BundleError) as error:
        _write(in_the_way)

    assert str(error.value) == (
        f"'{in_the_way}' exists and is not a model bundle; refusing to replace it"
    )
    assert in_the_way.read_bytes() == b"keep"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
