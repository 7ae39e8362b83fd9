"""Tests of the model bundle: what a trained one holds, atomic writes, and every refusal."""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from pipeline.bundle import (
    FORMAT_VERSION,
    KERAS_FILE,
    NETWORK_FILE,
    OPEN_SET_FILE,
    Bundle,
    check_out_dir,
    load_bundle,
    sha256_file,
    write_bundle,
)
from pipeline.config import FeatureConfig, default_fmax
from pipeline.errors import BundleError
from pipeline.evaluate import calibrate_threshold
from pipeline.features import FEATURE_VERSION
from pipeline.metadata import ModelDescription, OpenSetSummary
from pipeline.network import save_network
from pipeline.openset import OpenSet
from tests.helpers import MODEL_DIR, ROOT

BUNDLE_FILES = [
    "confusion_matrix.png",
    "metadata.json",
    "model.keras",
    "network.npz",
    "openset.npz",
    "report.json",
    "train_features.npz",
    "training_curves.png",
]


@pytest.fixture
def trained_copy(trained_bundle: Path, tmp_path: Path) -> Path:
    """A copy of the session's trained bundle that a test may damage."""
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


def _description(bundle: Bundle) -> ModelDescription:
    """What the trainer said about ``bundle``: its metadata less what write_bundle adds."""
    fields = ModelDescription.model_fields
    return ModelDescription(**{k: v for k, v in dict(bundle.metadata).items() if k in fields})


def _write(out_dir: Path, keras_bytes: bytes = b"model") -> Path:
    """write_bundle with the shipped network and a stand-in Keras file: enough to test the
    folder handling."""
    shipped = load_bundle(MODEL_DIR)
    return write_bundle(
        out_dir,
        network=shipped.network,
        open_set=shipped.open_set,
        description=_description(shipped),
        save_keras=lambda path: Path(path).write_bytes(keras_bytes),
        files={"report.json": b"{}"},
        arrays={"train_features.npz": {"features": np.zeros((2, 3), np.float32)}},
    )


def _replace_network(bundle: Path, **arrays: Any) -> Path:
    """Save the bundle's network with ``arrays`` changed, under a matching checksum."""
    network = dataclasses.replace(load_bundle(bundle).network, **arrays)
    path = bundle / NETWORK_FILE
    save_network(network, path)
    _edit_metadata(bundle, network_sha256=sha256_file(path))
    return path


# A trained bundle, read back


def test_a_trained_bundle_holds_every_file(trained_bundle: Path) -> None:
    assert sorted(p.name for p in trained_bundle.iterdir()) == BUNDLE_FILES
    for name in ("training_curves.png", "confusion_matrix.png"):
        assert (trained_bundle / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_load_bundle_reads_back_labels_config_and_threshold(trained_bundle: Path) -> None:
    bundle = load_bundle(trained_bundle)
    meta = json.loads((trained_bundle / "metadata.json").read_text())

    assert bundle.labels == ("David", "Steve")
    assert bundle.feature_config == FeatureConfig(
        fmax=default_fmax(16000), band_spread=(80, 20), cepstra=12
    )
    assert bundle.feature_config.to_dict() == meta["feature_config"]
    assert bundle.threshold == meta["threshold"]
    assert bundle.network.sizes == (60, 6, 2)
    assert bundle.network.output_activation == "softmax"
    assert bundle.name == "model"
    assert bundle.version == sha256_file(trained_bundle / NETWORK_FILE)[:12]
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["architecture"] == [60, 6, 2]
    assert bundle.metadata.model_dump(mode="json") == meta


def _with_old_training_record(bundle: Path, hidden: int) -> None:
    """Make ``bundle``'s training record one from before the width followed the speaker count:
    a ``hidden`` width, and no word on whether it was pinned."""
    meta = json.loads((bundle / "metadata.json").read_text())
    meta["training"].pop("hidden_pinned", None)
    _edit_metadata(bundle, training=meta["training"] | {"hidden": hidden})


def test_a_bundle_from_before_the_width_rule_had_the_classic_width_by_default(
    bundle_copy: Path,
) -> None:
    _with_old_training_record(bundle_copy, 6)

    training = load_bundle(bundle_copy).metadata.training

    assert (training.hidden, training.hidden_pinned) == (6, False)


def test_a_bundle_from_before_the_width_rule_with_another_width_had_it_pinned(
    bundle_copy: Path,
) -> None:
    _with_old_training_record(bundle_copy, 16)

    training = load_bundle(bundle_copy).metadata.training

    assert (training.hidden, training.hidden_pinned) == (16, True)


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
    model = keras.saving.load_model(trained_bundle / KERAS_FILE, compile=False)
    with np.load(trained_bundle / "train_features.npz") as saved:
        features, labels = saved["features"], saved["labels"]

    _, scores = bundle.network.forward(features)

    # each band's mean, then its 80th and 20th percentiles, then 66 cepstral correlations
    assert features.shape[1] == 3 * 60 + 66
    standardised = (features[:, :60] - bundle.network.mean) / bundle.network.scale
    np.testing.assert_allclose(scores, model(standardised.astype(np.float32)).numpy(), atol=1e-5)
    np.testing.assert_array_equal(scores.argmax(axis=1), labels)  # two distinct voices
    np.testing.assert_array_equal(load_bundle(trained_bundle).network.forward(features)[1], scores)


def test_a_bundle_without_its_keras_export_loads_and_predicts_the_same(
    trained_copy: Path, trained_bundle: Path
) -> None:
    (trained_copy / KERAS_FILE).unlink()
    with np.load(trained_bundle / "train_features.npz") as saved:
        features = saved["features"]

    _, scores = load_bundle(trained_copy).network.forward(features)

    np.testing.assert_array_equal(scores, load_bundle(trained_bundle).network.forward(features)[1])


def test_loading_a_bundle_does_not_import_tensorflow() -> None:
    code = (
        "import sys; from pipeline.bundle import load_bundle; "
        "b = load_bundle('models/default'); "
        "print(b.network.sizes, 'tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout

    assert out.strip() == "(60, 6, 2) False False"


# Refusals


def test_a_tampered_network_fails_its_checksum(trained_copy: Path) -> None:
    network_path = trained_copy / NETWORK_FILE
    expected = json.loads((trained_copy / "metadata.json").read_text())["network_sha256"]
    with network_path.open("ab") as f:
        f.write(b"\x00")
    actual = sha256_file(network_path)

    assert _load_error(trained_copy) == (
        f"{network_path} does not match its checksum: sha256 is {actual[:12]}..., "
        f"metadata.json expects {expected[:12]}..."
    )


def test_a_damaged_network_with_a_matching_checksum_cannot_load(trained_copy: Path) -> None:
    network_path = trained_copy / NETWORK_FILE
    network_path.write_bytes(b"not an npz file")
    _edit_metadata(trained_copy, network_sha256=sha256_file(network_path))

    assert _load_error(trained_copy).startswith(f"cannot read {network_path}: ")


def test_a_missing_network_is_refused(trained_copy: Path) -> None:
    (trained_copy / NETWORK_FILE).unlink()

    assert _load_error(trained_copy) == (
        f"'{trained_copy}' is not a model bundle: network.npz is missing"
    )


def test_a_network_lacking_an_array_is_refused(trained_copy: Path) -> None:
    path = trained_copy / NETWORK_FILE
    with np.load(path) as saved:
        kept = {name: saved[name] for name in saved.files if name != "scale"}
    np.savez(path, **kept)
    _edit_metadata(trained_copy, network_sha256=sha256_file(path))

    assert _load_error(trained_copy) == f"{path} lacks scale"


def test_network_arrays_that_do_not_chain_are_refused(trained_copy: Path) -> None:
    path = _replace_network(trained_copy, output_bias=np.zeros(3))

    assert _load_error(trained_copy) == (
        f"{path}: array shapes do not chain from inputs to outputs: hidden_kernel (60, 6), "
        "hidden_bias (6,), output_kernel (6, 2), output_bias (3,), mean (60,), scale (60,)"
    )


def test_a_band_spread_standardised_over_other_numbers_than_the_rows_carry_is_refused(
    trained_copy: Path,
) -> None:
    path = trained_copy / OPEN_SET_FILE
    with np.load(path) as saved:
        arrays = {name: saved[name] for name in saved.files}
    arrays["spread.mean"], arrays["spread.scale"] = np.zeros(100), np.ones(100)
    arrays["spread.column_weights"] = np.ones(100)
    np.savez(path, **arrays)
    _edit_metadata(trained_copy, openset_sha256=sha256_file(path))

    assert _load_error(trained_copy) == (
        f"{path}: the numbers after the histogram are standardised over 100, but the feature "
        "config's rows carry 186"
    )


def test_a_non_positive_scale_is_refused(trained_copy: Path) -> None:
    path = _replace_network(trained_copy, scale=np.zeros(60))

    assert _load_error(trained_copy) == f"{path}: the normalisation scale must be positive"


def test_non_finite_weights_are_refused(trained_copy: Path) -> None:
    path = _replace_network(trained_copy, hidden_bias=np.full(6, np.nan))

    assert _load_error(trained_copy) == f"{path}: hidden_bias hold non-finite values"


def test_an_unknown_output_activation_is_refused(trained_copy: Path) -> None:
    path = trained_copy / NETWORK_FILE
    with np.load(path) as saved:
        members = {name: saved[name] for name in saved.files}
    np.savez(path, **(members | {"output_activation": np.array("relu")}))
    _edit_metadata(trained_copy, network_sha256=sha256_file(path))

    assert _load_error(trained_copy) == (
        f"{path}: output activation 'relu' must be 'softmax' or 'sigmoid'"
    )


def test_missing_metadata_is_refused(trained_copy: Path) -> None:
    (trained_copy / "metadata.json").unlink()

    assert _load_error(trained_copy) == (
        f"'{trained_copy}' is not a model bundle: metadata.json is missing"
    )


def test_a_missing_folder_is_refused(tmp_path: Path) -> None:
    assert _load_error(tmp_path / "nowhere") == (
        f"model bundle '{tmp_path / 'nowhere'}' does not exist or is not a folder"
    )


def test_a_file_given_as_the_bundle_is_refused_saying_a_bundle_is_a_folder(
    tmp_path: Path,
) -> None:
    clip = tmp_path / "new clip.wav"  # as 'voiceid predict new-clip.wav MODEL' gives it
    clip.write_bytes(b"RIFF")

    assert _load_error(clip) == (
        f"model bundle '{clip}' is a file, not a folder: a bundle is the folder training wrote, "
        "and commands take it before the clips"
    )


def test_metadata_that_is_not_json_is_refused(trained_copy: Path) -> None:
    (trained_copy / "metadata.json").write_text("")

    assert _load_error(trained_copy) == (
        f"{trained_copy / 'metadata.json'} is not valid JSON: "
        "Expecting value: line 1 column 1 (char 0)"
    )


def test_metadata_without_required_keys_is_refused(trained_copy: Path) -> None:
    _edit_metadata(trained_copy, labels=None, threshold=None)

    assert _load_error(trained_copy) == (
        f"{trained_copy / 'metadata.json'} is inconsistent: lacks labels, threshold"
    )


def test_metadata_with_bad_values_is_refused_naming_them(trained_copy: Path) -> None:
    _edit_metadata(trained_copy, threshold=1.5, output_activation="relu", surplus=1)

    assert _load_error(trained_copy) == (
        f"{trained_copy / 'metadata.json'} is inconsistent: "
        "threshold=1.5: Input should be less than or equal to 1; "
        "output_activation='relu': Input should be 'softmax' or 'sigmoid'; "
        "surplus=1: Extra inputs are not permitted"
    )


@pytest.mark.parametrize("version", [FEATURE_VERSION - 1, None])
def test_features_of_another_version_are_refused(trained_copy: Path, version: int | None) -> None:
    _edit_metadata(trained_copy, feature_version=version)

    assert _load_error(trained_copy) == (
        f"bundle features are version {version!r}, but this voiceid computes version "
        f"{FEATURE_VERSION}: train the model again"
    )


def test_another_format_version_is_refused(trained_copy: Path) -> None:
    _edit_metadata(trained_copy, format_version=FORMAT_VERSION + 1)

    assert _load_error(trained_copy) == (
        f"bundle format version {FORMAT_VERSION + 1} is not supported "
        f"(this voiceid reads version {FORMAT_VERSION})"
    )


def test_a_format_1_bundle_is_refused_saying_how_to_convert_it(trained_copy: Path) -> None:
    _edit_metadata(trained_copy, format_version=1)

    assert _load_error(trained_copy) == (
        f"bundle '{trained_copy}' is format version 1, but this voiceid reads version 2: "
        f"upgrade it with `voiceid convert {trained_copy}`, or train it again"
    )


def test_more_labels_than_outputs_is_refused(trained_copy: Path) -> None:
    _edit_metadata(trained_copy, labels=["David", "Steve", "Zoe"])

    assert _load_error(trained_copy) == (
        f"bundle '{trained_copy}' does not check out: the model has 2 outputs for 3 labels"
    )


def test_a_feature_config_that_does_not_fit_the_model_is_refused(trained_copy: Path) -> None:
    meta = json.loads((trained_copy / "metadata.json").read_text())
    _edit_metadata(
        trained_copy,
        feature_config=meta["feature_config"] | {"n_bands": 40},
        architecture=[40, 6, 2],
        output_activation="sigmoid",
    )

    assert _load_error(trained_copy) == (
        f"bundle '{trained_copy}' does not check out: the model takes 60 inputs but the feature "
        "config has 40 bands; the arrays are (60, 6, 2), the metadata says (40, 6, 2); "
        "the arrays' output activation is 'softmax', the metadata says 'sigmoid'"
    )


def test_an_invalid_feature_config_is_refused(trained_copy: Path) -> None:
    _edit_metadata(trained_copy, feature_config={"n_bands": 60, "window": "hann"})

    assert _load_error(trained_copy) == (
        f"{trained_copy / 'metadata.json'} is inconsistent: "
        "feature_config={'n_bands': 60, 'window': 'hann'}: unknown keys: window"
    )


@pytest.mark.parametrize(
    ("where", "value", "problem"),
    [
        (
            ("labels",),
            ["David", "David"],
            "labels=['David', 'David']: each label must be there once, but ['David'] repeat",
        ),
        (("labels",), ["David", ""], "labels.1='': String should have at least 1 character"),
        (
            ("labels",),
            ["David", "Ste\nve"],
            "labels=['David', 'Ste\\nve']: label 'Ste\\nve' holds U+000A (a control character), "
            "which no answer can show",
        ),
        (
            ("labels",),
            ["David", "Unknown"],
            "labels=['David', 'Unknown']: label 'Unknown' reads as 'unknown', the answer for a "
            "voice the model does not know",
        ),
        (("feature_config", "n_fft"), 10**9, "n_fft=1000000000 must be from 32 to 16384 samples"),
        (("feature_config", "n_fft"), 1, "n_fft=1 must be from 32 to 16384 samples"),
        (
            ("feature_config", "sample_rate"),
            10**12,
            "sample_rate=1000000000000 must be from 8000 to 192000 Hz",
        ),
        (
            ("feature_config", "hop_length"),
            10**9,
            "hop_length=1000000000 must be at most n_fft=512 samples",
        ),
        (("threshold",), "0.5", "threshold='0.5': a string where a number belongs"),
        (("threshold",), True, "threshold=True: a boolean where a number belongs"),
        (
            ("open_set", "matched", "noisy"),
            "5",
            "open_set.matched.noisy='5': a string where a number belongs",
        ),
        (
            ("feature_config", "n_bands"),
            "60",
            "feature_config.n_bands='60': a string where a number belongs",
        ),
        (("training", "augment"), 1, "training.augment=1: a number where a boolean belongs"),
        (
            ("training", "augment"),
            "false",
            "training.augment='false': a string where a boolean belongs",
        ),
        (
            ("open_set", "hidden_weight"),
            1e308,
            "open_set.hidden_weight=1e+308: Input should be less than or equal to 1000",
        ),
        (
            ("open_set", "threshold"),
            math.nan,
            "open_set.threshold=nan: Input should be a finite number",
        ),
        (
            ("open_set", "matched", "noisy"),
            -5.0,
            "open_set.matched.noisy=-5.0: Input should be greater than or equal to 0",
        ),
        (
            ("open_set", "matched", "noisy"),
            math.nan,
            "open_set.matched.noisy=nan: Input should be a finite number",
        ),
    ],
)
def test_tampered_metadata_is_refused_naming_the_field(
    trained_copy: Path, where: tuple[str, ...], value: object, problem: str
) -> None:
    path = trained_copy / "metadata.json"
    meta = json.loads(path.read_text())
    parent = meta
    for key in where[:-1]:
        parent = parent[key]
    parent[where[-1]] = value
    path.write_text(json.dumps(meta))

    message = _load_error(trained_copy)

    assert message.startswith(f"{path} is inconsistent: ")
    assert message.endswith(problem)


def test_a_feature_config_whose_bands_span_no_fft_bin_is_refused(trained_copy: Path) -> None:
    meta = json.loads((trained_copy / "metadata.json").read_text())
    fmax = meta["feature_config"]["fmax"]
    _edit_metadata(trained_copy, feature_config=meta["feature_config"] | {"fmin": fmax - 1})

    assert _load_error(trained_copy) == (
        f"{trained_copy / 'metadata.json'}: 60 of the feature config's 60 bands span no FFT bin "
        f"(fmin={fmax - 1!r}, fmax={fmax!r}, n_fft=512, sample_rate=16000), so they would read "
        "nothing"
    )


# Writing


def test_a_bundle_from_before_the_hidden_view_and_matched_references_loads_as_before(
    tmp_path: Path, trained_bundle: Path
) -> None:
    trained = load_bundle(trained_bundle)
    d = trained.network.sizes[0]
    plain = OpenSet(trained.open_set.references[:, :d], trained.open_set.offsets, 4.0)
    summary = trained.metadata.open_set.model_dump(
        exclude={"hidden_weight", "matched", "spread_weight", "noise_limit"}
    )
    histogram_only = dataclasses.replace(trained.feature_config, band_spread=(), cepstra=0)
    description = _description(trained).model_copy(
        update={"open_set": OpenSetSummary(**summary), "feature_config": histogram_only}
    )
    write_bundle(tmp_path / "old", network=trained.network, open_set=plain,
                 description=description, files={}, arrays={})  # fmt: skip
    meta = json.loads((tmp_path / "old" / "metadata.json").read_text())
    del meta["open_set"]["hidden_weight"], meta["open_set"]["matched"]
    del meta["open_set"]["spread_weight"], meta["feature_config"]["band_spread"]
    del meta["open_set"]["noise_limit"], meta["feature_config"]["cepstra"]
    del meta["feature_config"]["cepstral_floor_db"], meta["feature_config"]["cepstral_frames"]
    (tmp_path / "old" / "metadata.json").write_text(json.dumps(meta))

    old = load_bundle(tmp_path / "old")

    assert (old.open_set.hidden_weight, old.open_set.matched, old.open_set.spread) == (
        0.0,
        {},
        None,
    )
    assert old.open_set.nuisance is None
    assert old.feature_config.band_spread == ()
    assert old.feature_config.row_width == d
    assert old.open_set.references.shape[1] == d
    rows = np.zeros((1, d))
    assert old.decision().decide(rows, None, ["noisy"])[2] == old.decision().decide(rows)[2]


def test_a_trained_bundle_measures_in_the_hidden_view(trained_bundle: Path) -> None:
    bundle = load_bundle(trained_bundle)
    d, h, _ = bundle.network.sizes

    assert bundle.metadata.open_set.hidden_weight == bundle.open_set.hidden_weight == 6.0
    assert bundle.metadata.open_set.spread_weight == 1.0
    spread = bundle.open_set.spread
    width = d + h + 2 * d + 66  # the histogram, the hidden view, the band spread, the cepstra
    assert spread is not None and spread.mean.shape == (2 * d + 66,)
    assert spread.column_weights is not None
    assert spread.column_weights.tolist() == [1.0] * 2 * d + [0.7] * 66
    assert bundle.open_set.references.shape[1] == width
    assert all(m.references.shape[1] == width for m in bundle.open_set.matched.values())


def test_a_trained_bundle_makes_room_for_noise_along_its_noisy_copies(trained_bundle: Path) -> None:
    bundle = load_bundle(trained_bundle)
    nuisance = bundle.open_set.nuisance
    d, h, _ = bundle.network.sizes

    assert nuisance is not None
    assert bundle.metadata.open_set.noise_limit == nuisance.limit > 0
    assert nuisance.direction.shape == (d + h + 2 * d + 66,)
    assert float(np.linalg.norm(nuisance.direction)) == pytest.approx(1.0)
    assert all(m.nuisance is None for m in bundle.open_set.matched.values())


def test_write_bundle_records_format_version_and_checksum(tmp_path: Path) -> None:
    out = _write(tmp_path / "model", keras_bytes=b"weights")

    meta = json.loads((out / "metadata.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["network_sha256"] == sha256_file(out / NETWORK_FILE)
    assert meta["openset_sha256"] == sha256_file(out / OPEN_SET_FILE)
    assert sorted(p.name for p in out.iterdir()) == [
        "metadata.json",
        "model.keras",
        "network.npz",
        "openset.npz",
        "report.json",
        "train_features.npz",
    ]
    assert load_bundle(out).metadata == load_bundle(MODEL_DIR).metadata


def test_write_bundle_refuses_a_network_that_does_not_fit_its_description(
    tmp_path: Path,
) -> None:
    shipped = load_bundle(MODEL_DIR)
    description = _description(shipped).model_copy(update={"labels": ("a", "b", "c")})

    with pytest.raises(BundleError) as error:
        write_bundle(tmp_path / "m", network=shipped.network, open_set=shipped.open_set,
                     description=description, files={}, arrays={})  # fmt: skip

    assert str(error.value) == (
        f"bundle '{tmp_path / 'm'}' does not check out: the model has 2 outputs for 3 labels"
    )
    assert list(tmp_path.iterdir()) == []


def test_replacing_a_bundle_leaves_no_temporary_folders(tmp_path: Path) -> None:
    _write(tmp_path / "model", keras_bytes=b"first")

    _write(tmp_path / "model", keras_bytes=b"second")

    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    assert (tmp_path / "model" / KERAS_FILE).read_bytes() == b"second"


def test_a_failed_write_keeps_the_old_bundle_and_no_temporary_folders(tmp_path: Path) -> None:
    _write(tmp_path / "model", keras_bytes=b"first")
    shipped = load_bundle(MODEL_DIR)

    def failing_save(path: Path) -> None:
        path.write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    with pytest.raises(BundleError) as error:
        write_bundle(tmp_path / "model", network=shipped.network, open_set=shipped.open_set,
                     description=_description(shipped), save_keras=failing_save,
                     files={}, arrays={})  # fmt: skip

    assert str(error.value) == (
        f"cannot write a bundle at '{tmp_path / 'model'}': No space left on device"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    assert (tmp_path / "model" / KERAS_FILE).read_bytes() == b"first"


def test_a_bundle_that_would_not_load_is_not_written_and_the_old_one_is_kept(
    tmp_path: Path,
) -> None:
    _write(tmp_path / "model", keras_bytes=b"first")
    shipped = load_bundle(MODEL_DIR)
    references = shipped.open_set.references.copy()
    references[0, 0] = np.nan
    broken = dataclasses.replace(shipped.open_set, references=references)

    with pytest.raises(BundleError) as error:
        write_bundle(tmp_path / "model", network=shipped.network, open_set=broken,
                     description=_description(shipped), files={}, arrays={})  # fmt: skip

    assert str(error.value) == (
        f"the new bundle for '{tmp_path / 'model'}' would not load, so the bundle there is kept "
        f"as it was: {tmp_path / 'model' / OPEN_SET_FILE}: the reference rows hold non-finite "
        "values"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    assert (tmp_path / "model" / KERAS_FILE).read_bytes() == b"first"
    assert np.all(np.isfinite(load_bundle(tmp_path / "model").open_set.references))


def test_extra_files_never_replace_the_bundles_own(tmp_path: Path) -> None:
    shipped = load_bundle(MODEL_DIR)
    stale = {name: b"stale" for name in (NETWORK_FILE, OPEN_SET_FILE, "metadata.json")}

    write_bundle(tmp_path / "model", network=shipped.network, open_set=shipped.open_set,
                 description=_description(shipped), files=stale, arrays={})  # fmt: skip

    assert load_bundle(tmp_path / "model").metadata == shipped.metadata


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


def test_a_bundle_that_also_holds_other_things_is_not_replaced(tmp_path: Path) -> None:
    model = _write(tmp_path / "model", keras_bytes=b"first")
    (model / "my notes.txt").write_text("trained on the March takes")
    (model / "takes").mkdir()
    (model / ".DS_Store").write_bytes(b"")  # hidden: a bundle may lose it

    with pytest.raises(BundleError) as error:
        _write(model, keras_bytes=b"second")

    assert str(error.value) == (
        f"'{model}' is a model bundle that also holds 'my notes.txt', 'takes', which replacing it "
        "would delete: move them out, or write the new bundle elsewhere"
    )
    assert (model / KERAS_FILE).read_bytes() == b"first"
    assert (model / "my notes.txt").read_text() == "trained on the March takes"


def test_a_bundle_of_its_own_files_and_hidden_ones_is_replaced(tmp_path: Path) -> None:
    model = _write(tmp_path / "model", keras_bytes=b"first")
    (model / ".DS_Store").write_bytes(b"")

    _write(model, keras_bytes=b"second")

    assert (model / KERAS_FILE).read_bytes() == b"second"


def test_a_file_on_the_way_to_the_bundle_is_named(tmp_path: Path) -> None:
    (tmp_path / "afile").write_bytes(b"keep")

    with pytest.raises(BundleError) as error:
        check_out_dir(tmp_path / "afile" / "sub" / "model")

    assert str(error.value) == (
        f"cannot write a bundle at '{tmp_path}/afile/sub/model': '{tmp_path}/afile' is a file, "
        "not a folder"
    )
    assert (tmp_path / "afile").read_bytes() == b"keep"


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


def test_a_bundle_where_no_folder_can_be_made_is_refused_naming_it(tmp_path: Path) -> None:
    out = tmp_path / ("x" * 300) / "model"  # a name longer than any file system takes

    with pytest.raises(BundleError) as error:
        _write(out)

    assert str(error.value) == f"cannot write a bundle at '{out}': File name too long"
    assert list(tmp_path.iterdir()) == []
