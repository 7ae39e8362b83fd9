"""The self-describing model bundle: a folder that carries everything needed to predict.

``MODEL_DIR/``
    ``model.keras``           the trained Keras model
    ``metadata.json``         format version, labels in output order, feature config,
                              normalisation statistics, threshold, training settings, metrics,
                              library versions, device, creation time, sha256 of model.keras
    ``report.json``           the training report (files, skips, split, history, evaluation)
    ``training_curves.png``, ``confusion_matrix.png``
    ``train_features.npz``    the training feature rows, labels and file names
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import FeatureConfig
from pipeline.errors import BundleError, VoiceIdError
from pipeline.features import FEATURE_VERSION
from pipeline.keras_file import UnknownLayoutError, read_network
from pipeline.network import Network

log = logging.getLogger(__name__)

__all__ = [
    "FORMAT_VERSION",
    "MODEL_FILE",
    "Bundle",
    "load_bundle",
    "sha256_file",
    "write_bundle",
]

FORMAT_VERSION = 1
MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"
REQUIRED_KEYS = ("format_version", "labels", "feature_config", "normalisation", "threshold",
                 "model_sha256")  # fmt: skip


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle: ``network`` predicts, the rest describes."""

    path: Path
    labels: tuple[str, ...]
    feature_config: FeatureConfig
    network: Network
    threshold: float
    metadata: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", self.path.name))

    @property
    def version(self) -> str:
        return str(self.metadata["model_sha256"][:12])


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_bundle(
    out_dir: Path,
    *,
    save_model: Any,
    metadata: dict[str, Any],
    files: dict[str, bytes],
    arrays: dict[str, dict[str, np.ndarray]],
) -> Path:
    """Write a bundle atomically: into a temporary sibling folder, then renamed into place.

    ``save_model(path)`` writes the Keras model; ``files`` are extra files by name, ``arrays``
    npz files by name. An existing bundle at ``out_dir`` is replaced only once the new one is
    complete, so a failure never leaves a half-written model behind.
    """
    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    is_bundle = (out_dir / METADATA_FILE).exists()
    if out_dir.exists() and not is_bundle and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise BundleError(
            f"{str(out_dir)!r} exists and is not a model bundle; refusing to replace it"
        )
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        save_model(tmp / MODEL_FILE)
        meta = {**metadata, "format_version": FORMAT_VERSION,
                "model_sha256": sha256_file(tmp / MODEL_FILE)}  # fmt: skip
        (tmp / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=False) + "\n")
        for name, content in files.items():
            (tmp / name).write_bytes(content)
        for name, members in arrays.items():
            np.savez_compressed(tmp / name, **members)  # type: ignore[arg-type]
        tmp.chmod(0o755)
        _swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _swap_into_place(new: Path, target: Path) -> None:
    if not target.exists():
        new.rename(target)
        return
    old = target.with_name(f".{target.name}.old-{new.name.rsplit('.', 1)[-1]}")
    target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _read_metadata(path: Path) -> dict[str, Any]:
    meta_path = path / METADATA_FILE
    if not path.is_dir():
        raise BundleError(f"model bundle {str(path)!r} does not exist or is not a folder")
    if not meta_path.is_file():
        raise BundleError(f"{str(path)!r} is not a model bundle: {METADATA_FILE} is missing")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{meta_path} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise BundleError(f"{meta_path} must hold a JSON object")
    missing = [key for key in REQUIRED_KEYS if key not in meta]
    if missing:
        raise BundleError(f"{meta_path} lacks {', '.join(missing)}")
    if meta["format_version"] != FORMAT_VERSION:
        raise BundleError(
            f"bundle format version {meta['format_version']!r} is not supported "
            f"(this voiceid reads version {FORMAT_VERSION})"
        )
    if meta.get("feature_version") != FEATURE_VERSION:
        raise BundleError(
            f"bundle features are version {meta.get('feature_version')!r}, but this voiceid "
            f"computes version {FEATURE_VERSION}: train the model again"
        )
    return meta


def load_bundle(path: Path | str) -> Bundle:
    """Load and verify a bundle; raise :class:`BundleError` when it does not check out."""
    try:
        return _load_bundle(Path(path).resolve())
    except (OSError, ValueError) as exc:
        if isinstance(exc, VoiceIdError):
            raise
        # A path the OS refuses (NUL byte, too long, no permission) is a bad bundle too.
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise BundleError(f"cannot read model bundle {str(path)!r}: {reason}") from exc


def _load_bundle(path: Path) -> Bundle:
    meta = _read_metadata(path)
    model_path = path / MODEL_FILE
    if not model_path.is_file():
        raise BundleError(f"{str(path)!r} is not a model bundle: {MODEL_FILE} is missing")
    actual = sha256_file(model_path)
    if actual != meta["model_sha256"]:
        raise BundleError(
            f"{model_path} does not match its checksum: sha256 is {actual[:12]}..., "
            f"metadata.json expects {str(meta['model_sha256'])[:12]}..."
        )
    try:
        cfg = FeatureConfig.from_dict(meta["feature_config"])
        labels = tuple(str(label) for label in meta["labels"])
        norm = meta["normalisation"]
        mean = np.asarray(norm["mean"], dtype=np.float64)
        scale = np.asarray(norm["scale"], dtype=np.float64)
        threshold = float(meta["threshold"])
    except (VoiceIdError, KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{path / METADATA_FILE} is inconsistent: {exc}") from exc
    network = _load_network(model_path, mean, scale)
    _check_shapes(path, network, cfg, labels)
    return Bundle(path, labels, cfg, network, threshold, meta)


def _load_network(model_path: Path, mean: np.ndarray, scale: np.ndarray) -> Network:
    """The network's arrays, read directly when the file is the plain 60-6-N layout (no
    TensorFlow: 2.5 s and 600 MB less per process), else through Keras."""
    try:
        return read_network(model_path, mean, scale)
    except UnknownLayoutError as exc:
        log.debug("reading %s through Keras: %s", model_path, exc)
    # Imported here: TensorFlow takes seconds to load, and only this fallback needs it.
    import keras

    from pipeline.model import network_from_model

    try:
        model = keras.saving.load_model(model_path, compile=False)
        return network_from_model(model, mean, scale)
    except VoiceIdError:
        raise
    except Exception as exc:  # keras raises many kinds for a damaged file
        raise BundleError(f"cannot load {model_path}: {exc}") from exc


def _check_shapes(
    path: Path, network: Network, cfg: FeatureConfig, labels: tuple[str, ...]
) -> None:
    d, _, n = network.sizes
    problems = []
    if d != cfg.n_bands:
        problems.append(
            f"the model takes {d} inputs but the feature config has {cfg.n_bands} bands"
        )
    if n != len(labels):
        problems.append(f"the model has {n} outputs for {len(labels)} labels")
    if network.mean.shape != (d,) or network.scale.shape != (d,):
        problems.append(f"normalisation statistics are not of length {d}")
    elif not np.all(np.isfinite(network.scale)) or np.any(network.scale <= 0):
        problems.append("normalisation scale must be finite and positive")
    if problems:
        raise BundleError(f"bundle {str(path)!r} does not check out: {'; '.join(problems)}")
