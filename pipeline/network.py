"""The 60-6-N network as plain arrays: the forward pass used for prediction, and its file.

Keras trains the model (``pipeline.model``); prediction needs only the network's arrays, and a
numpy forward pass is orders of magnitude cheaper than ``model.predict`` (``bench/serve.py``
measures both). The arrays are saved in a format of our own, an ``.npz`` of plain arrays
(:func:`save_network`, :func:`load_network`), so loading a model needs neither Keras nor any
knowledge of its file layout.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from pipeline.errors import BundleError

__all__ = [
    "ARRAY_NAMES",
    "MAX_NETWORK_BYTES",
    "OUTPUT_ACTIVATIONS",
    "Network",
    "OutputActivation",
    "check_network",
    "check_npz_size",
    "load_network",
    "save_network",
    "sigmoid",
    "softmax",
]

OutputActivation = Literal["softmax", "sigmoid"]
OUTPUT_ACTIVATIONS: tuple[OutputActivation, ...] = get_args(OutputActivation)
# The arrays of a Network, in the order of its fields: what save_network writes besides the
# output activation, and load_network requires.
ARRAY_NAMES = ("hidden_kernel", "hidden_bias", "output_kernel", "output_bias", "mean", "scale")
MAX_NETWORK_BYTES = 64 << 20  # a 60-band network for thousands of speakers is far smaller


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # overflow-free form of 1 / (1 + exp(-x))


def softmax(x: np.ndarray) -> np.ndarray:
    # The ufuncs' own reductions: ndarray.max's and sum's values without their Python layer.
    z = np.exp(x - np.maximum.reduce(x, axis=-1, keepdims=True))
    return z / np.add.reduce(z, axis=-1, keepdims=True)


@dataclass(frozen=True)
class Network:
    """Weights of ``Input(D) -> Dense(H, sigmoid) -> Dense(N, output)``.

    hidden_kernel: (D, H); hidden_bias: (H,); output_kernel: (H, N); output_bias: (N,).
    Inputs are standardised features: ``(x - mean) / scale``.
    """

    hidden_kernel: np.ndarray
    hidden_bias: np.ndarray
    output_kernel: np.ndarray
    output_bias: np.ndarray
    output_activation: OutputActivation
    mean: np.ndarray
    scale: np.ndarray

    @property
    def sizes(self) -> tuple[int, int, int]:
        d, h = self.hidden_kernel.shape
        return d, h, self.output_kernel.shape[1]

    def standardise(self, features: np.ndarray) -> np.ndarray:
        """Raw feature rows (B, D) standardised; rows that carry more than the network's D
        inputs (the band spread after the histogram, ``FeatureConfig.band_spread``) give their
        first D."""
        return (features[..., : len(self.mean)] - self.mean) / self.scale

    def forward(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hidden activations (B, H) and output scores (B, N) for raw features (B, D)."""
        return self.forward_standardised(self.standardise(np.asarray(features, dtype=np.float64)))

    def forward_standardised(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`forward` for inputs already standardised (B, D)."""
        hidden = sigmoid(x @ self.hidden_kernel + self.hidden_bias)
        logits = hidden @ self.output_kernel + self.output_bias
        scores = softmax(logits) if self.output_activation == "softmax" else sigmoid(logits)
        return hidden, scores


def save_network(network: Network, path: Path) -> None:
    """Write ``network`` to ``path`` as an uncompressed ``.npz`` of plain arrays (no pickles)."""
    members = {name: np.asarray(getattr(network, name), np.float64) for name in ARRAY_NAMES}
    members["output_activation"] = np.array(network.output_activation)
    with path.open("wb") as f:
        np.savez(f, **members)  # type: ignore[arg-type]  # numpy's stub types **kwds as options


def load_network(path: Path) -> Network:
    """The network :func:`save_network` wrote to ``path``, with its shapes and values checked.

    Raises :class:`BundleError` naming what is wrong: an unreadable file, a missing array, an
    unknown output activation, shapes that do not chain, or a non-finite or non-positive scale.
    """
    check_npz_size(path, MAX_NETWORK_BYTES, what="a network")
    try:
        with np.load(path, allow_pickle=False) as data:
            members = {name: data[name] for name in data.files}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise BundleError(f"cannot read {path}: {exc}") from exc
    missing = [name for name in (*ARRAY_NAMES, "output_activation") if name not in members]
    if missing:
        raise BundleError(f"{path} lacks {', '.join(missing)}")
    activation = str(members["output_activation"])
    if activation not in OUTPUT_ACTIVATIONS:
        raise BundleError(
            f"{path}: output activation {activation!r} must be 'softmax' or 'sigmoid'"
        )
    try:
        arrays = {name: np.asarray(members[name], dtype=np.float64) for name in ARRAY_NAMES}
    except (TypeError, ValueError) as exc:
        raise BundleError(f"{path}: the arrays must be numbers: {exc}") from exc
    network = Network(**arrays, output_activation=activation)
    check_network(network, str(path))
    return network


def check_npz_size(path: Path, max_bytes: int, *, what: str) -> None:
    """Refuse an ``.npz`` whose file or arrays are over ``max_bytes`` (the most ``what`` may
    hold), before decompressing anything: zipfile reads no member past the size its directory
    gives, so a zip bomb is caught here."""
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (OSError, zipfile.BadZipFile) as exc:
        raise BundleError(f"cannot read {path}: {exc}") from exc
    size = max(path.stat().st_size, unpacked)
    if size > max_bytes:
        raise BundleError(f"{path} holds {size} bytes of arrays; {what} is at most {max_bytes}")


def check_network(network: Network, source: str) -> None:
    """Raise :class:`BundleError`, naming ``source``, unless the arrays chain from inputs to
    outputs, are finite, and the normalisation scale is positive."""
    shapes = {name: np.shape(getattr(network, name)) for name in ARRAY_NAMES}
    w1, w2 = shapes["hidden_kernel"], shapes["output_kernel"]
    chained = len(w1) == 2 and len(w2) == 2 and w1[1] == w2[0]
    if not chained or shapes != {
        "hidden_kernel": w1, "hidden_bias": w1[1:], "output_kernel": w2, "output_bias": w2[1:],
        "mean": w1[:1], "scale": w1[:1],
    }:  # fmt: skip
        listed = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise BundleError(f"{source}: array shapes do not chain from inputs to outputs: {listed}")
    bad = [name for name in ARRAY_NAMES if not np.all(np.isfinite(getattr(network, name)))]
    if bad:
        raise BundleError(f"{source}: {', '.join(bad)} hold non-finite values")
    if np.any(network.scale <= 0):
        raise BundleError(f"{source}: the normalisation scale must be positive")
