"""Format-1 bundles, whose network lived only in model.keras, upgrade to the current format."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.bundle import (
    FORMAT_VERSION,
    KERAS_FILE,
    NETWORK_FILE,
    OPEN_SET_FILE,
    TRAIN_FEATURES_FILE,
    load_bundle,
)
from pipeline.convert import convert_bundle
from pipeline.errors import BundleError
from tests.helpers import make_format_1


@pytest.fixture
def old_bundle(trained_bundle: Path, tmp_path: Path) -> Path:
    return make_format_1(Path(shutil.copytree(trained_bundle, tmp_path / "old")))


def test_converting_in_place_gives_the_same_network_and_keeps_the_other_files(
    old_bundle: Path, trained_bundle: Path
) -> None:
    files = {p.name: p.read_bytes() for p in old_bundle.iterdir() if p.name != "metadata.json"}

    assert convert_bundle(old_bundle) == old_bundle

    converted, original = load_bundle(old_bundle), load_bundle(trained_bundle)
    for name in ("hidden_kernel", "hidden_bias", "output_kernel", "output_bias", "mean", "scale"):
        np.testing.assert_array_equal(
            getattr(converted.network, name), getattr(original.network, name), err_msg=name
        )
    assert converted.metadata.format_version == FORMAT_VERSION
    assert converted.metadata.labels == original.metadata.labels
    assert converted.metadata.created == original.metadata.created
    assert {name: (old_bundle / name).read_bytes() for name in files} == files


def test_converting_elsewhere_leaves_the_old_bundle_alone(old_bundle: Path, tmp_path: Path) -> None:
    before = (old_bundle / "metadata.json").read_text()

    convert_bundle(old_bundle, tmp_path / "new")

    assert load_bundle(tmp_path / "new").labels == ("David", "Steve")
    assert (old_bundle / "metadata.json").read_text() == before
    assert not (old_bundle / NETWORK_FILE).exists()


def test_a_current_bundle_needs_no_conversion(trained_bundle: Path) -> None:
    with pytest.raises(BundleError) as error:
        convert_bundle(trained_bundle)

    assert str(error.value) == f"bundle '{trained_bundle}' is already format version 2"


def test_a_tampered_keras_file_is_not_converted(old_bundle: Path) -> None:
    keras_path = old_bundle / KERAS_FILE
    keras_path.write_bytes(keras_path.read_bytes() + b"\0")

    with pytest.raises(BundleError) as error:
        convert_bundle(old_bundle)

    assert str(error.value) == f"{keras_path} does not match the checksum in metadata.json"
    assert not (old_bundle / NETWORK_FILE).exists()


def _edit_v1(bundle: Path, change: Callable[[dict[str, Any]], object]) -> None:
    path = bundle / "metadata.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


def _edit_rows(bundle: Path, change: Callable[[dict[str, np.ndarray]], object]) -> None:
    path = bundle / TRAIN_FEATURES_FILE
    with np.load(path) as data:
        arrays = dict(data)
    change(arrays)
    np.savez(path, **arrays)  # type: ignore[arg-type]


def _convert_error(bundle: Path) -> str:
    with pytest.raises(BundleError) as error:
        convert_bundle(bundle)
    return str(error.value)


def test_rows_that_give_no_finite_threshold_leave_the_old_bundle_as_it_was(
    old_bundle: Path,
) -> None:
    _edit_rows(old_bundle, lambda arrays: arrays["features"].fill(1e30))
    before = {p.name: p.read_bytes() for p in old_bundle.iterdir()}

    assert _convert_error(old_bundle) == (
        f"{str(old_bundle)!r} cannot be converted: the training rows give no finite open-set "
        "distances (threshold=inf): their values are too large or not numbers"
    )
    assert {p.name: p.read_bytes() for p in old_bundle.iterdir()} == before


def test_a_stray_network_file_in_the_old_bundle_is_replaced_not_kept(old_bundle: Path) -> None:
    (old_bundle / NETWORK_FILE).write_bytes(b"stale")
    (old_bundle / OPEN_SET_FILE).write_bytes(b"stale")

    convert_bundle(old_bundle)

    assert load_bundle(old_bundle).metadata.format_version == FORMAT_VERSION


def _set_training(meta: dict[str, Any], value: object) -> None:
    meta["training"] = value


def _set_quantile(meta: dict[str, Any], value: object) -> None:
    meta["training"]["unknown_quantile"] = value


def _shorten_mean(meta: dict[str, Any]) -> None:
    meta["normalisation"]["mean"] = meta["normalisation"]["mean"][:10]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda m: _set_training(m, [1]), "training=[1] must be a JSON object"),
        (lambda m: _set_training(m, None), "training=None must be a JSON object"),
        (lambda m: _set_quantile(m, "x"), "training.unknown_quantile='x' must be in [0, 1)"),
        (lambda m: _set_quantile(m, None), "training.unknown_quantile=None must be in [0, 1)"),
        (lambda m: m.pop("normalisation"), "metadata.json lacks normalisation"),
        (lambda m: m.update(bogus=1), "bogus=1: Extra inputs are not permitted"),
        (lambda m: m.update(threshold=5), "threshold=5: Input should be less than or equal to 1"),
        (lambda m: m.update(threshold="0.5"), "threshold='0.5': a string where a number belongs"),
        (
            _shorten_mean,
            "model.keras with normalisation: array shapes do not chain from inputs to outputs: "
            "hidden_kernel (60, 6), hidden_bias (6,), output_kernel (6, 2), output_bias (2,), "
            "mean (10,), scale (60,)",
        ),
    ],
)
def test_broken_format_1_metadata_is_named(
    old_bundle: Path, change: Callable[[dict[str, Any]], object], problem: str
) -> None:
    _edit_v1(old_bundle, change)

    assert _convert_error(old_bundle) == f"{str(old_bundle)!r} cannot be converted: {problem}"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            lambda a: a.update(features=a["features"][:, :10]),
            "features are float32 (24, 10), not (rows, 60+)",
        ),
        (
            lambda a: a.update(features=a["features"][:, None, :]),
            "features are float32 (24, 1, 246), not (rows, 60+)",
        ),
        (
            lambda a: a.update(labels=a["labels"][:5]),
            "labels are int64 (5,), not (24,) integers",
        ),
    ],
)
def test_training_rows_of_the_wrong_shape_are_named(
    old_bundle: Path, change: Callable[[dict[str, np.ndarray]], object], problem: str
) -> None:
    _edit_rows(old_bundle, change)

    assert _convert_error(old_bundle) == (
        f"{str(old_bundle)!r} cannot be converted: {old_bundle / TRAIN_FEATURES_FILE}: {problem}"
    )


def test_training_rows_that_are_no_npz_are_named(old_bundle: Path) -> None:
    (old_bundle / TRAIN_FEATURES_FILE).write_bytes(b"junk")

    assert _convert_error(old_bundle) == (
        f"{str(old_bundle)!r} cannot be converted: {old_bundle / TRAIN_FEATURES_FILE} is not a "
        "readable npz file"
    )
