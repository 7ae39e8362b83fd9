"""Which clips a bundle learnt from, known by their bytes: the sha256 of each training clip's file,
kept in ``train_features.npz`` as ``digests`` (one row of 32 bytes a clip, zeros where the file's
was not known), so that a clip a model learnt from is never scored as if it were new
(``voiceid evaluate``) however it is named or wherever it lies. Bundles from before it kept
them know none.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from pipeline.bundle import TRAIN_FEATURES_FILE, Bundle
from pipeline.errors import BundleError
from pipeline.network import check_npz_size

__all__ = [
    "DIGEST_BYTES",
    "MAX_TRAINING_SET_BYTES",
    "LearntClip",
    "digests_array",
    "digests_of",
    "learnt_clips",
    "model_clips",
]

DIGEST_BYTES = 32  # a sha256
MAX_TRAINING_SET_BYTES = 1 << 30  # a million rows with four copies is about 1.2 GB: far past use


class LearntClip(NamedTuple):
    """A clip a bundle learnt from: its file's name as training listed it, and its speaker."""

    file: str
    speaker: str


def digests_array(digests: Sequence[str | None]) -> np.ndarray:
    """``digests`` (hex sha256, None where unknown) as ``train_features.npz`` keeps them: a
    (clips, 32) uint8 array, zeros for None."""
    out = np.zeros((len(digests), DIGEST_BYTES), dtype=np.uint8)
    for i, digest in enumerate(digests):
        if digest is not None:
            out[i] = np.frombuffer(bytes.fromhex(digest), dtype=np.uint8)
    return out


def digests_of(array: np.ndarray | None, n: int, where: str) -> list[str | None]:
    """The hex digests of :func:`digests_array`'s ``array`` for ``n`` clips (None for a row of
    zeros; all None without the array, as a bundle from before it kept them); a
    :class:`BundleError` naming ``where`` when it is not one 32-byte row per clip."""
    if array is None:
        return [None] * n
    if array.shape != (n, DIGEST_BYTES) or array.dtype != np.uint8:
        raise BundleError(
            f"{where} does not check out: digests are {array.shape} {array.dtype}, expected "
            f"({n}, {DIGEST_BYTES}) uint8"
        )
    return [row.tobytes().hex() if row.any() else None for row in array]


def learnt_clips(bundle: Bundle) -> dict[str, str]:
    """Each clip ``bundle`` learnt from whose bytes it knows: sha256 (hex) -> its file's name as
    training listed it; empty for a bundle without a training set or one from before digests
    were kept. Raises :class:`BundleError` for a training set that cannot be read."""
    return {digest: c.file for digest, c in _training_clips(bundle.path, stores=True).items()}


def model_clips(bundle_dir: Path) -> dict[str, LearntClip]:
    """As :func:`learnt_clips` for the bundle at ``bundle_dir``, with each clip's speaker,
    leaving out the clips that came from a speaker store: training from the store reads those
    afresh, so a store may hold them."""
    return _training_clips(bundle_dir, stores=False)


def _training_clips(bundle_dir: Path, *, stores: bool) -> dict[str, LearntClip]:
    path = bundle_dir / TRAIN_FEATURES_FILE
    if not path.is_file():
        return {}
    check_npz_size(path, MAX_TRAINING_SET_BYTES, what="a training set")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not {"digests", "files", "labels", "label_names"} <= set(npz.files):
                return {}
            files, array = npz["files"], npz["digests"]
            labels, names = npz["labels"], npz["label_names"]
            enrolled = npz["enrolled"] if "enrolled" in npz.files else np.zeros(len(files), bool)
    except (OSError, ValueError, KeyError) as exc:
        raise BundleError(f"cannot read {path}: {exc}") from exc
    n = len(files)
    if files.ndim != 1:
        raise BundleError(f"{path} does not check out: files are {files.shape}, expected (clips,)")
    if labels.shape != (n,) or enrolled.shape != (n,):
        raise BundleError(
            f"{path} does not check out: labels are {labels.shape} and enrolled "
            f"{enrolled.shape}, expected ({n},)"
        )
    if n and not 0 <= labels.min() <= labels.max() < len(names):
        raise BundleError(f"{path} does not check out: a label is not one of {len(names)} names")
    return {
        digest: LearntClip(str(files[i]), str(names[labels[i]]))
        for i, digest in enumerate(digests_of(array, n, str(path)))
        if digest is not None and (stores or not enrolled[i])
    }
