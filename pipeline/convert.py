"""Upgrading a bundle of an older format to this one: ``voiceid convert``.

Format 1 kept the network only in ``model.keras`` and the normalisation statistics in
``metadata.json``, and had no open-set decision. Converting reads them once, through Keras (so
it imports TensorFlow, as training does), calibrates the open set on the bundle's stored
training rows (``train_features.npz``), writes ``network.npz``, ``openset.npz`` and format-2
metadata, and keeps every other file of the bundle as it was (a ``network.npz`` or
``openset.npz`` left in it is not one of them: the new ones are written in their place). The
network's outputs do not change.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from pipeline.bundle import (
    CONVERTIBLE_VERSIONS,
    FORMAT_VERSION,
    KERAS_FILE,
    METADATA_FILE,
    NETWORK_FILE,
    OPEN_SET_FILE,
    TRAIN_FEATURES_FILE,
    check_agreement,
    read_metadata_json,
    sha256_file,
    validation_problems,
    write_bundle,
)
from pipeline.errors import BundleError, ParameterError
from pipeline.extras import require_training_stack
from pipeline.metadata import ModelDescription, OpenSetSummary, json_type_problems
from pipeline.native_log import filtered_stderr
from pipeline.network import Network, check_network
from pipeline.openset import OpenSet, calibrate

__all__ = ["convert_bundle"]

# Keys of format 1's metadata.json that format 2 keeps elsewhere or not at all.
V1_ONLY_KEYS = ("format_version", "model_sha256", "normalisation")
# Files the converted bundle writes afresh, never copied from the old one.
WRITTEN_FILES = frozenset({METADATA_FILE, NETWORK_FILE, OPEN_SET_FILE})
DEFAULT_UNKNOWN_QUANTILE = 0.05  # of format-1 bundles whose training record gives none


def convert_bundle(source: Path, out_dir: Path | None = None) -> Path:
    """Upgrade the bundle at ``source`` to the current format, into ``out_dir`` (default: in
    place, atomically); return where it was written. Raises :class:`BundleError` when the source
    is not a bundle of a format this converts, or its model does not check out."""
    meta = read_metadata_json(source)
    version = meta.get("format_version")
    if version == FORMAT_VERSION:
        raise BundleError(f"bundle {str(source)!r} is already format version {FORMAT_VERSION}")
    if version not in CONVERTIBLE_VERSIONS:
        raise BundleError(f"bundle format version {version!r} cannot be converted")
    quantile = _v1_quantile(source, meta)
    network = _v1_network(source, meta)
    check_network(network, f"{str(source)!r} cannot be converted: {KERAS_FILE} with normalisation")
    open_set, summary = _v1_open_set(source, network, quantile)
    try:
        description = ModelDescription.model_validate(
            {key: value for key, value in meta.items() if key not in V1_ONLY_KEYS}
            | {"open_set": summary}
        )
    except ValidationError as exc:
        raise _cannot(source, validation_problems(exc)) from exc
    if problems := json_type_problems(meta, description.model_dump(mode="json")):
        raise _cannot(source, "; ".join(problems))
    check_agreement(source, network, description)
    kept = {
        path.name: path.read_bytes()
        for path in sorted(source.iterdir())
        if path.is_file() and path.name not in WRITTEN_FILES
    }
    return write_bundle(
        out_dir or source, network=network, open_set=open_set, description=description,
        files=kept, arrays={},
    )  # fmt: skip


def _cannot(source: Path, what: str) -> BundleError:
    return BundleError(f"{str(source)!r} cannot be converted: {what}")


def _v1_quantile(source: Path, meta: dict[str, Any]) -> float:
    """The share of training clips the format-1 bundle's open set is to reject."""
    training = meta.get("training", {})
    if not isinstance(training, dict):
        raise _cannot(source, f"training={_shown(training)} must be a JSON object")
    quantile = training.get("unknown_quantile", DEFAULT_UNKNOWN_QUANTILE)
    if isinstance(quantile, bool) or not isinstance(quantile, int | float) or not 0 <= quantile < 1:
        raise _cannot(source, f"training.unknown_quantile={_shown(quantile)} must be in [0, 1)")
    return float(quantile)


def _shown(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _v1_open_set(source: Path, network: Network, quantile: float) -> tuple[OpenSet, OpenSetSummary]:
    """The open set of a format-1 bundle, calibrated on all its stored training rows."""
    rows, labels = _v1_training_rows(source, network)
    n_speakers = network.sizes[2]
    try:
        open_set, loo = calibrate(network.standardise(rows), labels, n_speakers, quantile)
    except ParameterError as exc:
        raise _cannot(source, str(exc)) from exc
    summary = OpenSetSummary(
        threshold=open_set.threshold,
        quantile=quantile,
        n_references=len(open_set.references),
        leave_one_out_false_reject_rate=float(np.mean(loo > open_set.threshold)),
    )
    return open_set, summary


def _v1_training_rows(source: Path, network: Network) -> tuple[np.ndarray, np.ndarray]:
    """The (n, >= D) training rows of a format-1 bundle and their (n,) speaker numbers."""
    path = source / TRAIN_FEATURES_FILE
    if not path.is_file():
        raise _cannot(source, f"{TRAIN_FEATURES_FILE} is missing")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [key for key in ("features", "labels") if key not in data]
            if missing:
                raise _cannot(source, f"{path} lacks {' and '.join(missing)}")
            rows, labels = np.asarray(data["features"]), np.asarray(data["labels"])
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise _cannot(source, f"{path} is not a readable npz file") from exc
    d, _, n = network.sizes
    if rows.ndim != 2 or rows.shape[1] < d or not np.issubdtype(rows.dtype, np.number):
        raise _cannot(source, f"{path}: features are {rows.dtype} {rows.shape}, not (rows, {d}+)")
    if not np.all(np.isfinite(rows[:, :d])):
        raise _cannot(source, f"{path}: features hold non-finite values")
    if labels.shape != rows.shape[:1] or not np.issubdtype(labels.dtype, np.integer):
        raise _cannot(
            source, f"{path}: labels are {labels.dtype} {labels.shape}, not ({len(rows)},) integers"
        )
    if labels.size and not 0 <= labels.min() <= labels.max() < n:
        raise _cannot(
            source, f"{path}: labels run from {labels.min()} to {labels.max()}, not 0 to {n - 1}"
        )
    return rows.astype(np.float64), labels


def _v1_network(source: Path, meta: dict[str, Any]) -> Network:
    """The network of a format-1 bundle, from its ``model.keras`` and normalisation."""
    model_path = source / KERAS_FILE
    if not model_path.is_file():
        raise _cannot(source, f"{KERAS_FILE} is missing")
    if sha256_file(model_path) != meta.get("model_sha256"):
        raise BundleError(f"{model_path} does not match the checksum in {METADATA_FILE}")
    mean, scale = _v1_normalisation(source, meta)
    # Imported here: only converting needs Keras, and TensorFlow takes seconds to load.
    require_training_stack("converting a format-1 bundle", ("keras", "tensorflow"))
    with filtered_stderr():  # TensorFlow's start-up lines (pipeline.native_log)
        import keras
    from pipeline.model import network_from_model

    try:
        model = keras.saving.load_model(model_path, compile=False)
        return network_from_model(model, mean, scale)
    except BundleError:
        raise
    except Exception as exc:  # Keras raises many kinds for a damaged file
        raise BundleError(f"cannot convert {model_path}: {exc}") from exc


def _v1_normalisation(source: Path, meta: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The mean and scale of a format-1 bundle's ``normalisation``, as 1-D float arrays."""
    if "normalisation" not in meta:
        raise _cannot(source, f"{METADATA_FILE} lacks normalisation")
    norm = meta["normalisation"]
    if not isinstance(norm, dict) or not {"mean", "scale"} <= set(norm):
        raise _cannot(source, f"normalisation={_shown(norm)} must hold a mean and a scale")
    arrays = []
    for key in ("mean", "scale"):
        try:
            values = np.asarray(norm[key], np.float64)
        except (TypeError, ValueError) as exc:
            raise _cannot(
                source, f"normalisation.{key}={_shown(norm[key])} must be numbers"
            ) from exc
        if values.ndim != 1:
            raise _cannot(
                source, f"normalisation.{key}={_shown(norm[key])} must be a list of numbers"
            )
        arrays.append(values)
    return arrays[0], arrays[1]
