"""Format-1 bundles, whose network lived only in model.keras, upgrade to the current format."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.bundle import FORMAT_VERSION, KERAS_FILE, NETWORK_FILE, load_bundle
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
