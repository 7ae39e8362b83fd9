"""Reading the 60-6-N network's arrays straight out of a ``.keras`` file, without TensorFlow.

A ``.keras`` file is a zip of ``config.json`` (the architecture) and ``model.weights.h5`` (each
layer's variables, under ``layers/<layer path>/vars/<i>``). Serving needs only the four weight
arrays, and importing TensorFlow to get them costs about 2.5 s and 600 MB in every worker.

:func:`read_network` accepts exactly the model ``pipeline.model.build_model`` makes:
``InputLayer(D) -> Dense(H, sigmoid) -> Dense(N, softmax | sigmoid)``, both Dense layers with a
bias and nothing else. Anything else it reports as :class:`UnknownLayoutError`, and the caller
falls back to Keras itself, so a file that Keras can read is never refused here.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any, cast

import h5py
import numpy as np

from pipeline.network import Network, OutputActivation

__all__ = ["UnknownLayoutError", "read_network"]

_CONFIG = "config.json"
_WEIGHTS = "model.weights.h5"


class UnknownLayoutError(Exception):
    """The file is not the plain 60-6-N layout this reader knows; Keras should read it."""


def read_network(model_path: Path, mean: np.ndarray, scale: np.ndarray) -> Network:
    """The :class:`Network` saved in ``model_path``; raises :class:`UnknownLayoutError`."""
    try:
        with zipfile.ZipFile(model_path) as archive:
            config = json.loads(archive.read(_CONFIG))
            weights = archive.read(_WEIGHTS)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise UnknownLayoutError(f"cannot read {model_path.name}: {exc}") from exc
    try:
        d, activation = _check_config(config)
    except (AttributeError, KeyError, TypeError) as exc:  # not the JSON Keras writes
        raise UnknownLayoutError(f"config.json is not a Keras model config: {exc!r}") from exc
    w1, b1, w2, b2 = (np.asarray(a, dtype=np.float64) for a in _dense_arrays(weights))
    if not (
        w1.ndim == 2 and w1.shape[0] == d and b1.shape == w1.shape[1:]
        and w2.ndim == 2 and w2.shape[0] == w1.shape[1] and b2.shape == w2.shape[1:]
    ):  # fmt: skip
        shapes = [a.shape for a in (w1, b1, w2, b2)]
        raise UnknownLayoutError(f"weight shapes {shapes} do not chain from {d} inputs")
    return Network(
        w1, b1, w2, b2, activation, np.asarray(mean, np.float64), np.asarray(scale, np.float64)
    )


def _layers(config: dict[str, Any]) -> list[dict[str, Any]]:
    if config.get("class_name") != "Sequential":
        raise UnknownLayoutError(f"model class {config.get('class_name')!r} is not Sequential")
    layers = config.get("config", {}).get("layers")
    kinds = [layer.get("class_name") for layer in layers or []]
    if kinds != ["InputLayer", "Dense", "Dense"]:
        raise UnknownLayoutError(f"layers {kinds} are not InputLayer, Dense, Dense")
    return cast(list[dict[str, Any]], layers)


def _check_config(config: dict[str, Any]) -> tuple[int, OutputActivation]:
    """The input width and output activation, after checking the layers are the ones we build."""
    source, hidden, output = (layer["config"] for layer in _layers(config))
    for layer in (hidden, output):  # regularisers only shape training, so they may be anything
        if layer.get("use_bias") is not True or layer.get("quantization_config") is not None:
            raise UnknownLayoutError(f"layer {layer.get('name')!r} is not a plain biased Dense")
    if hidden.get("activation") != "sigmoid":
        raise UnknownLayoutError(f"hidden activation {hidden.get('activation')!r} is not sigmoid")
    out = output.get("activation")
    if out not in ("softmax", "sigmoid"):
        raise UnknownLayoutError(f"output activation {out!r} is not softmax or sigmoid")
    shape = source.get("batch_shape")
    if not (isinstance(shape, list) and len(shape) == 2 and isinstance(shape[1], int)):
        raise UnknownLayoutError(f"input shape {shape!r} is not (batch, features)")
    return shape[1], cast(OutputActivation, out)


def _dense_arrays(weights: bytes) -> list[np.ndarray]:
    """Kernel and bias of each of the two Dense layers, in the order the model applies them."""
    try:
        with h5py.File(io.BytesIO(weights), "r") as h5:
            group = h5.get("layers")
            names = list(group) if isinstance(group, h5py.Group) else []
            # Keras names the groups by class and order: dense, dense_1 (dense_10 sorts early,
            # but there are only two).
            if len(names) != 2 or sorted(names) != names:
                raise UnknownLayoutError(f"weight groups {names} are not two Dense layers")
            arrays = []
            for name in names:
                variables = h5[f"layers/{name}/vars"]
                if sorted(variables) != ["0", "1"]:
                    raise UnknownLayoutError(f"layer {name} holds variables {list(variables)}")
                arrays += [np.array(variables["0"]), np.array(variables["1"])]
            return arrays
    except (OSError, KeyError, ValueError) as exc:
        raise UnknownLayoutError(f"cannot read the weights: {exc}") from exc
