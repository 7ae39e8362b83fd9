"""The self-describing model bundle: a folder that carries everything needed to predict.

``MODEL_DIR/``
    ``network.npz``           the network's arrays and output activation, in our own format
                              (``pipeline.network``): all that prediction reads
    ``metadata.json``         :class:`~pipeline.metadata.BundleMetadata`: format version, labels in
                              output order, feature config, threshold, training settings, metrics,
                              library versions, device, creation time, sha256 of network.npz
    ``openset.npz``           the reference rows of each speaker for the open-set decision
                              (``pipeline.openset``), checksummed in the metadata too
    ``model.keras``           the same network as a Keras model, for Keras users; never read here
    ``report.json``           the training report (files, skips, split, history, evaluation)
    ``training_curves.png``, ``confusion_matrix.png``
    ``train_features.npz``    the training set: each clip's row, label, file, split and degraded
                              copies (``pipeline.train.training_set_arrays``), from which
                              ``pipeline.enrol`` trains a successor without the recordings
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from pipeline.config import FeatureConfig
from pipeline.errors import BundleError, VoiceIdError
from pipeline.features import FEATURE_VERSION, filterbank
from pipeline.metadata import (
    FORMAT_VERSION,
    BundleMetadata,
    ModelDescription,
    json_type_problems,
)
from pipeline.network import Network, check_npz_size, load_network, save_network
from pipeline.openset import Decision, OpenSet, load_open_set, save_open_set
from pipeline.paths import as_path, file_in_the_way, remove_stale

__all__ = [
    "BUNDLE_FILES",
    "CONVERTIBLE_VERSIONS",
    "FORMAT_VERSION",
    "KERAS_FILE",
    "METADATA_FILE",
    "NETWORK_FILE",
    "OPEN_SET_FILE",
    "TRAIN_FEATURES_FILE",
    "Bundle",
    "check_agreement",
    "check_out_dir",
    "load_bundle",
    "read_metadata_json",
    "recover_interrupted_swap",
    "sha256_file",
    "validation_problems",
    "write_bundle",
]

NETWORK_FILE = "network.npz"
OPEN_SET_FILE = "openset.npz"
TRAIN_FEATURES_FILE = "train_features.npz"
METADATA_FILE = "metadata.json"
KERAS_FILE = "model.keras"
# Every file a bundle writer makes: a bundle folder holding anything else (but hidden files) is
# not replaced, since replacing it would delete what someone put there.
BUNDLE_FILES = frozenset({NETWORK_FILE, OPEN_SET_FILE, TRAIN_FEATURES_FILE, METADATA_FILE,
                          KERAS_FILE, "report.json", "training_curves.png",
                          "confusion_matrix.png"})  # fmt: skip
CONVERTIBLE_VERSIONS = (1,)  # older formats that `voiceid convert` upgrades
MAX_OPEN_SET_BYTES = 1 << 30  # reference rows: a million of them, 60 bands, is 240 MB
MAX_METADATA_BYTES = 1 << 20  # a metadata.json is a few kilobytes; far more is not ours


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle: ``network`` predicts, ``open_set`` tells known voices from others,
    ``metadata`` describes."""

    path: Path
    metadata: BundleMetadata
    network: Network
    open_set: OpenSet

    def decision(self, unsure_below: float | None = None) -> Decision:
        """The bundle's open-set decision; ``unsure_below`` overrides its top-score threshold."""
        threshold = self.threshold if unsure_below is None else unsure_below
        return Decision(self.network, threshold, self.open_set)

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def version(self) -> str:
        """The first 12 hex digits of the network's checksum: changes whenever its arrays do."""
        return self.metadata.network_sha256[:12]

    @property
    def labels(self) -> tuple[str, ...]:
        return self.metadata.labels

    @property
    def feature_config(self) -> FeatureConfig:
        return self.metadata.feature_config

    @property
    def threshold(self) -> float:
        return self.metadata.threshold


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_bundle(
    out_dir: Path,
    *,
    network: Network,
    open_set: OpenSet,
    description: ModelDescription,
    save_keras: Callable[[Path], object] | None = None,
    files: dict[str, bytes],
    arrays: dict[str, dict[str, np.ndarray]],
) -> Path:
    """Write a bundle atomically: into a temporary sibling folder, then renamed into place.

    ``save_keras(path)``, when given, writes the Keras export; ``files`` are extra files by
    name, ``arrays`` npz files by name; the files the bundle itself is made of (network, open
    set, metadata) are written last, so neither can replace them. A network that does not fit
    its description is refused. An existing bundle at ``out_dir`` is replaced only once the new
    one is complete and loads, so a failure never leaves a half-written or unloadable model
    behind; the system's refusal to write (a full disk) is a :class:`BundleError` naming it.
    """
    out_dir = out_dir.resolve()
    check_agreement(out_dir, network, description)
    check_out_dir(out_dir, BUNDLE_FILES | set(files) | set(arrays))
    with _refused_where_it_cannot_be_written(out_dir):
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        recover_interrupted_swap(out_dir)
        _remove_stale_temporaries(out_dir)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        with _refused_where_it_cannot_be_written(out_dir):  # a disk that fills up, above all
            if save_keras is not None:
                save_keras(tmp / KERAS_FILE)
            for name, content in files.items():
                (tmp / name).write_bytes(content)
            for name, members in arrays.items():
                np.savez_compressed(tmp / name, **members)  # type: ignore[arg-type]
            _write_own_files(tmp, network, open_set, description)
            _check_loads(tmp, out_dir)
            tmp.chmod(0o755)
            _swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _write_own_files(
    tmp: Path, network: Network, open_set: OpenSet, description: ModelDescription
) -> None:
    """The network, the open set and the metadata that checksums them, into ``tmp``."""
    save_network(network, tmp / NETWORK_FILE)
    save_open_set(open_set, tmp / OPEN_SET_FILE)
    try:
        meta = BundleMetadata.with_checksums(
            description, sha256_file(tmp / NETWORK_FILE), sha256_file(tmp / OPEN_SET_FILE)
        )
    except ValidationError as exc:
        raise BundleError(
            f"the bundle's metadata is inconsistent: {validation_problems(exc)}"
        ) from exc
    (tmp / METADATA_FILE).write_text(meta.model_dump_json(indent=2) + "\n")


def _check_loads(tmp: Path, out_dir: Path) -> None:
    """Load the finished bundle in ``tmp`` as a reader would, so that no writer can put at
    ``out_dir`` a bundle that does not load (it costs a read of what was just written)."""
    try:
        _load_bundle(tmp)
    except BundleError as exc:
        kept = "the bundle there is kept as it was" if out_dir.exists() else "nothing was written"
        reason = str(exc).replace(str(tmp), str(out_dir))  # the temporary name means nothing
        raise BundleError(
            f"the new bundle for {str(out_dir)!r} would not load, so {kept}: {reason}"
        ) from exc


@contextlib.contextmanager
def _refused_where_it_cannot_be_written(out_dir: Path) -> Iterator[None]:
    """Turn the system's refusal to look at or make ``out_dir`` (a name too long, a folder
    that cannot hold another) into a :class:`BundleError` naming it."""
    try:
        yield
    except OSError as exc:
        raise BundleError(
            f"cannot write a bundle at {str(out_dir)!r}: {exc.strerror or exc}"
        ) from exc


def check_out_dir(out_dir: Path, writes: Collection[str] = BUNDLE_FILES) -> None:
    """Raise :class:`BundleError` where a bundle of the files ``writes`` cannot be written at
    ``out_dir``, or would replace what is not a bundle's: a file on the way to it, a file or
    a folder there that is no bundle, or a bundle that holds more than those files. Training
    calls it before its work, :func:`write_bundle` again before it replaces anything."""
    with _refused_where_it_cannot_be_written(out_dir):
        _check_out_dir(out_dir, writes)


def _check_out_dir(out_dir: Path, writes: Collection[str]) -> None:
    if (blocking := file_in_the_way(out_dir)) is not None:
        raise BundleError(
            f"cannot write a bundle at {str(out_dir)!r}: {str(blocking)!r} is a file, not a folder"
        )
    if not out_dir.exists():
        return
    if not out_dir.is_dir() or not (out_dir / METADATA_FILE).exists():
        if out_dir.is_dir() and not any(out_dir.iterdir()):
            return
        raise BundleError(
            f"{str(out_dir)!r} exists and is not a model bundle; refusing to replace it"
        )
    other = sorted(p.name for p in out_dir.iterdir()
                   if p.name not in writes and not p.name.startswith("."))  # fmt: skip
    if other:
        more = f" and {len(other) - 3} more" if other[3:] else ""
        shown = ", ".join(map(repr, other[:3])) + more
        raise BundleError(
            f"{str(out_dir)!r} is a model bundle that also holds {shown}, which replacing it would "
            "delete: move them out, or write the new bundle elsewhere"
        )


def _swap_into_place(new: Path, target: Path) -> None:
    if not target.exists():
        new.rename(target)
        return
    if _exchange(new, target):  # one atomic step: the old bundle is now at ``new``
        shutil.rmtree(new, ignore_errors=True)
        return
    # Two renames. A crash between them leaves no bundle at ``target`` but the old one beside
    # it, which recover_interrupted_swap puts back.
    old = target.with_name(f"{_OLD_PREFIX.format(name=target.name)}{new.name.rsplit('.', 1)[-1]}")
    target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


_OLD_PREFIX = ".{name}.old-"  # where the two-rename swap keeps the old bundle in between
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False where
    the C library or the file system does not offer it."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def recover_interrupted_swap(target: Path) -> bool:
    """Put back the old bundle a two-rename swap left beside ``target`` when a crash came
    between the renames; True when it did."""
    if target.exists():
        return False
    olds = sorted(target.parent.glob(f"{_OLD_PREFIX.format(name=target.name)}*"),
                  key=lambda p: p.stat().st_mtime)  # fmt: skip
    if not olds or not (olds[-1] / METADATA_FILE).is_file():
        return False
    olds[-1].rename(target)
    return True


def _remove_stale_temporaries(target: Path) -> None:
    """Remove the temporary folders of writes to ``target`` that crashed (an hour old)."""
    remove_stale(p for p in target.parent.glob(f".{target.name}.*")
                 if p.is_dir() and not p.is_symlink())  # fmt: skip


def read_metadata_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path/metadata.json``, of whatever format version, unvalidated."""
    meta_path = path / METADATA_FILE
    if path.is_file():  # most often a clip, its arguments given the other way round
        raise BundleError(
            f"model bundle {str(path)!r} is a file, not a folder: a bundle is the folder "
            "training wrote, and commands take it before the clips"
        )
    if not path.is_dir():
        raise BundleError(f"model bundle {str(path)!r} does not exist or is not a folder")
    if not meta_path.is_file():
        raise BundleError(f"{str(path)!r} is not a model bundle: {METADATA_FILE} is missing")
    size = meta_path.stat().st_size
    if size > MAX_METADATA_BYTES:
        raise BundleError(
            f"{meta_path} is {size} bytes; a {METADATA_FILE} is at most {MAX_METADATA_BYTES}"
        )
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{meta_path} is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # a RuntimeError, which load_bundle would take for a link loop
        raise BundleError(
            f"{meta_path} is not a {METADATA_FILE}: its JSON is nested too deeply to read"
        ) from exc
    if not isinstance(meta, dict):
        raise BundleError(f"{meta_path} must hold a JSON object")
    return meta


def _read_metadata(path: Path) -> BundleMetadata:
    meta = read_metadata_json(path)
    version = meta.get("format_version")
    if version in CONVERTIBLE_VERSIONS:
        raise BundleError(
            f"bundle {str(path)!r} is format version {version}, but this voiceid reads version "
            f"{FORMAT_VERSION}: upgrade it with `voiceid convert {path}`, or train it again"
        )
    if version != FORMAT_VERSION:
        raise BundleError(
            f"bundle format version {version!r} is not supported "
            f"(this voiceid reads version {FORMAT_VERSION})"
        )
    if meta.get("feature_version") != FEATURE_VERSION:
        raise BundleError(
            f"bundle features are version {meta.get('feature_version')!r}, but this voiceid "
            f"computes version {FEATURE_VERSION}: train the model again"
        )
    try:
        metadata = BundleMetadata.model_validate(meta)
    except ValidationError as exc:
        raise BundleError(
            f"{path / METADATA_FILE} is inconsistent: {validation_problems(exc)}"
        ) from exc
    if problems := json_type_problems(meta, metadata.model_dump(mode="json")):
        raise BundleError(f"{path / METADATA_FILE} is inconsistent: {'; '.join(problems)}")
    return metadata


def validation_problems(exc: ValidationError) -> str:
    """Pydantic's errors on one line: the missing keys, then each bad value with the reason."""
    errors = exc.errors(include_url=False)
    missing = [".".join(map(str, e["loc"])) for e in errors if e["type"] == "missing"]
    problems = [f"lacks {', '.join(missing)}"] if missing else []
    for e in errors:
        if e["type"] != "missing":
            shown = repr(e["input"])
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            reason = e["msg"].removeprefix("Value error, ")
            problems.append(f"{'.'.join(map(str, e['loc']))}={shown}: {reason}")
    return "; ".join(problems)


def load_bundle(path: str | os.PathLike[str]) -> Bundle:
    """Load and verify a bundle; raise :class:`BundleError` when it does not check out, and
    :class:`ParameterError` for a ``path`` that is no path (``pipeline.paths.as_path``)."""
    if not isinstance(path, str | os.PathLike):
        as_path("path", path)  # raises, naming the type
    try:
        with contextlib.suppress(OSError):  # read-only is fine: the load then says what is missing
            recover_interrupted_swap(Path(path).absolute())
        return _load_bundle(Path(path).resolve())
    except (OSError, ValueError, RuntimeError) as exc:
        if isinstance(exc, VoiceIdError):
            raise
        # A path the OS refuses (NUL byte, too long, no permission, a symlink loop, which
        # pathlib reports as RuntimeError) is a bad bundle too.
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        if isinstance(exc, RuntimeError):
            reason = "a symbolic link loop"
        raise BundleError(f"cannot read model bundle {str(path)!r}: {reason}") from exc


def _checked_file(path: Path, name: str, expected: str) -> Path:
    """``path / name``, once it exists and its sha256 is ``expected``."""
    file = path / name
    if not file.is_file():
        raise BundleError(f"{str(path)!r} is not a model bundle: {name} is missing")
    actual = sha256_file(file)
    if actual != expected:
        raise BundleError(
            f"{file} does not match its checksum: sha256 is {actual[:12]}..., "
            f"{METADATA_FILE} expects {expected[:12]}..."
        )
    return file


def _load_bundle(path: Path) -> Bundle:
    meta = _read_metadata(path)
    network = load_network(_checked_file(path, NETWORK_FILE, meta.network_sha256))
    check_agreement(path, network, meta)
    _check_bands(path, meta.feature_config)
    d, h, n = network.sizes
    open_set_file = _checked_file(path, OPEN_SET_FILE, meta.openset_sha256)
    check_npz_size(open_set_file, MAX_OPEN_SET_BYTES, what="an open set")
    summary = meta.open_set
    matched = {str(condition): t for condition, t in summary.matched.items()}
    cfg = meta.feature_config
    spread = cfg.row_width - cfg.n_bands if summary.spread_weight > 0 else 0
    columns = d + (h if summary.hidden_weight > 0 else 0) + spread
    open_set = load_open_set(open_set_file, summary.threshold, n, columns, matched,
                             summary.hidden_weight, summary.spread_weight,
                             summary.noise_limit)  # fmt: skip
    if open_set.spread is not None and len(open_set.spread.mean) != spread:
        raise BundleError(
            f"{open_set_file}: the numbers after the histogram are standardised over "
            f"{len(open_set.spread.mean)}, but the feature config's rows carry {spread}"
        )
    return Bundle(path, meta, network, open_set)


def _check_bands(path: Path, cfg: FeatureConfig) -> None:
    """Raise :class:`BundleError` unless every band of the feature config spans an FFT bin: a
    band that spans none reads nothing, and every clip would look like a stranger."""
    empty = np.flatnonzero(~filterbank(cfg).any(axis=1))
    if empty.size:
        raise BundleError(
            f"{path / METADATA_FILE}: {empty.size} of the feature config's {cfg.n_bands} bands "
            f"span no FFT bin (fmin={cfg.fmin!r}, fmax={cfg.fmax!r}, n_fft={cfg.n_fft!r}, "
            f"sample_rate={cfg.sample_rate!r}), so they would read nothing"
        )


def check_agreement(path: Path, network: Network, meta: ModelDescription) -> None:
    """Raise :class:`BundleError` unless the network's shape and output activation are what the
    metadata of the bundle at ``path`` says they are."""
    d, _, n = network.sizes
    problems = []
    if d != meta.feature_config.n_bands:
        problems.append(
            f"the model takes {d} inputs but the feature config has "
            f"{meta.feature_config.n_bands} bands"
        )
    if n != len(meta.labels):
        problems.append(f"the model has {n} outputs for {len(meta.labels)} labels")
    if network.sizes != meta.architecture:
        problems.append(f"the arrays are {network.sizes}, the metadata says {meta.architecture}")
    if network.output_activation != meta.output_activation:
        problems.append(
            f"the arrays' output activation is {network.output_activation!r}, "
            f"the metadata says {meta.output_activation!r}"
        )
    if problems:
        raise BundleError(f"bundle {str(path)!r} does not check out: {'; '.join(problems)}")
