"""From uploaded clips to the speaker store: the work behind ``POST /speakers/{name}/clips``.

Each clip is decoded and featurised on the compute thread exactly as ``/predict`` would (same
limits, same errors, the current model's feature config); the clips that pass are then written
to the store together, under its lock, in a thread of their own, so the compute thread never
waits on another process's lock.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from pipeline.audio import decode
from pipeline.bundle import Bundle
from pipeline.config import FeatureConfig
from pipeline.errors import AudioError, BundleError
from pipeline.features import histogram
from pipeline.learnt import LearntClip, model_clips
from pipeline.predict import clip_quality, clip_spectrum
from pipeline.quality.issues import issues
from pipeline.quality.measures import Quality
from pipeline.speakers import Added, Clash, NewClip, SpeakerStore, clip_extension
from pipeline.takes import check_takes
from service.errors import detail_for, status_for
from service.inference import oversized
from service.schemas import AcceptedClip, ClipsResponse, QualityReport, RefusedClip, TakesReport
from service.settings import Settings

__all__ = ["CheckedClip", "answer_status", "check_clip", "check_clips", "learnt_by",
           "store_clips", "takes_report"]  # fmt: skip

log = logging.getLogger("voiceid.enrolment")

NOTHING_ACCEPTED_STATUS = 422  # when nothing was accepted and the refusals differ in status
CLASH_STATUS = 409  # a clip the store holds as another speaker's
TAKES_REMEMBERED = 2048  # stored takes whose measures are kept, a few hundred bytes each


@dataclass(frozen=True)
class CheckedClip:
    """A clip that passed: its part's file name, what to store, its histogram and quality."""

    file: str
    clip: NewClip
    histogram: list[float]
    quality: QualityReport


def check_clip(
    cfg: FeatureConfig, name: str, data: bytes, settings: Settings
) -> CheckedClip | RefusedClip:
    """One take checked as ``/predict`` checks a clip (``pipeline.predict.clip_histogram``'s
    steps), its recording measured once it decodes, refused or not."""
    quality = None
    try:
        clip = decode(data, sample_rate=cfg.sample_rate, max_seconds=settings.max_clip_seconds)
        spectrum = clip_spectrum(clip, cfg)  # one short-time spectrum for both
        measured = clip_quality(clip, spectrum)
        quality = QualityReport.of(measured, issues(measured, cfg.fmax))
        row = histogram(clip.samples, cfg, spectrum=spectrum)
        extension = clip_extension(data)
    except AudioError as exc:
        return RefusedClip(
            file=name, status=status_for(exc), detail=detail_for(exc), quality=quality
        )
    shown = row[: cfg.n_bands].tolist()  # the histogram; the band spread after it is the model's
    return CheckedClip(name, NewClip(data, extension, clip.duration_s), shown, quality)


def check_clips(
    cfg: FeatureConfig, files: list[tuple[str, memoryview]], settings: Settings
) -> list[CheckedClip | RefusedClip]:
    """One outcome per file (views into the body: ``service.uploads.read_batch``), in order:
    checked, or refused with the status /predict gives; a checked clip holds its own bytes."""
    return [
        RefusedClip(file=name, status=413, detail=detail)
        if (detail := oversized(data, settings)) is not None
        else check_clip(cfg, name, bytes(data), settings)
        for name, data in files
    ]


@lru_cache(maxsize=4)
def _model_clips(path: Path, version: str | None) -> Mapping[str, LearntClip]:
    del version  # a version's folder never changes: it only keys the cache
    return model_clips(path)


def learnt_by(bundle: Bundle) -> Mapping[str, LearntClip]:
    """The clips ``bundle`` learnt from, not a store's, by sha256 (``pipeline.learnt``), read
    once a version; none, with a warning in the log, when its training set cannot be read."""
    try:
        return _model_clips(bundle.path, bundle.version)
    except BundleError as exc:
        log.warning("cannot tell which clips the model learnt from: %s", exc)
        return {}


def _not_learnt(
    outcome: CheckedClip | RefusedClip, name: str, learnt: Mapping[str, LearntClip]
) -> CheckedClip | RefusedClip:
    """``outcome``, or its refusal when its bytes are a clip's the model learnt from: the next
    training would refuse it (``pipeline.enrol``), so the store does so now."""
    if isinstance(outcome, RefusedClip) or not learnt:
        return outcome
    clip = learnt.get(hashlib.sha256(outcome.clip.data).hexdigest())
    if clip is None:
        return outcome
    why = (
        "it holds nothing new: leave it out"
        if clip.speaker == name
        else "one recording cannot teach two voices: record a take of your own"
    )
    return RefusedClip(
        file=outcome.file, status=CLASH_STATUS, quality=outcome.quality,
        detail=f"this clip has the same bytes as {clip.file!r}, a clip of {clip.speaker!r} "
        f"the model learnt from: {why}",
    )  # fmt: skip


def store_clips(
    store: SpeakerStore,
    name: str,
    outcomes: list[CheckedClip | RefusedClip],
    *,
    model_labels: Sequence[str],
    add_to_existing: bool,
    learnt: Mapping[str, LearntClip] | None = None,
) -> ClipsResponse:
    """Store the checked clips of ``outcomes`` under ``name`` (all or none: see
    ``SpeakerStore.add`` for what it raises), and say what became of every file, in order. A
    clip with the bytes of one in ``learnt`` (:func:`learnt_by`) is refused, not stored."""
    outcomes = [_not_learnt(o, name, learnt or {}) for o in outcomes]
    checked = [o.clip for o in outcomes if isinstance(o, CheckedClip)]
    added = iter(store.add(name, checked, model_labels=model_labels,
                           add_to_existing=add_to_existing) if checked else [])  # fmt: skip
    accepted: list[AcceptedClip] = []
    refused: list[RefusedClip] = []
    for outcome in outcomes:
        if isinstance(outcome, RefusedClip):
            refused.append(outcome)
        elif isinstance(result := next(added), Clash):
            refused.append(_clash(outcome.file, result.speaker))
        else:
            accepted.append(_accepted(outcome, result))
    return ClipsResponse(speaker=name, accepted=accepted, refused=refused)


def _accepted(checked: CheckedClip, added: Added) -> AcceptedClip:
    return AcceptedClip(id=added.id, file=checked.file, seconds=round(checked.clip.seconds, 4),
                        duplicate=added.duplicate, histogram=checked.histogram,
                        quality=checked.quality)  # fmt: skip


def _clash(file: str, speaker: str) -> RefusedClip:
    return RefusedClip(
        file=file,
        status=CLASH_STATUS,
        detail=f"the store holds this clip as one of {speaker!r}, and one recording cannot be "
        f"two speakers: remove it from {speaker!r} first if it was filed under the wrong name",
    )


def answer_status(response: ClipsResponse) -> int:
    """200 when any clip was accepted; else the refusals' status when they share one, else 422."""
    if response.accepted:
        return 200
    statuses = Counter(r.status for r in response.refused)
    return next(iter(statuses)) if len(statuses) == 1 else NOTHING_ACCEPTED_STATUS


def takes_report(
    store: SpeakerStore, name: str, bundle: Bundle, settings: Settings
) -> TakesReport | None:
    """How the store's takes of ``name`` hang together (``pipeline.takes``), in ``bundle``'s
    feature space, when each was stored being its file's time; None when it holds none. A take
    removed or unreadable since it was listed is left out."""
    rows: list[np.ndarray] = []
    qualities: list[Quality] = []
    stored_at: list[float] = []
    for path in store.clip_paths(name):
        try:
            stat = path.stat()
            row, quality = _take_measures(
                path, stat.st_mtime_ns, stat.st_size, bundle.feature_config,
                settings.max_clip_seconds,
            )  # fmt: skip
        except (OSError, AudioError):
            continue
        rows.append(row)
        qualities.append(quality)
        stored_at.append(stat.st_mtime)
    if not rows:
        return None
    check = check_takes(bundle.network.standardise(np.array(rows)), qualities, np.array(stored_at))
    return TakesReport.of(check)


@lru_cache(maxsize=TAKES_REMEMBERED)
def _take_measures(
    path: Path, mtime_ns: int, size: int, cfg: FeatureConfig, max_seconds: float
) -> tuple[np.ndarray, Quality]:
    """A stored take's histogram and recording measures, decoded once while its file is
    unchanged (``mtime_ns`` and ``size`` are part of the key): each new take is judged with
    all the earlier ones, and decoding them all again each time would grow with their number."""
    clip = decode(path.read_bytes(), sample_rate=cfg.sample_rate, max_seconds=max_seconds)
    return histogram(clip.samples, cfg), clip_quality(clip)
