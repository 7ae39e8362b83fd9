"""Upgrading a bundle of an older format to this one: ``voiceid convert``.

Format 1 kept the network only in ``model.keras`` and the normalisation statistics in
``metadata.json``, and had no open-set decision. Converting reads them once, through Keras (so
it imports TensorFlow, as training does), calibrates the open set on the bundle's stored
training rows (``train_features.npz``), writes ``network.npz``, ``openset.npz`` and format-2
metadata, and keeps every other file of the bundle as it was. The network's outputs do not
change.
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
    TRAIN_FEATURES_FILE,
    check_agreement,
    read_metadata_json,
    sha256_file,
    write_bundle,
)
from pipeline.errors import BundleError, ParameterError
from pipeline.metadata import ModelDescription, OpenSetSummary
from pipeline.network import Network, check_network
from pipeline.openset import OpenSet, calibrate

__all__ = ["convert_bundle"]

# Keys of format 1's metadata.json that format 2 keeps elsewhere or not at all.
V1_ONLY_KEYS = ("format_version", "model_sha256", "normalisation")


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
    network = _v1_network(source, meta)
    quantile = float(meta.get("training", {}).get("unknown_quantile", 0.05))
    open_set, summary = _v1_open_set(source, network, quantile)
    try:
        description = ModelDescription.model_validate(
            {key: value for key, value in meta.items() if key not in V1_ONLY_KEYS}
            | {"open_set": summary}
        )
    except ValidationError as exc:
        raise BundleError(f"{source / METADATA_FILE} cannot be converted: {exc}") from exc
    check_network(network, str(source / KERAS_FILE))
    check_agreement(source, network, description)
    kept = {
        path.name: path.read_bytes()
        for path in sorted(source.iterdir())
        if path.is_file() and path.name != METADATA_FILE
    }
    return write_bundle(
        out_dir or source, network=network, open_set=open_set, description=description,
        files=kept, arrays={},
    )  # fmt: skip


def _v1_open_set(source: Path, network: Network, quantile: float) -> tuple[OpenSet, OpenSetSummary]:
    """The open set of a format-1 bundle, calibrated on all its stored training rows."""
    path = source / TRAIN_FEATURES_FILE
    try:
        with np.load(path, allow_pickle=False) as data:
            rows, labels = np.asarray(data["features"], np.float64), np.asarray(data["labels"])
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise BundleError(f"{str(source)!r} cannot be converted: {path}: {exc}") from exc
    n_speakers = network.sizes[2]
    try:
        open_set, loo = calibrate(network.standardise(rows), labels, n_speakers, quantile)
    except ParameterError as exc:
        raise BundleError(f"{str(source)!r} cannot be converted: {exc}") from exc
    summary = OpenSetSummary(
        threshold=open_set.threshold,
        quantile=quantile,
        n_references=len(open_set.references),
        leave_one_out_false_reject_rate=float(np.mean(loo > open_set.threshold)),
    )
    return open_set, summary


def _v1_network(source: Path, meta: dict[str, Any]) -> Network:
    """The network of a format-1 bundle, from its ``model.keras`` and normalisation."""
    model_path = source / KERAS_FILE
    if not model_path.is_file():
        raise BundleError(f"{str(source)!r} cannot be converted: {KERAS_FILE} is missing")
    if sha256_file(model_path) != meta.get("model_sha256"):
        raise BundleError(f"{model_path} does not match the checksum in {METADATA_FILE}")
    # Imported here: only converting needs Keras, and TensorFlow takes seconds to load.
    import keras

    from pipeline.model import network_from_model

    try:
        model = keras.saving.load_model(model_path, compile=False)
        norm = meta["normalisation"]
        mean, scale = (np.asarray(norm[key], np.float64) for key in ("mean", "scale"))
        return network_from_model(model, mean, scale)
    except BundleError:
        raise
    except Exception as exc:  # Keras raises many kinds for a damaged file
        raise BundleError(f"cannot convert {model_path}: {exc}") from exc
