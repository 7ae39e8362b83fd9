"""Teach a model new voices without its old recordings: ``voiceid enrol`` and ``POST /train``.

A bundle keeps its training set (``train_features.npz``, made by
:func:`pipeline.train.training_set_arrays`): every clip's feature row, split and degraded copies.
A successor learns from those rows plus the new clips', which alone are decoded (and cached), with
the bundle's feature config and training settings; its network, "unsure" threshold and open set
are trained and calibrated afresh. The old rows keep their split, so the successor's validation
includes the old one.

Rows that came from a speaker store (the service's ``--data-dir``) are marked ``enrolled``. A
store is the whole truth about its voices, so training from it (:attr:`EnrolOptions.from_store`)
first drops the marked rows: a speaker or clip deleted from the store is gone from the next
version, and none is counted twice.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import dataset
from pipeline import train as training
from pipeline.augment import CONDITIONS
from pipeline.bundle import TRAIN_FEATURES_FILE, Bundle, check_out_dir, load_bundle
from pipeline.config import TrainConfig
from pipeline.dataset import NO_CONDITION, Degradation, Extraction, Recording
from pipeline.errors import BundleError, DatasetError, NameTakenError
from pipeline.learnt import MAX_TRAINING_SET_BYTES, digests_of
from pipeline.names import lookalike_pair
from pipeline.network import check_npz_size
from pipeline.paths import replace_json
from pipeline.speakers import SpeakerStore, check_name_is_free
from pipeline.train import (
    Prepared,
    TrainOptions,
    check_counts,
    copies_array,
    copy_conditions,
    copy_plan,
    first_copies,
    split_indices,
    training_rows,
)

__all__ = [
    "EnrolOptions",
    "ProgressFile",
    "TrainingSet",
    "enrol",
    "read_training_set",
    "store_recordings",
]

Progress = Callable[[float, str], None]  # (share done, what it is doing)
# Shares of the whole job at which each step starts: the rest is training's.
_READ, _EXTRACT, _FIT, _FIT_END, _WRITE = 0.02, 0.05, 0.25, 0.9, 0.95


def _silent(share: float, detail: str) -> None:
    return None


@dataclass(frozen=True)
class EnrolOptions:
    """How :func:`enrol` treats the base bundle's rows and the new clips."""

    from_store: bool = False  # new clips are a store's: drop the base's enrolled rows, mark these
    forget: tuple[str, ...] = ()  # speakers of the base to leave out
    root: Path = field(default_factory=Path.cwd)  # new clips' names are relative to this
    source: Path | None = None  # what the report names as the data, when root is a copy of it
    cache_dir: Path | None = None
    jobs: int | None = None
    name: str | None = None
    progress: Progress = _silent


@dataclass(frozen=True)
class TrainingSet:
    """A bundle's training set, as ``train_features.npz`` keeps it."""

    features: np.ndarray  # (clips, bands) float32
    speakers: list[str]
    files: list[str]
    split: np.ndarray  # (clips,) SPLIT_TRAIN or SPLIT_VALIDATION
    copies: np.ndarray  # (clips, copies, bands), NaN where a clip has no such copy
    enrolled: np.ndarray  # (clips,) bool
    conditions: np.ndarray  # (clips, copies) int8: pipeline.train.copy_conditions
    digests: list[str | None]  # each clip's file's sha256, None where unknown (pipeline.learnt)

    def __len__(self) -> int:
        return len(self.speakers)

    def subset(self, keep: np.ndarray) -> TrainingSet:
        idx = np.flatnonzero(keep)
        return TrainingSet(self.features[idx], [self.speakers[i] for i in idx],
                           [self.files[i] for i in idx], self.split[idx], self.copies[idx],
                           self.enrolled[idx], self.conditions[idx],
                           [self.digests[i] for i in idx])  # fmt: skip


def read_training_set(bundle: Bundle) -> TrainingSet:
    """The training set ``bundle`` keeps; raises :class:`BundleError` when it has none or it
    does not agree with the bundle. Bundles from before it kept splits and copies get the
    split ``voiceid train`` made and no copies; bundles from before it kept which condition made
    each copy, none (``NO_CONDITION``)."""
    path = bundle.path / TRAIN_FEATURES_FILE
    if not path.is_file():
        raise BundleError(
            f"bundle {str(bundle.path)!r} keeps no training set ({TRAIN_FEATURES_FILE}): "
            "train it again with `voiceid train`"
        )
    check_npz_size(path, MAX_TRAINING_SET_BYTES, what="a training set")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, KeyError) as exc:
        raise BundleError(f"cannot read {path}: {exc}") from exc
    return _checked_training_set(bundle, arrays, path)


def _checked_training_set(bundle: Bundle, arrays: dict[str, np.ndarray], path: Path) -> TrainingSet:
    missing = {"features", "labels", "files", "label_names"} - set(arrays)
    if missing:
        raise BundleError(f"{path} lacks {', '.join(sorted(missing))}")
    features, labels = arrays["features"].astype(np.float32), arrays["labels"]
    names, n, bands = (
        [str(x) for x in arrays["label_names"]],
        len(labels),
        bundle.feature_config.row_width,
    )
    problems = []
    if features.shape != (n, bands):
        problems.append(f"features are {features.shape}, expected ({n}, {bands})")
    if labels.dtype.kind not in "iu" or (n and (labels.min() < 0 or labels.max() >= len(names))):
        problems.append("labels are not indices into label_names")
    if arrays["files"].shape != (n,):
        problems.append(f"files are {arrays['files'].shape}, expected ({n},)")
    training = bundle.metadata.training
    split = arrays.get("split")
    if split is None:
        train_idx, _ = split_indices(labels, training.val_fraction, training.seed)
        split = np.ones(n, dtype=np.int8)
        split[train_idx] = 0
    copies = arrays.get("copies", np.full((n, 1, bands), np.nan, dtype=np.float32))
    enrolled = arrays.get("enrolled", np.zeros(n, dtype=bool))
    if split.shape != (n,) or not np.isin(split, (0, 1)).all():
        problems.append("split is not one 0 (train) or 1 (validation) per row")
    if copies.ndim != 3 or copies.shape[0] != n or copies.shape[2] != bands:
        problems.append(f"copies are {copies.shape}, expected ({n}, copies, {bands})")
    if enrolled.shape != (n,) or enrolled.dtype != bool:
        problems.append("enrolled is not one flag per row")
    conditions = _condition_codes(arrays, copies.shape[:2])
    if conditions is None:
        problems.append(f"copy_conditions are not one code per copy {copies.shape[:2]}")
    if problems or conditions is None:
        raise BundleError(f"{path} does not check out: {'; '.join(problems)}")
    return TrainingSet(features, [names[i] for i in labels], [str(f) for f in arrays["files"]],
                       split.astype(np.int8), copies.astype(np.float32), enrolled,
                       conditions, digests_of(arrays.get("digests"), n, str(path)))  # fmt: skip


def _condition_codes(arrays: dict[str, np.ndarray], shape: tuple[int, ...]) -> np.ndarray | None:
    """The training set's copy condition codes, as indices into today's
    ``pipeline.augment.CONDITIONS`` (a name it no longer has: ``NO_CONDITION``); all
    ``NO_CONDITION`` when it kept none; None when they do not fit ``shape``."""
    codes, names = arrays.get("copy_conditions"), arrays.get("condition_names")
    if codes is None or names is None:
        return np.full(shape, NO_CONDITION, dtype=np.int8)
    if codes.shape != shape or codes.dtype.kind != "i" or codes.min(initial=0) < NO_CONDITION:
        return None
    if codes.size and codes.max() >= len(names):
        return None
    today = list(CONDITIONS)
    remap = np.array([today.index(str(n)) if str(n) in today else NO_CONDITION for n in names])
    return np.where(codes == NO_CONDITION, NO_CONDITION, remap[codes]).astype(np.int8)


def store_recordings(store: Path) -> list[Recording]:
    """The clips of a speaker store, ``store/<speaker>/<clip>``, sorted, as the store itself
    lists them (``pipeline.speakers``); none when it is empty or missing."""
    return [Recording(path, name) for name, path in SpeakerStore(store).clip_files()]


def _train_config(bundle: Bundle) -> TrainConfig:
    """The base's settings; a width the rule chose is chosen again for the new speaker count."""
    record = bundle.metadata.training
    settings = {f.name: getattr(record, f.name) for f in fields(TrainConfig)}
    return TrainConfig(**settings | {"hidden": record.hidden if record.hidden_pinned else None})


def _train_options(bundle: Bundle, opts: EnrolOptions) -> TrainOptions:
    return TrainOptions(train=_train_config(bundle),
                        max_seconds=bundle.metadata.training.max_seconds, jobs=opts.jobs,
                        cache_dir=opts.cache_dir, name=opts.name)  # fmt: skip


def _extract_new(
    new: Sequence[Recording], bundle: Bundle, topts: TrainOptions, progress: Progress,
    hashed: dict[Recording, str],
) -> tuple[Extraction, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """The new clips' rows, their split (stratified per speaker, as training splits), their
    degraded copies (every copy of a training clip, copy 0 of a validation clip) and which
    condition made each; ``hashed``: the digests of the new clips' files already taken."""
    cfg, tcfg = bundle.feature_config, topts.train

    def extract(recordings: Sequence[Recording], degradation: Degradation | None = None,
                digests: dict[Recording, str] | None = None) -> Extraction:  # fmt: skip
        return dataset.extract_features(recordings, cfg, max_seconds=topts.max_seconds,
                                        jobs=topts.jobs, cache_dir=topts.cache_dir,
                                        degradation=degradation, digests=digests)  # fmt: skip

    progress(_EXTRACT, f"reading {len(new)} new clips")
    clean = extract(new, digests=hashed)
    names = sorted({r.speaker for r in clean.recordings})
    codes = np.array([names.index(r.speaker) for r in clean.recordings], dtype=int)
    train_idx, val_idx = (
        split_indices(codes, tcfg.val_fraction, tcfg.seed) if len(codes) else (codes, codes)
    )
    split = np.zeros(len(codes), dtype=np.int8)
    split[val_idx] = 1
    plan = copy_plan(tcfg)
    trainers = [clean.recordings[i] for i in train_idx] if plan else []
    columns = []
    for j, (copy, crop) in enumerate(plan or [(0, False)]):
        progress(_EXTRACT + (_FIT - _EXTRACT) * (j + 1) / (max(len(plan), 1) + 1),
                 f"extra rows {j + 1} of the new clips")  # fmt: skip
        column = extract(trainers, Degradation(tcfg.seed, copy, crop=crop), clean.digests)
        if j == 0:  # validation reports on degraded copy 0 of its clips, as training's does
            val = extract(
                [clean.recordings[i] for i in val_idx], Degradation(tcfg.seed, 0), clean.digests
            )
            column = Extraction(column.recordings + val.recordings,
                                np.concatenate([column.features, val.features]))  # fmt: skip
        columns.append(column)
    copies = copies_array(clean, columns)
    digests = [clean.digests[r] for r in clean.recordings]  # every file read was hashed
    return clean, split, copies, copy_conditions(digests, tcfg, copies, val_idx)


def _check_not_learnt(
    base: TrainingSet, new: Sequence[Recording], root: Path
) -> dict[Recording, str]:
    """Refuse a new clip with the bytes of one the model goes on learning from (``base``'s
    digests, ``pipeline.learnt``): as another voice's, one recording would teach two voices; as
    its own, it holds nothing new. The digests of the new clips' files, taken on the way."""
    learnt = {d: (file, speaker)
              for d, file, speaker in zip(base.digests, base.files, base.speakers, strict=True)
              if d is not None}  # fmt: skip
    hashed = {r: d for r in new if r.problem is None and (d := dataset.file_digest(r.path))}
    for recording, digest in hashed.items():
        if digest not in learnt:
            continue
        file, speaker = learnt[digest]
        why = (
            "it holds nothing new: leave it out"
            if speaker == recording.speaker
            else f"one recording cannot teach two voices: leave it out of {recording.speaker!r}"
        )
        raise DatasetError(
            f"clip {dataset.shown_path(recording.path, root)!r} has the same bytes as {file!r}, "
            f"a clip of {speaker!r} the model learnt from: {why}"
        )
    return hashed


def _joined_copies(a: np.ndarray, b: np.ndarray, fill: float) -> np.ndarray:
    """``a`` above ``b``, both (clips, copies, ...), the narrower padded with ``fill``."""
    width = max(a.shape[1], b.shape[1])

    def padded(x: np.ndarray) -> np.ndarray:
        pad = np.full((x.shape[0], width - x.shape[1], *x.shape[2:]), fill, dtype=x.dtype)
        return np.concatenate([x, pad], axis=1)

    return np.concatenate([padded(a), padded(b)])


def _kept_rows(base: TrainingSet, opts: EnrolOptions) -> TrainingSet:
    unknown = sorted(set(opts.forget) - set(base.speakers))
    if unknown:
        raise DatasetError(
            f"cannot forget {', '.join(map(repr, unknown))}: not a speaker of the model"
        )
    keep = ~np.isin(np.array(base.speakers, dtype=object), list(opts.forget))
    if opts.from_store:
        keep &= ~base.enrolled
    return base.subset(keep)


def _check_new_names(kept: Sequence[str], new: Sequence[Recording]) -> None:
    """Refuse a new speaker whose name reads the same as a kept one of the model's (the
    service's rule, ``pipeline.speakers.check_name_is_free``) or as another new speaker's."""
    names = sorted({r.speaker for r in new})
    known = sorted(set(kept))
    for name in names:
        check_name_is_free(name, {}, known, add_to_existing=True)
    pair = lookalike_pair(names)
    if pair is not None:
        raise NameTakenError(
            f"new speakers {pair[0]!r} and {pair[1]!r} read as one name, which the service "
            "could not tell apart: rename one, or give their clips under one name"
        )


def prepare_enrolment(
    bundle: Bundle, new: Sequence[Recording], opts: EnrolOptions, topts: TrainOptions
) -> Prepared:
    """The base bundle's kept rows and the new clips', split and ready to fit."""
    opts.progress(_READ, "reading the model's training set")
    base = _kept_rows(read_training_set(bundle), opts)
    _check_new_names(base.speakers, new)
    hashed = _check_not_learnt(base, new, opts.root)
    clean, new_split, new_copies, new_conditions = _extract_new(
        new, bundle, topts, opts.progress, hashed
    )
    recordings = [Recording(Path(f), s) for f, s in zip(base.files, base.speakers, strict=True)]
    extraction = Extraction(recordings + clean.recordings,
                            np.concatenate([base.features, clean.features]),
                            clean.skipped, clean.decoded)  # fmt: skip
    # Every speaker given, usable clips or not: one with too few is named, never dropped.
    labels = sorted({r.speaker for r in extraction.recordings} | {r.speaker for r in new})
    if len(labels) < 2:
        raise DatasetError(
            f"the new model would know {len(labels)} speaker(s); at least 2 are needed"
        )
    check_counts(extraction, labels, opts.root)
    y = np.array([labels.index(r.speaker) for r in extraction.recordings])
    split = np.concatenate([base.split, new_split])
    train_idx, val_idx = np.flatnonzero(split == 0), np.flatnonzero(split == 1)
    copies = _joined_copies(base.copies, new_copies, np.nan)
    conditions = _joined_copies(base.conditions, new_conditions, NO_CONDITION)
    tcfg = topts.train
    x_train, y_train = training_rows(
        extraction.features, y, train_idx, copies, tcfg.copies_per_clip
    )
    enrolled = np.concatenate([base.enrolled, np.full(len(clean.recordings), opts.from_store)])
    digests = base.digests + [clean.digests.get(r) for r in clean.recordings]
    return Prepared(opts.source or opts.root, opts.root, bundle.metadata.training.fmax_derived,
                    labels, bundle.feature_config, len(base) + len(new), extraction, y, train_idx,
                    val_idx, x_train, y_train, first_copies(copies, extraction, val_idx), copies,
                    enrolled, conditions, digests, _kept_envelopes(bundle, base, new))  # fmt: skip


def _kept_envelopes(
    bundle: Bundle, base: TrainingSet, new: Sequence[Recording]
) -> dict[str, np.ndarray]:
    """The base bundle's envelope rows (``pipeline.envelope``) of the voices it keeps as they
    were: their clips are the base's rows, whose files need not be at hand."""
    envelopes = bundle.open_set.envelopes if bundle.open_set is not None else None
    if envelopes is None:
        return {}
    kept, renewed = set(base.speakers), {r.speaker for r in new}
    return {
        label: envelopes.rows(k)
        for k, label in enumerate(bundle.labels)
        if envelopes.has(k) and label in kept and label not in renewed
    }


def enrol(
    base_dir: Path, out_dir: Path, new: Sequence[Recording], opts: EnrolOptions = EnrolOptions()
) -> dict[str, Any]:
    """Train a successor of the bundle at ``base_dir`` that also knows the speakers of ``new``
    and write it to ``out_dir``; return its training report."""
    started = time.perf_counter()
    check_out_dir(out_dir)
    training.import_in_background("pipeline.model")
    bundle = load_bundle(base_dir)
    topts = _train_options(bundle, opts)
    data = prepare_enrolment(bundle, new, opts, topts)
    features_s = time.perf_counter() - started

    def on_epoch(epoch: int, horizon: int) -> None:
        share = _FIT + (_FIT_END - _FIT) * min(epoch / max(horizon, 1), 1.0)
        opts.progress(share, f"training: epoch {epoch}")

    opts.progress(_FIT, "training: starting TensorFlow")
    fitted = training.fit_and_calibrate(data, topts.train, on_epoch)
    opts.progress(_FIT_END, "calibrating the open set and scoring validation")
    metrics, evaluations = training.assess(data, fitted, topts)
    report = training.training_report(data, fitted, metrics, evaluations)
    report["base"] = {"path": str(bundle.path), "version": bundle.version,
                      "labels": list(bundle.labels)}  # fmt: skip
    report["timing_s"] = {"features": round(features_s, 3),
                          "total": round(time.perf_counter() - started, 3)}  # fmt: skip
    opts.progress(_WRITE, "writing the new version")
    description = training.describe(data, fitted, metrics, topts, out_dir)
    training.write_trained(out_dir, data, fitted, description, report)
    return report


class ProgressFile:
    """A :data:`Progress` that keeps the latest step in a JSON file, replaced atomically (a
    reader never sees half of one), for a process that watches the job from outside."""

    def __init__(self, path: Path, min_interval_s: float = 0.1) -> None:
        self.path = path
        self.min_interval_s = min_interval_s
        self._last = 0.0

    def __call__(self, share: float, detail: str) -> None:
        now = time.monotonic()
        if now - self._last < self.min_interval_s and share < _WRITE:
            return
        self._last = now
        record = {"progress": round(share, 4), "detail": detail, "pid": os.getpid()}
        with contextlib.suppress(OSError):  # progress is news, never a reason to fail the job
            replace_json(self.path, record)
