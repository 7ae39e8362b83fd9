"""Upgrading a bundle of an older format to this one: ``voiceid convert``.

Format 1 kept the network only in ``model.keras`` and the normalisation statistics in
``metadata.json``. Converting reads them once, through Keras (so it imports TensorFlow, as
training does), writes ``network.npz`` and format-2 metadata, and keeps every other file of the
bundle as it was. The network's outputs do not change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from pipeline.bundle import (
    CONVERTIBLE_VERSIONS,
    FORMAT_VERSION,
    KERAS_FILE,
    METADATA_FILE,
    check_agreement,
    read_metadata_json,
    sha256_file,
    write_bundle,
)
from pipeline.errors import BundleError
from pipeline.extras import require_training_stack
from pipeline.metadata import ModelDescription
from pipeline.network import Network, check_network

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
    try:
        description = ModelDescription.model_validate(
            {key: value for key, value in meta.items() if key not in V1_ONLY_KEYS}
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
        out_dir or source, network=network, description=description, files=kept, arrays={}
    )


def _v1_network(source: Path, meta: dict[str, Any]) -> Network:
    """The network of a format-1 bundle, from its ``model.keras`` and normalisation."""
    model_path = source / KERAS_FILE
    if not model_path.is_file():
        raise BundleError(f"{str(source)!r} cannot be converted: {KERAS_FILE} is missing")
    if sha256_file(model_path) != meta.get("model_sha256"):
        raise BundleError(f"{model_path} does not match the checksum in {METADATA_FILE}")
    # Imported here: only converting needs Keras, and TensorFlow takes seconds to load.
    require_training_stack("converting a format-1 bundle", ("keras", "tensorflow"))
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
