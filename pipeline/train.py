"""``voiceid train``: a folder of recordings (or a feature table) in, a verified model bundle out.

Four steps (:func:`train`): **prepare** the data (scan the folder, fix the feature config,
extract features in parallel and cached, split stratified by speaker, add degraded copies),
**fit and calibrate** (standardise on the training split, train, calibrate the open-set
decision on the training clips and the "unsure" threshold on validation), **assess**
(validation, and the test and unknown-speaker folders when given), and
**write** the bundle atomically with its report and pictures.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import platform
import threading
import time
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline import dataset
from pipeline.audio import DEFAULT_MAX_SECONDS, check_max_seconds, decode
from pipeline.augment import CONDITIONS
from pipeline.bundle import TRAIN_FEATURES_FILE, check_out_dir, write_bundle
from pipeline.config import (
    MIN_CLIPS_PER_SPEAKER,
    FeatureConfig,
    TrainConfig,
    check_jobs,
    derived_feature_config,
    option,
)
from pipeline.dataset import NO_CONDITION, Degradation, Extraction, Recording
from pipeline.envelope import Envelopes, envelope
from pipeline.errors import AudioError, DatasetError, ParameterError
from pipeline.evaluate import (
    UNSURE_QUANTILE,
    calibrate_threshold,
    classification_report,
    evaluate_folder,
)
from pipeline.features import FEATURE_VERSION
from pipeline.learnt import digests_array
from pipeline.metadata import Metrics, ModelDescription, OpenSetSummary, TrainingRecord, created_now
from pipeline.names import label_fault, lookalike_pair
from pipeline.network import Network
from pipeline.openset import (
    FEW_TAKES_MARGIN,
    Copies,
    Decision,
    OpenSet,
    Spread,
    calibrate,
    few_take_voices,
    fit_envelopes,
    fit_nuisance,
    fit_spread,
    open_set_view,
)
from pipeline.paths import as_path
from pipeline.quality.conditions import MATCHED_BY_AUGMENT

if TYPE_CHECKING:  # importing pipeline.model loads TensorFlow: only train() does, when it fits
    from pipeline.model import EpochCallback, FitResult
    from pipeline.table import TrainingFeatures

__all__ = [
    "MIN_CLIPS_PER_SPEAKER",
    "Fitted",
    "Prepared",
    "TrainOptions",
    "assess",
    "copy_conditions",
    "copy_plan",
    "feature_config_for",
    "fit_and_calibrate",
    "matched_copies",
    "prepare",
    "split_indices",
    "train",
]

LIBRARIES = ("voiceid", "tensorflow", "tensorflow-cpu", "keras", "librosa", "numpy", "soundfile",
             "soxr")  # fmt: skip


@dataclass(frozen=True)
class TrainOptions:
    """Everything ``train`` needs besides the data folder and the output folder. The fields with
    help text are ``voiceid train`` options too; ``cache_dir`` is one with a default of its own
    there (a per-user cache), and ``progress`` follows the terminal."""

    train: TrainConfig = field(default_factory=TrainConfig)
    fmax: float | None = option(
        None, "upper band edge in Hz (default: from the training data's lowest sample rate)"
    )
    max_seconds: float = option(
        DEFAULT_MAX_SECONDS, "longest clip accepted, in seconds; longer files are skipped"
    )
    jobs: int | None = option(None, "feature extraction processes (default: all cores)")
    cache_dir: Path | None = None  # feature rows by content hash; None: no cache
    test_dir: Path | None = option(None, "held-out folder evaluated at the end")
    unknown_dir: Path | None = option(
        None, "recordings of other speakers: report false accepts at the threshold"
    )
    name: str | None = option(None, "model name (default: the output folder's name)")
    progress: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.train, TrainConfig):
            raise ParameterError(f"train must be a TrainConfig, not {type(self.train).__name__}")
        check_max_seconds(self.max_seconds)
        check_jobs("jobs", self.jobs)
        if self.name is not None and not isinstance(self.name, str):
            raise ParameterError(f"name={self.name!r} must be a str")
        for name in ("cache_dir", "test_dir", "unknown_dir"):  # a str is taken as its path
            if (value := getattr(self, name)) is not None:
                object.__setattr__(self, name, as_path(name, value))


def _check_held_out_folders(opts: TrainOptions) -> None:
    """Refuse a held-out folder that is missing or holds no recordings: it is read only once
    training ends, and a typo found then would cost the whole run."""
    for name in ("test_dir", "unknown_dir"):
        folder = getattr(opts, name)
        if folder is None:
            continue
        if not folder.is_dir():
            raise DatasetError(f"{name}={str(folder)!r} does not exist or is not a folder")
        dataset.scan_folder(folder)


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
    lowest = None if fmax is not None else dataset.lowest_sample_rate(r.path for r in recordings)
    return derived_feature_config(lowest, fmax)


def _require_speakers(recordings: list[Recording], data_dir: Path) -> None:
    """At least two speakers, with names that answers can give (``names.label_fault``) and the
    service can tell apart."""
    labels = {r.speaker for r in recordings}
    if len(labels) < 2:
        raise DatasetError(
            f"{str(data_dir)!r} holds {len(labels)} speaker folder(s); at least 2 are needed"
        )
    for label in sorted(labels):
        if (fault := label_fault(label)) is not None:
            raise DatasetError(
                f"speaker folder {dataset.printable(label)!r} of {str(data_dir)!r} {fault}: "
                "rename the folder"
            )
    pair = lookalike_pair(sorted(labels))
    if pair is not None:
        raise DatasetError(
            f"speaker folders {pair[0]!r} and {pair[1]!r} of {str(data_dir)!r} read as one name, "
            "which the service could not tell apart: rename one, or merge their folders if "
            "they are one speaker"
        )


def _training_features(data_dir: Path, opts: TrainOptions) -> TrainingFeatures:
    """The rows to learn from: a feature table's (``voiceid features``), or a folder's, extracted.

    A table also holds the degraded copies; from a folder they are extracted after the split,
    for the training clips alone.
    """
    from pipeline.table import TrainingFeatures, training_features  # pyarrow: only when needed

    if data_dir.is_file():
        copies = opts.train.augment_copies if opts.train.augment else 0
        feats = training_features(data_dir, fmax=opts.fmax, max_seconds=opts.max_seconds,
                                  degrade_seed=opts.train.seed, degraded_copies=copies)  # fmt: skip
        _require_speakers(feats.recordings, data_dir)
        import_in_background("pipeline.model")
        return feats
    recordings = dataset.scan_folder(data_dir)
    _require_speakers(recordings, data_dir)
    # Only once the data is known to be usable: a process that exits while TensorFlow is still
    # being imported in the background aborts ("terminate called without an active exception").
    import_in_background("pipeline.model")
    cfg = feature_config_for(recordings, opts.fmax)
    extraction = _extract(recordings, cfg, opts)
    return TrainingFeatures(data_dir, recordings, cfg, extraction, None, None, opts.fmax is None)


def check_counts(extraction: Extraction, labels: list[str], root: Path) -> None:
    """Refuse a speaker with too few usable clips, naming those of their files that were
    skipped (relative to ``root``), each with its reason: no report will list them."""
    counts = Counter(r.speaker for r in extraction.recordings)
    for label in labels:
        if counts[label] < MIN_CLIPS_PER_SPEAKER:
            theirs = [shown for (r, _), shown in zip(extraction.skipped,
                                                     extraction.skipped_files(root), strict=True)
                      if r.speaker == label]  # fmt: skip
            why = f"; skipped: {dataset.skips_in_words(theirs)}" if theirs else ""
            raise DatasetError(
                f"speaker {label!r} has {counts[label]} usable clips; "
                f"at least {MIN_CLIPS_PER_SPEAKER} are needed{why}"
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
    digests: dict[Recording, str] | None = None,
) -> Extraction:
    return dataset.extract_features(
        recordings, cfg, max_seconds=opts.max_seconds, jobs=opts.jobs,
        cache_dir=opts.cache_dir, progress=opts.progress, degradation=degradation,
        digests=digests,
    )  # fmt: skip


def copy_plan(tcfg: TrainConfig) -> list[tuple[int, bool]]:
    """(copy number, crop?) of each training clip's extra rows, in their column order: the
    degraded copies, then the crops."""
    degraded = tcfg.augment_copies if tcfg.augment else 0
    return [(c, False) for c in range(degraded)] + [(c, True) for c in range(tcfg.crops)]


def copies_array(extraction: Extraction, degraded: Sequence[Extraction]) -> np.ndarray:
    """(clips, copies, bands): copy ``c`` of clip ``i`` at ``[i, c]``, NaN where it has none."""
    n, bands = extraction.features.shape
    copies = np.full((n, max(len(degraded), 1), bands), np.nan, dtype=np.float32)
    row_of = {r: i for i, r in enumerate(extraction.recordings)}
    for c, extracted in enumerate(degraded):
        for r, row in zip(extracted.recordings, extracted.features, strict=True):
            if r in row_of:
                copies[row_of[r], c] = row
    return copies


def training_rows(
    features: np.ndarray, y: np.ndarray, train_idx: np.ndarray, copies: np.ndarray, n_copies: int
) -> tuple[np.ndarray, np.ndarray]:
    """The training split's rows and labels, then copy 0, 1, ... of each training clip that has
    it, up to ``n_copies`` (``copies`` as :func:`copies_array` makes it)."""
    xs, labels = [features[train_idx]], [y[train_idx]]
    for c in range(min(n_copies, copies.shape[1])):
        kept = train_idx[np.isfinite(copies[train_idx, c]).all(axis=1)]
        xs.append(copies[kept, c])
        labels.append(y[kept])
    return np.concatenate(xs), np.concatenate(labels)


def first_copies(data_copies: np.ndarray, extraction: Extraction, idx: np.ndarray) -> Extraction:
    """Copy 0 of the clips ``idx`` that have one, as an extraction (validation reports on it)."""
    kept = [i for i in idx if np.isfinite(data_copies[i, 0]).all()]
    return Extraction([extraction.recordings[i] for i in kept],
                      data_copies[kept, 0].reshape(len(kept), data_copies.shape[2]))  # fmt: skip


def copy_conditions(
    digests: Sequence[str | None], tcfg: TrainConfig, copies: np.ndarray, val_idx: np.ndarray
) -> np.ndarray:
    """(clips, copies) int8: which condition of ``pipeline.augment.CONDITIONS`` made each of
    ``copies`` (as :func:`copies_array` makes them: :func:`copy_plan`'s columns, and copy 0 of
    each validation clip ``val_idx`` in column 0) of the clips whose files' sha256 are
    ``digests``; ``NO_CONDITION`` for a crop, a missing copy or a clip without a digest."""
    plan = [Degradation(tcfg.seed, copy, crop=crop) for copy, crop in copy_plan(tcfg)]
    plan = plan[: copies.shape[1]]  # a feature table's copies come without crops
    codes = np.full(copies.shape[:2], NO_CONDITION, dtype=np.int8)
    if plan:
        codes[:, : len(plan)] = dataset.condition_codes(digests, plan)
    validation = [digests[i] for i in val_idx]
    codes[val_idx, 0] = dataset.condition_codes(validation, [Degradation(tcfg.seed, 0)])[:, 0]
    codes[~np.isfinite(copies).all(axis=2)] = NO_CONDITION
    return codes


def matched_copies(
    data: Prepared, network: Network, hidden_weight: float, spread: Spread | None = None
) -> Copies:
    """The training clips' copies made under a condition a clip may resemble
    (``pipeline.quality.conditions.MATCHED_BY_AUGMENT``), as ``network`` shows them to the open
    set (``pipeline.openset.open_set_view``), for the condition-matched open sets; ``of`` counts
    within the training split."""
    kind_of = np.array(["", *(MATCHED_BY_AUGMENT.get(name, "") for name in CONDITIONS)])
    kinds = kind_of[data.conditions[data.train_idx].astype(int) + 1]  # NO_CONDITION: ""
    copies = data.copies[data.train_idx]
    clip, column = np.nonzero((kinds != "") & np.isfinite(copies).all(axis=2))
    rows = copies[clip, column].reshape(len(clip), copies.shape[2])
    return Copies(open_set_view(network, rows, hidden_weight, spread), clip, kinds[clip, column])


def _held_out(
    name: str, fitted: Fitted, labels: list[str], data: Prepared, opts: TrainOptions,
    known_rows: np.ndarray | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The evaluation of the held-out folder ``opts.<name>`` (``test_dir``, ``unknown_dir``),
    which scores none of the clips the model learnt from; each of its warnings (how many such
    clips it skipped, a folder named like a label) is a Python warning naming the folder."""
    folder = getattr(opts, name)
    report = evaluate_folder(
        folder, fitted.decision, labels, data.cfg, max_seconds=opts.max_seconds, jobs=opts.jobs,
        cache_dir=opts.cache_dir, progress=opts.progress, known_rows=known_rows,
        auroc_decision=None if known_rows is None else fitted.held_out_decision,
        learnt=data.learnt,
    )  # fmt: skip
    for warning in report["warnings"]:
        warnings.warn(f"{name}={str(folder)!r}: {warning}", stacklevel=3)
    return report


def import_in_background(module: str) -> None:
    """Start importing ``module`` in a thread; a later import waits for it to finish.

    Importing TensorFlow takes seconds: this way it overlaps feature extraction.
    """
    threading.Thread(target=importlib.import_module, args=(module,), daemon=True).start()


@dataclass(frozen=True)
class Prepared:
    """A training folder's (or feature table's) features, split and ready to fit."""

    data_dir: Path
    root: Path  # file names are relative to this: the data folder, or a feature table's DATA
    fmax_derived: bool  # the feature config's fmax came from the data's lowest sample rate
    labels: list[str]
    cfg: FeatureConfig
    found: int  # recordings found in the folder, usable or not
    extraction: Extraction  # the usable clips' rows, and the skipped files
    y: np.ndarray  # (clips,) label index of each row
    train_idx: np.ndarray
    val_idx: np.ndarray
    x_train: np.ndarray  # the training split's rows, then the degraded copies'
    y_train: np.ndarray
    val_degraded: Extraction  # a degraded copy of each validation clip, to report on
    copies: np.ndarray  # (clips, copies, bands) degraded rows, NaN where a clip has none
    enrolled: np.ndarray  # (clips,) bool: the row came from a speaker store (pipeline.enrol)
    conditions: np.ndarray  # (clips, copies) int8: copy_conditions, which condition made each
    # the sha256 of each row's file, None where unknown (a base bundle's from before they were kept)
    digests: Sequence[str | None] = ()
    # envelope rows (pipeline.envelope) of voices whose clips are not at hand, by name: a base
    # bundle's voices taught with few takes, kept as they were
    envelope_rows: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def speakers(self) -> list[str]:
        return [r.speaker for r in self.extraction.recordings]

    @property
    def learnt(self) -> dict[str, str]:
        """The sha256 of each clip the model learns from whose file's is known, and its name
        (:attr:`files`): a held-out clip with its bytes is not scored."""
        return {d: f for d, f in zip(self.digests, self.files, strict=False) if d is not None}

    @property
    def files(self) -> list[str]:
        """Each row's file, relative to the data folder when it lies in it."""
        return [dataset.shown_path(r.path, self.root) for r in self.extraction.recordings]


@dataclass(frozen=True)
class Fitted:
    """The trained network, its open-set decision, and how its training and calibration went."""

    network: Network
    threshold: float  # top scores below this are "unsure"
    open_set: OpenSet  # references: the training and the validation clips
    loo_distances: np.ndarray  # each reference row's distance to its nearest other one
    fit: FitResult
    held_out_open_set: OpenSet  # references: the training clips alone, to judge validation by

    @property
    def decision(self) -> Decision:
        return Decision(self.network, self.threshold, self.open_set)

    @property
    def held_out_decision(self) -> Decision:
        """The decision for the validation clips: as :attr:`decision`, with the open set of the
        training clips alone, since the shipped one holds the validation clips themselves."""
        return Decision(self.network, self.threshold, self.held_out_open_set)


def prepare(data_dir: Path, opts: TrainOptions) -> Prepared:
    """Scan ``data_dir`` and extract its features, or read a feature table's; split them."""
    feats = _training_features(data_dir, opts)
    cfg, extraction = feats.cfg, feats.extraction
    labels = sorted({r.speaker for r in feats.recordings})
    check_counts(extraction, labels, feats.root)
    y = np.array([labels.index(r.speaker) for r in extraction.recordings])
    tcfg = opts.train
    train_idx, val_idx = split_indices(y, tcfg.val_fraction, tcfg.seed)
    known = extraction.digests | feats.digests  # a folder's hashed once, or a table's
    degraded = feats.degraded if feats.degraded is not None else []
    if feats.degraded is None:  # a table's copies come with it, without crops
        train_recordings = [extraction.recordings[i] for i in train_idx]
        degraded = [
            _extract(train_recordings, cfg, opts, Degradation(tcfg.seed, copy, crop=crop), known)
            for copy, crop in copy_plan(tcfg)
        ]
    copies = copies_array(extraction, degraded)
    val_recordings = [extraction.recordings[i] for i in val_idx]
    val_degraded = feats.first_copies_of(val_recordings)
    if val_degraded is None:
        val_degraded = _extract(val_recordings, cfg, opts, Degradation(tcfg.seed, 0), known)
    copies[val_idx, 0] = copies_array(extraction, [val_degraded])[val_idx, 0]
    x_train, y_train = training_rows(
        extraction.features, y, train_idx, copies, tcfg.copies_per_clip
    )
    digests = [known.get(r) or dataset.file_digest(r.path) for r in extraction.recordings]
    conditions = copy_conditions(digests, tcfg, copies, val_idx)
    return Prepared(data_dir, feats.root, feats.fmax_derived, labels, cfg, len(feats.recordings),
                    extraction, y, train_idx, val_idx, x_train, y_train, val_degraded, copies,
                    np.zeros(len(y), dtype=bool), conditions, digests)  # fmt: skip


def fit_and_calibrate(
    data: Prepared, tcfg: TrainConfig, on_epoch: EpochCallback | None = None
) -> Fitted:
    """Standardise on the training rows, train the network, calibrate the open set on the
    clean clips at ``tcfg.unknown_quantile`` and, matched to each condition, on the training
    split's degraded copies at ``tcfg.matched_quantile``, and set the "unsure" threshold that
    keeps all but ``UNSURE_QUANTILE`` of the validation clips.

    The open set's clean references are the training *and* the validation clips: once the
    network is trained and the "unsure" threshold set, a validation clip is one more recording
    of its voice to compare fresh clips with. Measured on FSDD takes 5-14 (models trained on
    takes 15-49, seeds 0-2, with the runner-up rule of ``pipeline.openset``), that lowered the
    strangers named from 0.107 to 0.090 of the left-out speakers' clips and from 0.079 to 0.063
    of LibriSpeech 1 s pieces, for a known clip refused 0.3 points more often. The validation
    clips themselves are judged by an open set of the training clips alone
    (:attr:`Fitted.held_out_decision`)."""
    bands = data.cfg.n_bands  # the network reads the histogram; the band spread follows it
    x_train = data.x_train[:, :bands]
    mean = x_train.mean(axis=0)
    scale = x_train.std(axis=0)
    scale = np.where(scale > 1e-6, scale, 1.0)  # a constant band carries no information

    from pipeline.model import fit, network_from_model  # TensorFlow loads only when training

    x_val = data.extraction.features[data.val_idx, :bands]
    result = fit((x_train - mean) / scale, data.y_train, (x_val - mean) / scale,
                 data.y[data.val_idx], len(data.labels), tcfg, on_epoch)  # fmt: skip
    network = network_from_model(result.model, mean, scale)
    _, val_scores = network.forward(x_val)
    threshold = calibrate_threshold(val_scores.max(axis=1), UNSURE_QUANTILE, data.y[data.val_idx])
    weight = tcfg.open_set_hidden_weight
    # standardised over the training clips themselves, as the network's inputs are over theirs
    rows = data.extraction.features
    cepstral = (data.cfg.cepstral_columns, tcfg.open_set_cepstral_weight)
    spread = fit_spread(rows[data.train_idx], bands, tcfg.open_set_spread_weight, cepstral)
    copies = matched_copies(data, network, weight, spread)
    view = open_set_view(network, rows, weight, spread)  # every clip's, once
    both = np.sort(np.concatenate([data.train_idx, data.val_idx]))
    within = np.searchsorted(both, data.train_idx)  # each training clip's row among them
    nuisance = fit_nuisance(view[data.train_idx], copies, tcfg.open_set_noise_allowance)
    open_set, loo = calibrate(
        view[both], data.y[both], len(data.labels), tcfg.unknown_quantile,
        copies=Copies(copies.rows, within[copies.of], copies.conditions),
        copy_quantile=tcfg.matched_quantile, hidden_weight=weight, inputs=bands, spread=spread,
        nuisance=nuisance,
    )  # fmt: skip
    envelopes = few_take_envelopes(data, open_set.offsets, both)
    open_set = dataclasses.replace(open_set, envelopes=envelopes)
    # The validation clips are judged as clean recordings (assess passes no conditions), so the
    # open set that judges them needs no matched references.
    held_out, _ = calibrate(
        view[data.train_idx], data.y[data.train_idx], len(data.labels), tcfg.unknown_quantile,
        hidden_weight=weight, inputs=bands, spread=spread, nuisance=nuisance,
    )  # fmt: skip
    return Fitted(network, threshold, open_set, loo, result, held_out)


def few_take_envelopes(data: Prepared, offsets: np.ndarray, both: np.ndarray) -> Envelopes | None:
    """The envelopes (``pipeline.envelope``) of the voices taught with few takes, given the open
    set's row ``offsets`` and the clips it was calibrated on (``both``): their clips' files read
    again, or ``data.envelope_rows`` for a voice whose clips are a base bundle's; None when no
    voice has few takes, or none could be measured (files moved since, a feature table's)."""
    few = few_take_voices(np.diff(offsets))
    rows: list[np.ndarray | None] = []
    for speaker, label in enumerate(data.labels):
        if not few[speaker]:
            rows.append(None)
        elif label in data.envelope_rows:
            rows.append(np.asarray(data.envelope_rows[label], dtype=np.float64))
        else:
            clips = [data.extraction.recordings[i].path for i in both if data.y[i] == speaker]
            rows.append(_envelopes_of_files(clips, data.cfg.sample_rate))
    if all(r is None for r in rows):
        return None
    return fit_envelopes(rows, FEW_TAKES_MARGIN)


def _envelope_radii(labels: Sequence[str], envelopes: Envelopes | None) -> dict[str, float]:
    """Each voice with envelope rows and its radius, for the bundle's description."""
    if envelopes is None:
        return {}
    return {label: float(envelopes.radii[k]) for k, label in enumerate(labels) if envelopes.has(k)}


def _envelopes_of_files(paths: Sequence[Path], sample_rate: int) -> np.ndarray | None:
    """The envelope rows of the files at ``paths`` that can still be read and hold sound."""
    found = []
    for path in paths:
        try:
            row = envelope(decode(path, sample_rate=sample_rate).samples, sample_rate)
        except (AudioError, OSError):
            continue
        if row is not None:
            found.append(row)
    return np.array(found) if found else None


def assess(data: Prepared, fitted: Fitted, opts: TrainOptions) -> tuple[Metrics, dict[str, Any]]:
    """The model's metrics, and the evaluations behind them for the report: ``validation``,
    and ``test`` and ``unknown`` when ``opts`` names those folders."""
    rows, speakers = data.extraction.features, data.speakers

    def report_on(idx: np.ndarray, decision: Decision) -> dict[str, Any]:
        return classification_report(decision, data.labels, rows[idx],
                                     [speakers[i] for i in idx])  # fmt: skip

    # the validation clips and their copies, judged by the open set that does not hold them
    validation = report_on(data.val_idx, fitted.held_out_decision)
    on_train = report_on(data.train_idx, fitted.decision)
    degraded = data.val_degraded
    degraded_report = classification_report(
        fitted.held_out_decision, data.labels, degraded.features,
        [r.speaker for r in degraded.recordings],
    )  # fmt: skip
    evaluations: dict[str, Any] = {"validation": validation, "validation_degraded": degraded_report}
    held_out: dict[str, float] = {}
    if opts.test_dir is not None:
        evaluations["test"] = _held_out("test_dir", fitted, data.labels, data, opts)
        held_out["test_accuracy"] = evaluations["test"]["accuracy"]
    if opts.unknown_dir is not None:
        unknown = _held_out("unknown_dir", fitted, [], data, opts, rows[data.val_idx])
        evaluations["unknown"] = unknown["unknown_speakers"] | {
            "skipped": unknown["skipped"],
            "open_set_auroc": unknown["open_set_auroc"],
        }
        held_out["false_accept_rate"] = unknown["unknown_speakers"]["false_accept_rate"]
        held_out["false_reject_rate"] = validation["false_reject_rate"]
        if unknown["open_set_auroc"] is not None:
            held_out["open_set_auroc"] = unknown["open_set_auroc"]
    metrics = Metrics(
        train_accuracy=on_train["accuracy"],
        val_accuracy=validation["accuracy"],
        val_false_reject_rate=validation["false_reject_rate"],
        val_degraded_false_reject_rate=(
            degraded_report["false_reject_rate"] if degraded_report["n"] else None
        ),
        n_train=len(data.train_idx),
        n_train_degraded=len(data.x_train) - len(data.train_idx),
        n_val=len(data.val_idx),
        **held_out,
    )
    return metrics, evaluations


def describe(
    data: Prepared, fitted: Fitted, metrics: Metrics, opts: TrainOptions, out_dir: Path
) -> ModelDescription:
    return ModelDescription(
        name=opts.name or out_dir.name,
        labels=tuple(data.labels),
        feature_config=data.cfg,
        feature_version=FEATURE_VERSION,
        threshold=fitted.threshold,
        open_set=OpenSetSummary(
            threshold=fitted.open_set.threshold,
            quantile=opts.train.unknown_quantile,
            n_references=len(fitted.open_set.references),
            leave_one_out_false_reject_rate=float(
                np.mean(fitted.loo_distances > fitted.open_set.threshold)
            ),
            hidden_weight=fitted.open_set.hidden_weight,
            spread_weight=0.0 if fitted.open_set.spread is None else fitted.open_set.spread.weight,
            noise_limit=0.0 if fitted.open_set.nuisance is None else fitted.open_set.nuisance.limit,
            matched={c: m.threshold for c, m in fitted.open_set.matched.items()},
            envelope_radii=_envelope_radii(data.labels, fitted.open_set.envelopes),
        ),
        output_activation=fitted.network.output_activation,
        architecture=fitted.network.sizes,
        training=TrainingRecord(
            **opts.train.to_dict() | {"hidden": fitted.network.sizes[1]},
            max_seconds=opts.max_seconds,
            fmax_derived=data.fmax_derived,
            hidden_pinned=opts.train.hidden is not None,
        ),
        metrics=metrics,
        versions=_library_versions(),
        device=fitted.fit.device,
        created=created_now(),
    )


def training_report(
    data: Prepared, fitted: Fitted, metrics: Metrics, evaluations: dict[str, Any]
) -> dict[str, Any]:
    files = data.files
    return evaluations | {
        "data_dir": str(data.data_dir),
        "labels": data.labels,
        "files": {
            "found": data.found,
            "used": len(data.extraction.recordings),
            "skipped": len(data.extraction.skipped),
            "decoded": data.extraction.decoded,
        },
        "clips_per_speaker": dict(Counter(data.speakers)),
        "skipped": data.extraction.skipped_files(data.root),
        "split": {
            "train": [files[i] for i in data.train_idx],
            "validation": [files[i] for i in data.val_idx],
        },
        "history": fitted.fit.history,
        "best_epoch": fitted.fit.best_epoch,
        "epochs_run": fitted.fit.epochs_run,
        "architecture": list(fitted.network.sizes),
        "candidate": fitted.fit.candidate,
        "candidate_val_losses": fitted.fit.candidate_val_losses,
        "metrics": metrics.model_dump(),
    }


SPLIT_TRAIN, SPLIT_VALIDATION = 0, 1  # train_features.npz's ``split`` values


def training_set_arrays(data: Prepared, degrade_seed: int) -> dict[str, np.ndarray]:
    """What a bundle keeps of its training set (``train_features.npz``), enough to train a
    successor without the recordings (``pipeline.enrol``): every clip's row, label, file and
    split, its degraded copies (NaN where it has none), their seed and which condition made
    each (an index into ``condition_names``, -1 for none), which rows came from a speaker
    store, and the sha256 of each clip's file (``pipeline.learnt``)."""
    split = np.full(len(data.y), SPLIT_TRAIN, dtype=np.int8)
    split[data.val_idx] = SPLIT_VALIDATION
    return {
        "features": data.extraction.features,
        "labels": data.y,
        "files": np.array(data.files),
        "label_names": np.array(data.labels),
        "split": split,
        "copies": data.copies,
        "degrade_seed": np.array(degrade_seed),
        "copy_conditions": data.conditions,
        "condition_names": np.array(list(CONDITIONS)),
        "enrolled": data.enrolled,
        "digests": digests_array(
            data.digests if len(data.digests) == len(data.y) else [None] * len(data.y)
        ),
    }


def write_trained(
    out_dir: Path, data: Prepared, fitted: Fitted, description: ModelDescription,
    report: dict[str, Any],
) -> None:  # fmt: skip
    from pipeline import plots  # matplotlib: only a training run needs it, not importers of this

    validation = report["validation"]
    write_bundle(
        out_dir,
        network=fitted.network,
        open_set=fitted.open_set,
        description=description,
        save_keras=fitted.fit.model.save,
        files={
            "report.json": (json.dumps(report, indent=2) + "\n").encode(),
            "training_curves.png": plots.training_curves_png(
                fitted.fit.history, fitted.fit.best_epoch
            ),
            "confusion_matrix.png": plots.confusion_png(
                validation["confusion"], data.labels, "Validation confusion matrix"
            ),
        },
        arrays={TRAIN_FEATURES_FILE: training_set_arrays(data, description.training.seed)},
    )


def train(
    data_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    opts: TrainOptions = TrainOptions(),
) -> dict[str, Any]:
    """Train a model on ``data_dir`` and write its bundle to ``out_dir``; return the report.
    An ``out_dir`` it could not write, or should not replace, and a held-out folder that is
    missing or empty, are refused before any work."""
    started = time.perf_counter()
    data_dir, out_dir = as_path("data_dir", data_dir), as_path("out_dir", out_dir)
    if not isinstance(opts, TrainOptions):
        raise ParameterError(f"opts must be a TrainOptions, not {type(opts).__name__}")
    check_out_dir(out_dir)
    _check_held_out_folders(opts)
    data = prepare(data_dir, opts)
    features_s = time.perf_counter() - started
    fitted = fit_and_calibrate(data, opts.train)
    metrics, evaluations = assess(data, fitted, opts)
    report = training_report(data, fitted, metrics, evaluations)
    report["timing_s"] = {
        "features": round(features_s, 3),
        "total": round(time.perf_counter() - started, 3),
    }
    write_trained(out_dir, data, fitted, describe(data, fitted, metrics, opts, out_dir), report)
    return report
