"""Reading a .keras file without TensorFlow gives Keras's own arrays, or steps aside."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from pipeline.bundle import MODEL_FILE, load_bundle
from pipeline.keras_file import UnknownLayoutError, read_network
from pipeline.model import build_model, network_from_model
from pipeline.network import Network, OutputActivation

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = ROOT / "models" / "default" / MODEL_FILE
MEAN, SCALE = np.zeros(60), np.ones(60)


def _saved(model: keras.Model, tmp_path: Path) -> Path:
    path = tmp_path / MODEL_FILE
    model.save(path)
    return path


def _same(a: Network, b: Network) -> None:
    assert a.output_activation == b.output_activation
    for name in ("hidden_kernel", "hidden_bias", "output_kernel", "output_bias", "mean", "scale"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_the_shipped_model_reads_as_keras_loads_it() -> None:
    model = keras.saving.load_model(DEFAULT_MODEL, compile=False)

    _same(read_network(DEFAULT_MODEL, MEAN, SCALE), network_from_model(model, MEAN, SCALE))


@pytest.mark.parametrize(("n_classes", "output"), [(2, "softmax"), (7, "sigmoid"), (12, "softmax")])
def test_any_60_h_n_model_reads_as_keras_loads_it(
    tmp_path: Path, n_classes: int, output: OutputActivation
) -> None:
    keras.utils.set_random_seed(n_classes)
    path = _saved(build_model(60, n_classes, hidden=9, output=output), tmp_path)

    network = read_network(path, MEAN, SCALE)

    assert network.sizes == (60, 9, n_classes)
    _same(network, network_from_model(keras.saving.load_model(path), MEAN, SCALE))


def _other_model(kind: str) -> keras.Model:
    layers = {
        "relu hidden": [keras.layers.Dense(6, activation="relu")],
        "no bias": [keras.layers.Dense(6, activation="sigmoid", use_bias=False)],
        "two hidden": [keras.layers.Dense(6, "sigmoid"), keras.layers.Dense(6, "sigmoid")],
    }[kind]
    return keras.Sequential([keras.Input((60,)), *layers, keras.layers.Dense(2, "softmax")])


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("relu hidden", "hidden activation 'relu' is not sigmoid"),
        ("no bias", "is not a plain biased Dense"),
        ("two hidden", "layers ['InputLayer', 'Dense', 'Dense', 'Dense'] are not InputLayer"),
    ],
)
def test_any_other_architecture_is_left_to_keras(tmp_path: Path, kind: str, message: str) -> None:
    path = _saved(_other_model(kind), tmp_path)

    with pytest.raises(UnknownLayoutError, match=re.escape(message)):
        read_network(path, MEAN, SCALE)


def test_a_file_that_is_not_a_zip_is_left_to_keras(tmp_path: Path) -> None:
    path = tmp_path / MODEL_FILE
    path.write_bytes(b"not a keras file")

    with pytest.raises(
        UnknownLayoutError, match=re.escape("cannot read model.keras: File is not a zip file")
    ):
        read_network(path, MEAN, SCALE)


def test_a_zip_without_weights_is_left_to_keras(tmp_path: Path) -> None:
    path = tmp_path / MODEL_FILE
    with zipfile.ZipFile(DEFAULT_MODEL) as source, zipfile.ZipFile(path, "w") as copy:
        copy.writestr("config.json", source.read("config.json"))

    with pytest.raises(UnknownLayoutError, match=re.escape("model.weights.h5")):
        read_network(path, MEAN, SCALE)


@pytest.mark.parametrize(
    "config",
    [
        b"[1, 2]",
        b'{"class_name": "Sequential", "config": 7}',
        b'{"class_name": "Sequential", "config": {"layers": [{}]}}',
    ],
)
def test_a_config_that_is_not_keras_json_is_left_to_keras(tmp_path: Path, config: bytes) -> None:
    path = tmp_path / MODEL_FILE
    with zipfile.ZipFile(DEFAULT_MODEL) as source, zipfile.ZipFile(path, "w") as copy:
        copy.writestr("config.json", config)
        copy.writestr("model.weights.h5", source.read("model.weights.h5"))

    with pytest.raises(UnknownLayoutError):
        read_network(path, MEAN, SCALE)


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


def test_load_bundle_falls_back_to_keras_for_other_layouts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(path: Path, mean: np.ndarray, scale: np.ndarray) -> Network:
        raise UnknownLayoutError("pretend this layout is new")

    expected = load_bundle(DEFAULT_MODEL.parent).network
    monkeypatch.setattr("pipeline.bundle.read_network", refuse)

    _same(load_bundle(DEFAULT_MODEL.parent).network, expected)
