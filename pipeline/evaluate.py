"""Scoring against known labels: accuracy, per-speaker figures, confusion, and the open-set
decision's false-accept and false-reject rates and AUROC, for feature rows or a folder of clips."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import dataset
from pipeline.audio import DEFAULT_MAX_SECONDS, decode
from pipeline.bundle import Bundle
from pipeline.config import FeatureConfig
from pipeline.errors import DatasetError, ParameterError
from pipeline.learnt import learnt_clips
from pipeline.openset import Decision, auroc, equal_weight_quantile
from pipeline.paths import as_path
from pipeline.predict import Judged, clip_quality, judge_recordings
from pipeline.quality.issues import CONDITIONS, Issue, condition

__all__ = [
    "UNSURE_CEILING",
    "UNSURE_QUANTILE",
    "calibrate_threshold",
    "case_mismatches",
    "classification_report",
    "condition_figures",
    "evaluate_folder",
    "measure_recordings",
    "open_set_rates",
]

# The top-score threshold for "unsure between speakers" keeps all but this share of validation
# clips; the open set's distance rule does the rest of telling known voices from others.
UNSURE_QUANTILE = 0.01
# The "unsure" threshold is never above this. Weight decay holds every known voice's top score a
# little under 1, and with few validation clips their lowest quantile sits in that last hundredth,
# where it tells apart how saturated known voices are, not whether the network is torn between
# two. A voice taught with a dozen takes has two validation clips, from the sitting it taught, and
# they score as saturated as the rest; its takes from another sitting score 0.75-0.95 with the
# runner-up 3 to 25 times lower. Measured in-process on bench/enrol.py's FSDD rows (each speaker
# taught 12 takes beside the demo's voices, 25 other fresh takes each and 145 of the other
# speakers' clips of the same words): at 0.95 jackson's fresh "zero" was unsure on 9 of 25, and
# 0.773 of the fresh takes of "zero" were named, with 23 of 870 strangers' clips taken; at 0.8,
# 0.860 and 33 of 870 (mixed words 0.567 and 11 of 870, 0.587 and 11); lower gains little (0.7:
# 0.873 and 35). Models of real voices calibrate far under it (FSDD: 0.45-0.47).
UNSURE_CEILING = 0.8
# There is no floor: however low a new voice's few validation clips score (a dozen takes give it
# two, and the lower of them sets the threshold), a clip torn between two voices stays unsure by
# the decision's own rule (``pipeline.openset.UNSURE_ODDS``). The floor of one half it replaces
# refused clips spread over several voices: on FSDD's held-out takes 5-14 (seed 0), the three it
# alone refused that the odds rule does not were all named right.


def calibrate_threshold(
    top_scores: np.ndarray, quantile: float, speakers: np.ndarray | None = None
) -> float:
    """The score that keeps ``1 - quantile`` of known speakers' clips (0.05 keeps 95%), each
    speaker in ``speakers`` (one label per score) weighing the same, at most
    ``UNSURE_CEILING``."""
    if top_scores.size == 0 or quantile == 0:
        return 0.0
    groups = np.zeros(len(top_scores)) if speakers is None else speakers
    parts = [top_scores[groups == g] for g in np.unique(groups)]
    return float(min(equal_weight_quantile(parts, quantile), UNSURE_CEILING))


def classification_report(
    decision: Decision,
    labels: Sequence[str],
    features: np.ndarray,
    speakers: Sequence[str],
    recording_issues: Sequence[Sequence[Issue]] | None = None,
    conditions: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Closed-set figures for clips of known speakers, plus how many the decision rejects
    (given each clip's ``recording_issues`` and the condition it resembles when measured).

    ``answers`` counts what a user is told, as the service tells it: ``named_right`` (the clip's
    speaker), ``named_wrong`` (another known speaker) and ``unknown``; ``named_right_rate`` and
    ``named_wrong_rate`` are the first two as shares (``false_reject_rate`` is the third).
    ``accuracy`` counts the top label alone, whether or not the clip is answered unknown.
    """
    index = {label: i for i, label in enumerate(labels)}
    truth = np.array([index[s] for s in speakers], dtype=int)
    if len(truth):
        _, scores, _, reasons, answered = decision.decide(features, recording_issues, conditions)
        predicted = scores.argmax(axis=1)
        accepted = np.array([r is None for r in reasons], dtype=bool)
    else:
        predicted, accepted = np.zeros(0, dtype=int), np.zeros(0, dtype=bool)
        answered = predicted
    n_labels = len(labels)
    confusion = np.zeros((n_labels, n_labels), dtype=int)
    np.add.at(confusion, (truth, predicted), 1)
    per_speaker = {}
    for i, label in enumerate(labels):
        tp = int(confusion[i, i])
        predicted_as = int(confusion[:, i].sum())
        count = int(confusion[i].sum())
        per_speaker[label] = {
            "precision": tp / predicted_as if predicted_as else 0.0,
            "recall": tp / count if count else 0.0,
            "count": count,
        }
    n = len(truth)
    right, wrong = (answered == truth) & accepted, (answered != truth) & accepted
    return {
        "answers": {
            "named_right": int(right.sum()),
            "named_wrong": int(wrong.sum()),
            "unknown": int((~accepted).sum()),
        },
        "named_right_rate": float(right.mean()) if n else 0.0,
        "named_wrong_rate": float(wrong.mean()) if n else 0.0,
        "accuracy": float((predicted == truth).mean()) if n else 0.0,
        "false_reject_rate": float((~accepted).mean()) if n else 0.0,
        "n": n,
        "labels": list(labels),
        "per_speaker": per_speaker,
        "confusion": confusion.tolist(),
    }


def open_set_rates(
    decision: Decision,
    features: np.ndarray,
    recording_issues: Sequence[Sequence[Issue]] | None = None,
    conditions: Sequence[str] | None = None,
) -> dict[str, float | int]:
    """How many clips of speakers outside the model are accepted as someone (false accepts),
    and how many are refused as a poor recording."""
    if len(features) == 0:
        return {"n": 0, "false_accept_rate": 0.0, "rejected": 0, "poor_recording": 0}
    reasons = decision.decide(features, recording_issues, conditions)[3]
    accepted = np.array([r is None for r in reasons], dtype=bool)
    return {
        "n": len(features),
        "false_accept_rate": float(accepted.mean()),
        "rejected": int((~accepted).sum()),
        "poor_recording": reasons.count("poor_recording"),
    }


def _share(part: np.ndarray, whole: np.ndarray) -> float | None:
    """``part``'s count over ``whole``'s, None when ``whole`` holds none."""
    return float(part.sum() / whole.sum()) if whole.any() else None


def condition_figures(
    decision: Decision,
    labels: Sequence[str],
    features: np.ndarray,
    speakers: Sequence[str],
    judged: Judged,
) -> dict[str, dict[str, float | int | None]]:
    """Per recording condition a clip's issues point to (``pipeline.quality.issues.condition``;
    each clip judged as ``judged`` says), for
    clips of known and unknown ``speakers`` alike: how many of the known clips are named
    (``coverage``), how many of those rightly (``named_precision``), how many are refused
    (``false_reject_rate``) and, of those, for their recording (``poor_recording``); and how
    many of the unknown speakers' clips are named (``false_accept_rate``). None: no such clip."""
    reasons, answered = decision.decide(features, judged.causes, judged.conditions)[3:]
    index = {label: i for i, label in enumerate(labels)}
    truth = np.array([index.get(s, -1) for s in speakers], dtype=int)
    known = truth >= 0
    named = np.array([r is None for r in reasons], dtype=bool)
    poor = np.array([r == "poor_recording" for r in reasons], dtype=bool)
    kinds = np.array([condition(found) for found in judged.issues])
    figures: dict[str, dict[str, float | int | None]] = {}
    for kind in CONDITIONS:
        here = kinds == kind
        mine, strangers = here & known, here & ~known
        figures[kind] = {
            "n": int(mine.sum()),
            "coverage": _share(mine & named, mine),
            "named_precision": _share(mine & named & (answered == truth), mine & named),
            "false_reject_rate": _share(mine & ~named, mine),
            "poor_recording": _share(mine & poor, mine & ~named),
            "n_unknown_speakers": int(strangers.sum()),
            "false_accept_rate": _share(strangers & named, strangers),
        }
    return figures


def measure_recordings(
    recordings: Sequence[dataset.Recording], cfg: FeatureConfig, max_seconds: float
) -> Judged:
    """Each recording's issues, signs and condition for a model of ``cfg``, as
    ``pipeline.predict`` finds them."""
    qualities = [
        clip_quality(decode(r.path, sample_rate=cfg.sample_rate, max_seconds=max_seconds))
        for r in recordings
    ]
    return judge_recordings(qualities, cfg.fmax)


def evaluate_folder(
    folder: str | os.PathLike[str],
    model: Bundle | Decision,
    labels: Sequence[str] | None = None,
    cfg: FeatureConfig | None = None,
    *,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    jobs: int | None = None,
    cache_dir: Path | None = None,
    progress: bool = False,
    known_rows: np.ndarray | None = None,
    auroc_decision: Decision | None = None,
    learnt: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Figures for ``folder/<speaker>/...``, which may hold known and unknown speakers, as
    ``model`` answers them: a bundle (its decision, labels and feature config; ``labels`` and
    ``cfg``, when given, must be its own), or a decision with the ``labels`` of its outputs (or
    none, to count every clip as an unknown speaker's) and the ``cfg`` of its input rows.

    Clips of speakers in ``labels`` get :func:`classification_report`'s figures; the others are
    counted under ``unknown_speakers`` with their false-accept rate, never silently dropped;
    ``conditions`` splits both by the recording condition each clip resembles
    (:func:`condition_figures`), each clip judged with its recording's issues;
    with both, ``open_set_auroc`` says how well the distance alone tells them apart (for a folder
    of strangers only, against ``known_rows``: feature rows of known speakers' clips, measured
    by ``auroc_decision`` when given, one whose references do not hold them).
    Files that cannot be used are listed under ``skipped``; a folder with no usable clip is a
    :class:`DatasetError`. ``warnings`` names each folder that matches a label only in letter
    case (``dad`` beside ``Dad``), whose clips count as unknown speakers, and counts the clips
    skipped, unscored, for the bytes of a clip the model learnt from (``learnt``, as
    ``pipeline.dataset.extract_features`` takes it, with the other extraction options; for a
    bundle, by default, the clips it keeps the digests of: ``pipeline.learnt``).
    """
    folder = as_path("folder", folder)
    decision, labels, cfg = _model_parts(model, labels, cfg)
    if learnt is None and isinstance(model, Bundle):
        learnt = learnt_clips(model)
    extraction = dataset.extract_features(
        dataset.scan_folder(folder), cfg, max_seconds=max_seconds, jobs=jobs,
        cache_dir=cache_dir, progress=progress, learnt=learnt,
    )  # fmt: skip
    if not extraction.recordings:
        raise _no_usable_clips(folder, extraction, learnt or {})
    speakers = [r.speaker for r in extraction.recordings]
    known = np.array([s in labels for s in speakers], dtype=bool)
    rows = extraction.features
    judged = measure_recordings(extraction.recordings, cfg, max_seconds)
    report = _scored(decision, labels, rows, speakers, known, judged)
    known_rows = rows[known] if known.any() or known_rows is None else known_rows
    report["open_set_auroc"] = _open_set_auroc(auroc_decision or decision, known_rows,
                                               rows[~known])  # fmt: skip
    report["skipped"] = extraction.skipped_files(folder)
    report["warnings"] = _folder_warnings(extraction, labels, learnt or {})
    return report


def _scored(
    decision: Decision, labels: Sequence[str], rows: np.ndarray, speakers: Sequence[str],
    known: np.ndarray, judged: Judged,
) -> dict[str, Any]:  # fmt: skip
    """:func:`classification_report`'s figures for the clips of known speakers (``known``: a
    flag per row), with ``unknown_speakers`` for the others' and ``conditions`` for both."""
    causes, kinds = judged.causes, judged.conditions
    mine, others = np.flatnonzero(known), np.flatnonzero(~known)
    report = classification_report(
        decision, labels, rows[known], [s for s in speakers if s in labels],
        [causes[i] for i in mine], [kinds[i] for i in mine],
    )  # fmt: skip
    report["unknown_speakers"] = open_set_rates(
        decision, rows[~known], [causes[i] for i in others], [kinds[i] for i in others]
    )
    report["conditions"] = condition_figures(decision, labels, rows, speakers, judged)
    return report


def _folder_warnings(
    extraction: dataset.Extraction, labels: Sequence[str], learnt: Mapping[str, str]
) -> list[str]:
    """:func:`case_mismatches`'s, and how many clips were skipped for the bytes of a clip the
    model learnt from (``learnt``: sha256 -> name)."""
    found = case_mismatches(sorted({r.speaker for r in extraction.recordings}), labels)
    copies = sum(extraction.digests.get(r) in learnt for r, _ in extraction.skipped)
    if copies:
        found.append(
            f"{copies} clip(s) have the same bytes as clips the model learnt from: skipped, "
            "not scored"
        )
    return found


def _open_set_auroc(
    judge: Decision, known_rows: np.ndarray, unknown_rows: np.ndarray
) -> float | None:
    """How well ``judge``'s distance alone tells known rows from unknown ones; None without both."""
    if not (len(known_rows) and len(unknown_rows)):
        return None
    return auroc(judge.decide(known_rows)[2], judge.decide(unknown_rows)[2])


def _model_parts(
    model: Bundle | Decision, labels: Sequence[str] | None, cfg: FeatureConfig | None
) -> tuple[Decision, list[str], FeatureConfig]:
    """The decision, labels and feature config to evaluate with, each checked against
    ``model``: labels and a config of another model give figures that mean nothing."""
    if isinstance(model, Bundle):
        if labels is not None and tuple(labels) != model.labels:
            raise ParameterError(
                f"labels={labels!r} are not the model's labels {model.labels!r}: leave them out "
                "to use the model's"
            )
        if cfg is not None and cfg != model.feature_config:
            raise ParameterError(
                "cfg is not the model's feature config: leave it out to use the model's"
            )
        return model.decision(), list(model.labels), model.feature_config
    if not isinstance(model, Decision):
        raise ParameterError(
            f"model={model!r} must be a Bundle (voiceid.load_bundle) or a Decision"
        )
    inputs, _, outputs = model.network.sizes
    if isinstance(labels, str) or labels is None or not all(isinstance(x, str) for x in labels):
        raise ParameterError(f"labels={labels!r} must be a list of the model's speaker names")
    if labels and len(labels) != outputs:  # none: every clip is of an unknown speaker
        raise ParameterError(f"labels={list(labels)!r} are {len(labels)}; the model has {outputs}")
    if not isinstance(cfg, FeatureConfig) or cfg.row_width < inputs:  # rows may carry more
        raise ParameterError(
            f"cfg must be the FeatureConfig of the model's rows of {inputs} or more values, not "
            f"{cfg!r}"
        )
    return model, list(labels), cfg


def _no_usable_clips(
    folder: Path, extraction: dataset.Extraction, learnt: Mapping[str, str]
) -> DatasetError:
    """The error for a folder whose every clip is skipped, with why, as the CLI lists them; when
    each is a clip the model learnt from (``learnt``: sha256 -> name), what to score instead."""
    copies = sum(extraction.digests.get(r) in learnt for r, _ in extraction.skipped)
    if copies and copies == len(extraction.skipped):
        return DatasetError(
            f"every clip in {str(folder)!r} ({copies}) is one the model learnt from, so its "
            "figures would say nothing of new recordings: evaluate on clips it has not heard "
            "(keep some of each speaker's out of the training folder)"
        )
    skipped = extraction.skipped_files(folder)
    return DatasetError(f"no usable clips in {str(folder)!r}: {dataset.skips_in_words(skipped)}")


def case_mismatches(folders: Sequence[str], labels: Sequence[str]) -> list[str]:
    """A warning for each folder name that is no label but equals one apart from letter case."""
    by_case = {label.casefold(): label for label in labels}
    return [
        f"folder {name!r} matches no label, only {by_case[name.casefold()]!r} in another case: "
        "its clips count as unknown speakers (labels are case-sensitive; rename the folder)"
        for name in folders
        if name not in labels and name.casefold() in by_case
    ]
