"""``voiceid train``: a folder of recordings in, a verified model bundle out.

Steps: scan the folder, fix the feature config, extract features (parallel, cached), split
stratified by speaker, standardise on the training split, train, calibrate the unknown-speaker
threshold, evaluate, draw, write the bundle atomically.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import platform
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import dataset, plots
from pipeline.audio import DEFAULT_MAX_SECONDS
from pipeline.config import FeatureConfig, TrainConfig, default_fmax
from pipeline.dataset import Degradation, Extraction, Recording
from pipeline.errors import DatasetError
from pipeline.evaluate import calibrate_threshold, classification_report, open_set_rates
from pipeline.features import FEATURE_VERSION
from pipeline.network import Network

__all__ = ["MIN_CLIPS_PER_SPEAKER", "TrainOptions", "split_indices", "train"]

MIN_CLIPS_PER_SPEAKER = 4  # at least one validation clip and a few to learn from
LIBRARIES = ("voiceid", "tensorflow", "tensorflow-cpu", "keras", "librosa", "numpy", "soundfile",
             "soxr")  # fmt: skip


@dataclass(frozen=True)
class TrainOptions:
    """Everything ``train`` needs besides the data folder and the output folder."""

    train: TrainConfig = field(default_factory=TrainConfig)
    fmax: float | None = None  # None: derived from the training data's lowest sample rate
    max_seconds: float = DEFAULT_MAX_SECONDS
    jobs: int | None = None
    cache_dir: Path | None = None
    test_dir: Path | None = None
    unknown_dir: Path | None = None
    name: str | None = None
    progress: bool = False


def split_indices(
    labels: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, seeded split: each class gives round(val_fraction * count) clips (>= 1)."""
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_val = max(1, round(val_fraction * len(idx)))
        val_idx.append(idx[:n_val])
        train_idx.append(idx[n_val:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(val_idx))


def feature_config_for(recordings: list[Recording], fmax: float | None) -> FeatureConfig:
    if fmax is not None:
        return FeatureConfig(fmax=fmax)
    lowest = dataset.lowest_sample_rate(r.path for r in recordings)
    return FeatureConfig(fmax=default_fmax(lowest)) if lowest else FeatureConfig()


def _check_counts(extraction: Extraction, labels: list[str]) -> None:
    counts = Counter(r.speaker for r in extraction.recordings)
    for label in labels:
        if counts[label] < MIN_CLIPS_PER_SPEAKER:
            raise DatasetError(
                f"speaker {label!r} has {counts[label]} usable clips; "
                f"at least {MIN_CLIPS_PER_SPEAKER} are needed"
            )


def _library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


def _extract(
    recordings: list[Recording],
    cfg: FeatureConfig,
    opts: TrainOptions,
    degradation: Degradation | None = None,
) -> Extraction:
    return dataset.extract_features(
        recordings, cfg, max_seconds=opts.max_seconds, jobs=opts.jobs,
        cache_dir=opts.cache_dir, progress=opts.progress, degradation=degradation,
    )  # fmt: skip


def training_rows(
    extraction: Extraction, y: np.ndarray, train_idx: np.ndarray, degraded: Sequence[Extraction]
) -> tuple[np.ndarray, np.ndarray]:
    """The training split's rows and labels, plus each degraded copy of a clip that has one."""
    xs, labels = [extraction.features[train_idx]], [y[train_idx]]
    for copies in degraded:
        index = {r: i for i, r in enumerate(copies.recordings)}
        kept = [i for i in train_idx if extraction.recordings[i] in index]
        xs.append(copies.features[[index[extraction.recordings[i]] for i in kept]])
        labels.append(y[kept])
    return np.concatenate(xs), np.concatenate(labels)


def _skipped(extraction: Extraction, root: Path) -> list[dict[str, str]]:
    return [{"file": str(r.path.relative_to(root)), "error": e} for r, e in extraction.skipped]


def held_out_report(
    folder: Path, network: Network, labels: list[str], threshold: float,
    cfg: FeatureConfig, opts: TrainOptions,
) -> dict[str, Any]:  # fmt: skip
    """Figures for a folder that may hold known and unknown speakers."""
    extraction = _extract(dataset.scan_folder(folder), cfg, opts)
    speakers = [r.speaker for r in extraction.recordings]
    known = np.array([s in labels for s in speakers], dtype=bool)
    report = classification_report(
        network, labels, extraction.features[known], [s for s in speakers if s in labels], threshold
    )
    report["unknown_speakers"] = open_set_rates(network, extraction.features[~known], threshold)
    report["skipped"] = _skipped(extraction, folder)
    return report


def _import_in_background(module: str) -> None:
    """Start importing ``module`` in a thread; a later import waits for it to finish.

    TensorFlow takes about 3 s to import: that now overlaps feature extraction.
    """
    threading.Thread(target=importlib.import_module, args=(module,), daemon=True).start()


def train(data_dir: Path, out_dir: Path, opts: TrainOptions = TrainOptions()) -> dict[str, Any]:
    """Train a model on ``data_dir`` and write its bundle to ``out_dir``; return the report."""
    started = time.perf_counter()
    _import_in_background("pipeline.model")
    recordings = dataset.scan_folder(data_dir)
    labels = sorted({r.speaker for r in recordings})
    if len(labels) < 2:
        raise DatasetError(
            f"{str(data_dir)!r} holds {len(labels)} speaker folder(s); at least 2 are needed"
        )
    cfg = feature_config_for(recordings, opts.fmax)
    extraction = _extract(recordings, cfg, opts)
    _check_counts(extraction, labels)

    y = np.array([labels.index(r.speaker) for r in extraction.recordings])
    tcfg = opts.train
    train_idx, val_idx = split_indices(y, tcfg.val_fraction, tcfg.seed)
    degraded = []
    if tcfg.augment:
        train_recordings = [extraction.recordings[i] for i in train_idx]
        degraded = [
            _extract(train_recordings, cfg, opts, Degradation(tcfg.seed, copy))
            for copy in range(tcfg.augment_copies)
        ]
    x_train, y_train = training_rows(extraction, y, train_idx, degraded)
    features_s = time.perf_counter() - started
    mean = x_train.mean(axis=0)
    scale = x_train.std(axis=0)
    scale = np.where(scale > 1e-6, scale, 1.0)  # a constant band carries no information

    from pipeline.model import fit, network_from_model  # TensorFlow loads only when training

    x_val = (extraction.features[val_idx] - mean) / scale
    result = fit((x_train - mean) / scale, y_train, x_val, y[val_idx], len(labels), tcfg)
    network = network_from_model(result.model, mean, scale)
    _, val_scores = network.forward(extraction.features[val_idx])
    threshold = calibrate_threshold(val_scores.max(axis=1), tcfg.unknown_quantile)
    speakers = [r.speaker for r in extraction.recordings]
    validation = classification_report(
        network, labels, extraction.features[val_idx], [speakers[i] for i in val_idx], threshold
    )
    train_report = classification_report(
        network, labels, extraction.features[train_idx], [speakers[i] for i in train_idx], threshold
    )
    metrics: dict[str, Any] = {
        "train_accuracy": train_report["accuracy"],
        "val_accuracy": validation["accuracy"],
        "val_false_reject_rate": validation["false_reject_rate"],
        "n_train": len(train_idx),
        "n_train_degraded": len(x_train) - len(train_idx),
        "n_val": len(val_idx),
    }
    report: dict[str, Any] = {"validation": validation}
    if opts.test_dir is not None:
        report["test"] = held_out_report(opts.test_dir, network, labels, threshold, cfg, opts)
        metrics["test_accuracy"] = report["test"]["accuracy"]
    if opts.unknown_dir is not None:
        unknown = held_out_report(opts.unknown_dir, network, [], threshold, cfg, opts)
        report["unknown"] = unknown["unknown_speakers"] | {"skipped": unknown["skipped"]}
        metrics["false_accept_rate"] = report["unknown"]["false_accept_rate"]
        metrics["false_reject_rate"] = validation["false_reject_rate"]
    elapsed = time.perf_counter() - started
    rel = [str(r.path.relative_to(data_dir)) for r in extraction.recordings]
    metadata: dict[str, Any] = {
        "name": opts.name or out_dir.name,
        "labels": labels,
        "feature_config": cfg.to_dict(),
        "feature_version": FEATURE_VERSION,
        "normalisation": {"mean": mean.tolist(), "scale": scale.tolist()},
        "threshold": threshold,
        "output_activation": network.output_activation,
        "architecture": list(network.sizes),
        "training": tcfg.to_dict()
        | {"max_seconds": opts.max_seconds, "fmax_derived": opts.fmax is None},
        "metrics": metrics,
        "versions": _library_versions(),
        "device": result.device,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    report |= {
        "data_dir": str(data_dir),
        "labels": labels,
        "files": {
            "found": len(recordings),
            "used": len(extraction.recordings),
            "skipped": len(extraction.skipped),
            "decoded": extraction.decoded,
        },
        "clips_per_speaker": dict(Counter(speakers)),
        "skipped": _skipped(extraction, data_dir),
        "split": {"train": [rel[i] for i in train_idx], "validation": [rel[i] for i in val_idx]},
        "history": result.history,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "candidate": result.candidate,
        "candidate_val_losses": result.candidate_val_losses,
        "metrics": metrics,
        "timing_s": {"features": round(features_s, 3), "total": round(elapsed, 3)},
    }
    from pipeline.bundle import write_bundle

    write_bundle(
        out_dir,
        save_model=result.model.save,
        metadata=metadata,
        files={
            "report.json": (json.dumps(report, indent=2) + "\n").encode(),
            "training_curves.png": plots.training_curves_png(result.history, result.best_epoch),
            "confusion_matrix.png": plots.confusion_png(
                validation["confusion"], labels, "Validation confusion matrix"
            ),
        },
        arrays={
            "train_features.npz": {
                "features": extraction.features,
                "labels": y,
                "files": np.array(rel),
                "label_names": np.array(labels),
            }
        },
    )
    return report
