"""Folders of recordings in, feature rows out: scanning, parallel extraction and the cache.

A data folder holds one subfolder per speaker, recordings anywhere below it:
``DATA_DIR/<speaker>/**/*.wav|flac|ogg|mp3|m4a|...`` (``AUDIO_EXTENSIONS``). Labels are the
sorted subfolder names.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
import select
import signal
import sys
import threading
import warnings
import zipfile
from collections.abc import Collection, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from pipeline.audio import (
    AUDIO_EXTENSIONS,
    DEFAULT_MAX_SECONDS,
    MIN_SOURCE_RATE,
    check_max_seconds,
    decode,
    read_clip_file,
)
from pipeline.augment import CONDITIONS, degrade, draw_condition, speech_crop
from pipeline.config import FeatureConfig, check_jobs
from pipeline.errors import AudioError, DatasetError, InvalidAudioError
from pipeline.features import FEATURE_VERSION, histogram
from pipeline.paths import remove_stale, temp_dir

__all__ = [
    "AUDIO_EXTENSIONS",
    "LOOPS",
    "NO_CONDITION",
    "Degradation",
    "Extraction",
    "FeatureCache",
    "Recording",
    "condition_codes",
    "copy_condition",
    "degraded_copy",
    "earlier_copies",
    "extract_features",
    "file_digest",
    "file_features",
    "folder_recordings",
    "is_recording",
    "lowest_sample_rate",
    "no_recordings",
    "printable",
    "process_pool",
    "same_bytes_reason",
    "scan_folder",
    "shown_path",
    "skip_reason",
    "skips_in_words",
]

# why a link to a folder that holds it (or, through other links, leads back to one) is skipped
LOOPS = "a link back to a folder it lies in, not followed"
SKIPS_SHOWN = 5  # skipped files an error names, each with its reason, before how many more
PARALLEL_MIN_FILES = 64  # below this a process pool costs more than it saves
# Imported once in the fork server, so workers start warm. librosa loads its submodules (and
# numba) lazily on first use: without these, every worker imports them on its first clip.
WORKER_PRELOAD = ["pipeline.dataset", "librosa.core.spectrum", "librosa.filters",
                  "librosa.util.utils"]  # fmt: skip


@dataclass(frozen=True)
class Recording:
    path: Path
    speaker: str
    # why a folder's entry is listed but cannot be read (a link that loops): it is skipped with
    # this, unread; not part of what the recording is
    problem: str | None = field(default=None, compare=False)


def scan_folder(data_dir: Path) -> list[Recording]:
    """All audio files under ``data_dir/<speaker>/``, sorted by speaker then path
    (:func:`folder_recordings` says which entries those are)."""
    if not data_dir.is_dir():
        raise DatasetError(f"data folder {str(data_dir)!r} does not exist or is not a folder")
    entries = sorted(data_dir.iterdir())
    recordings = [
        recording
        for speaker_dir in entries
        if speaker_dir.is_dir() and not speaker_dir.name.startswith(".")
        for recording in folder_recordings(speaker_dir, speaker_dir.name)
    ]
    loose = [p for p in entries if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()]
    if not recordings:
        raise no_recordings(str(data_dir), len(loose))
    for speaker in sorted({r.speaker for r in recordings}):
        _check_label(speaker, data_dir)
    for warning in _left_out(data_dir, entries, loose, {r.speaker for r in recordings}):
        warnings.warn(warning, stacklevel=2)
    return recordings


def _left_out(
    data_dir: Path, entries: Sequence[Path], loose: Sequence[Path], speakers: Collection[str]
) -> list[str]:
    """What in ``data_dir`` (its sorted ``entries``) is no speaker's, though it looks meant to
    be: recordings directly in it (``loose``), speaker folders holding none (``speakers`` are
    those that hold some), and links that lead to no folder; each in words, said rather than
    left out silently."""
    found = []
    if loose:
        names = ", ".join(repr(p.name) for p in loose[:SKIPS_SHOWN])
        more = f" and {len(loose) - SKIPS_SHOWN} more" if len(loose) > SKIPS_SHOWN else ""
        found.append(f"{len(loose)} recording(s) lie in {str(data_dir)!r} itself, in no "
                     f"speaker's folder, and are not used: {names}{more}")  # fmt: skip
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir() and entry.name not in speakers:
            found.append(f"folder {entry.name!r} holds no recordings: not a speaker")
        elif entry.is_symlink() and not entry.exists():
            found.append(f"{entry.name!r} is a link that leads to no folder: not a speaker")
    return found


def folder_recordings(folder: Path, speaker: str) -> list[Recording]:
    """The recordings anywhere below ``folder``, each ``speaker``'s, sorted by path: the entries
    :func:`is_recording` takes, in its subfolders and in the folders its links lead to, as a
    speaker folder that is a link is read. A link back to a folder on its own way (one it lies
    in) is not followed, which would never end, and a subfolder that cannot be listed is not
    read: each is listed with why (:attr:`Recording.problem`), never left out unsaid."""
    found: list[Recording] = []
    _walk(folder, speaker, (folder.resolve(),), found)
    return sorted(found, key=lambda r: r.path)


def _walk(folder: Path, speaker: str, way: tuple[Path, ...], found: list[Recording]) -> None:
    """Add the recordings below ``folder`` to ``found``; ``way``: the real paths of the folders
    walked through to reach it, ``folder``'s last."""
    try:
        with os.scandir(folder) as listing:
            entries = list(listing)  # each knows whether it is a link or a folder, unasked
    except OSError as exc:
        found.append(Recording(folder, speaker, f"cannot list folder: {exc.strerror or exc}"))
        return
    for entry in entries:
        path = folder / entry.name
        if not _leads_to_folder(entry):
            if is_recording(entry):
                found.append(Recording(path, speaker))
            continue
        real = path.resolve() if entry.is_symlink() else way[-1] / entry.name
        if any(passed.is_relative_to(real) for passed in way):
            found.append(Recording(path, speaker, LOOPS))
        else:
            _walk(path, speaker, (*way, real), found)


def _leads_to_folder(entry: os.DirEntry[str]) -> bool:
    """Whether ``entry`` is a folder, or a link that leads to one."""
    try:
        return entry.is_dir()
    except OSError:  # a link that loops: a recording's name would make it one, skipped with why
        return False


def is_recording(entry: os.DirEntry[str]) -> bool:
    """Whether a folder's ``entry``, not a folder, is read as a recording: a file ending in one
    of ``AUDIO_EXTENSIONS``, or a link that leads nowhere, whatever its name (it may have led
    to a recording, or to a folder of them), which is then skipped with why rather than left
    out unsaid; never a pipe or a device, whose reading could wait forever."""
    if entry.is_symlink() and not os.path.exists(entry.path):
        return True
    return Path(entry.name).suffix.lower() in AUDIO_EXTENSIONS and entry.is_file()


def _check_label(speaker: str, data_dir: Path) -> None:
    """Refuse a speaker folder whose name is not UTF-8: a label is written into the bundle's
    JSON, its pictures and every answer, none of which takes it."""
    try:
        speaker.encode()
    except UnicodeEncodeError:
        raise DatasetError(
            f"speaker folder '{printable(speaker)}' of '{printable(data_dir)}' has a name that "
            "is not UTF-8, which no answer could give: rename the folder"
        ) from None


def no_recordings(where: str, loose: int = 0) -> DatasetError:
    """The error for a data folder with no audio file in a speaker's subfolder; ``loose`` audio
    files lie in the folder itself."""
    endings = ", ".join(sorted(AUDIO_EXTENSIONS))
    found = (f"; {loose} audio file(s) lie in the folder itself: put each speaker's takes in a "
             "subfolder named after them") if loose else ""  # fmt: skip
    return DatasetError(f"no recordings found in {where!r}: expected <speaker>/<clip> files ending "
                        f"in one of {endings}{found}")  # fmt: skip


def lowest_sample_rate(paths: Iterable[Path]) -> int | None:
    """The lowest original sample rate among the files libsndfile can read (header only).

    Files below ``MIN_SOURCE_RATE`` are left out: decoding refuses them (they are skipped, and
    named), so one such file must not narrow the band layout of the whole model.
    """
    rates = []
    for path in paths:
        try:
            # As bytes: soundfile encodes a str strictly, and a name need not be valid UTF-8.
            rates.append(sf.info(os.fsencode(path)).samplerate)
        except (sf.LibsndfileError, RuntimeError):
            continue
    usable = [rate for rate in rates if rate >= MIN_SOURCE_RATE]
    return min(usable) if usable else None


@dataclass(frozen=True)
class Degradation:
    """Which degraded copy of a clip to make: copy number ``copy`` under seed ``seed``; with
    ``crop``, a random part of its speech instead (``pipeline.augment.speech_crop``)."""

    seed: int
    copy: int = 0
    crop: bool = False


def file_features(
    path: Path, cfg: FeatureConfig, max_seconds: float, degradation: Degradation | None = None
) -> np.ndarray:
    """Decode one file and return its (cfg.row_width,) feature row.

    With ``degradation``, the histogram of a degraded copy (``pipeline.augment.degrade``), drawn
    from its seed, its copy number and the file's content, so the same file always gets the same
    copy.
    """
    data = read_clip_file(path, max_seconds)  # refused by size before a large file is read
    y = decode(data, sample_rate=cfg.sample_rate, max_seconds=max_seconds).samples
    if degradation is not None:
        y = degraded_copy(y, data, cfg.sample_rate, degradation)
    return histogram(y, cfg)


def _copy_rng(digest: str, degradation: Degradation) -> np.random.Generator:
    """The generator copy ``degradation`` of a file whose bytes' sha256 is ``digest`` (hex) is
    drawn from."""
    content = int.from_bytes(bytes.fromhex(digest)[:8], "little")
    crop = [1] if degradation.crop else []
    return np.random.default_rng([degradation.seed, degradation.copy, content, *crop])


def degraded_copy(
    y: np.ndarray, data: bytes, sample_rate: int, degradation: Degradation
) -> np.ndarray:
    """Copy ``degradation`` of ``y``, the waveform decoded from the file bytes ``data``.

    Drawn from its seed, its copy number and the file's content, so the same file always gets
    the same copy, whichever process or machine computes it.
    """
    rng = _copy_rng(hashlib.sha256(data).hexdigest(), degradation)
    if degradation.crop:
        return speech_crop(y, sample_rate, rng)
    return degrade(y, sample_rate, rng)


NO_CONDITION = -1  # the condition code of a crop, a missing copy or an unreadable file


def copy_condition(digest: str, degradation: Degradation) -> str | None:
    """The condition (``pipeline.augment.CONDITIONS``) that makes copy ``degradation`` of a
    file whose bytes' sha256 is ``digest`` (hex), found without making the copy; None for a
    crop."""
    return None if degradation.crop else draw_condition(_copy_rng(digest, degradation))


def condition_codes(
    digests: Sequence[str | None], degradations: Sequence[Degradation]
) -> np.ndarray:
    """(files, degradations) int8: the index in ``pipeline.augment.CONDITIONS`` of the
    condition that makes each copy of each file, given the sha256 of its bytes
    (:func:`file_digest`); ``NO_CONDITION`` for a crop or a file without a digest."""
    names = list(CONDITIONS)
    codes = np.full((len(digests), len(degradations)), NO_CONDITION, dtype=np.int8)
    for i, digest in enumerate(digests):
        for j, degradation in enumerate(degradations):
            name = None if digest is None else copy_condition(digest, degradation)
            codes[i, j] = NO_CONDITION if name is None else names.index(name)
    return codes


class FeatureCache:
    """Feature rows keyed by the sha256 of a file's bytes, one file per feature config.

    A re-run on the same recordings decodes nothing; a changed file, or a changed config, misses.
    Files that failed are remembered with their error, so they are not decoded again either.
    """

    def __init__(
        self,
        root: Path,
        cfg: FeatureConfig,
        max_seconds: float,
        degradation: Degradation | None = None,
    ) -> None:
        settings = {"cfg": cfg.to_dict(), "max_seconds": max_seconds, "code": FEATURE_VERSION}
        if degradation is not None:
            key = dataclasses.asdict(degradation)
            if not degradation.crop:
                del key["crop"]  # a degraded copy keeps the key it had before crops existed
            settings["degradation"] = key
        token = json.dumps(settings, sort_keys=True)
        self.path = root / f"features-{hashlib.sha256(token.encode()).hexdigest()[:16]}.npz"
        self.width = cfg.row_width  # of every row, and of none when only failures are held
        self.rows: dict[str, np.ndarray] = {}
        self.errors: dict[str, str] = {}
        self._dirty = False
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        try:
            with np.load(self.path, allow_pickle=False) as data:
                rows = data["rows"]
                if rows.ndim != 2 or rows.shape[1] != self.width or rows.dtype != np.float32:
                    raise ValueError(f"rows of shape {rows.shape} and dtype {rows.dtype}")
                self.rows = dict(zip(data["keys"].tolist(), rows, strict=True))
                self.errors = dict(
                    zip(data["error_keys"].tolist(), data["error_texts"].tolist(), strict=True)
                )
        except (OSError, EOFError, zipfile.BadZipFile, KeyError, ValueError):
            self.rows, self.errors = {}, {}  # a damaged cache is only a slower run

    def put(self, key: str, row: np.ndarray | None, error: str | None) -> None:
        if row is not None:
            self.rows[key] = row
        elif error is not None:
            self.errors[key] = error
        self._dirty = True

    def save(self) -> None:
        if not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(self.path.parent.glob(f"{self.path.stem}.tmp*.npz"))  # killed saves'
        tmp = self.path.with_suffix(f".tmp{os.getpid()}.npz")
        try:
            np.savez(
                tmp,
                keys=np.array(list(self.rows), dtype="U64"),
                rows=np.array(list(self.rows.values()), dtype=np.float32).reshape(-1, self.width),
                error_keys=np.array(list(self.errors), dtype="U64"),
                error_texts=np.array(list(self.errors.values()), dtype=str),
            )
            tmp.replace(self.path)
        finally:  # an interrupted save leaves no half-written file behind
            tmp.unlink(missing_ok=True)
        self._dirty = False

    def save_or_warn(self) -> None:
        """:meth:`save`, or a warning when it cannot be written: the rows are computed, only
        the next run is slower."""
        try:
            self.save()
        except OSError as exc:
            warnings.warn(
                f"feature cache {str(self.path.parent)!r} is not writable "
                f"({exc.strerror or exc}); continuing without it",
                stacklevel=3,
            )


@dataclass
class Extraction:
    """Feature rows for the recordings that worked, and the reason for each that did not."""

    recordings: list[Recording]
    features: np.ndarray  # (len(recordings), cfg.row_width) float32
    skipped: list[tuple[Recording, str]] = field(default_factory=list)
    decoded: int = 0  # how many files were decoded (cache misses)
    digests: dict[Recording, str] = field(default_factory=dict)  # sha256 of each file read

    def skipped_files(self, root: Path) -> list[dict[str, str]]:
        """Each skipped file, relative to ``root``, with the reason, as the reports list them."""
        return [{"file": shown_path(r.path, root), "error": e} for r, e in self.skipped]


def skips_in_words(skipped: Sequence[dict[str, str]]) -> str:
    """The first ``SKIPS_SHOWN`` files of ``skipped`` (as :meth:`Extraction.skipped_files`
    lists them), each with its reason, then how many more: for an error, after which no report
    lists them."""
    shown = [f"{s['file']}: {s['error']}" for s in skipped[:SKIPS_SHOWN]]
    if len(skipped) > SKIPS_SHOWN:
        shown.append(f"and {len(skipped) - SKIPS_SHOWN} more")
    return "; ".join(shown)


def shown_path(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when it lies in it, else as it is, as :func:`printable`."""
    return printable(path.relative_to(root) if path.is_relative_to(root) else path)


def printable(path: str | Path) -> str:
    """``path`` as text that every output takes: bytes of a name that are not UTF-8, which
    Python keeps as lone surrogates that printing, JSON and Parquet refuse, as ``\\xff``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


class Outcome(NamedTuple):
    """One file's row, or why it has none; ``lasting`` errors depend on the bytes alone."""

    row: np.ndarray | None
    error: str | None
    lasting: bool


def file_digest(path: Path) -> str | None:
    """The file's sha256, or None when it cannot be read (it is then decoded, and skipped)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _worker_init(parent: int) -> None:
    # BLAS threads spin on the histogram's small matrix product: many times slower than one.
    threadpool_limits(limits=1, user_api="blas")
    # Ctrl-C reaches the whole process group: the parent stops the pool, and a worker's own
    # KeyboardInterrupt would only print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _end_with(parent)


def _end_with(parent: int) -> None:
    """End this worker when process ``parent``, which made the pool, ends, however it ends.
    Killed outright (``kill -9``, the OOM killer, a training job's time limit), it says nothing
    to its workers, which would wait for work for ever, holding their memory and the fork
    server; a thread waits on the parent's pidfd instead, and exits with it (Linux)."""
    try:
        fd = os.pidfd_open(parent)
    except ProcessLookupError:  # gone already
        os._exit(1)
    except (AttributeError, OSError):  # no pidfds here: as before, the parent must stop us
        return

    def wait() -> None:
        select.select([fd], [], [])  # readable once the process has ended
        os._exit(1)

    threading.Thread(target=wait, name="end-with-parent", daemon=True).start()


def process_pool(jobs: int, preload: Sequence[str] = ()) -> ProcessPoolExecutor:
    """``jobs`` worker processes for feature extraction, BLAS held to one thread in each.

    forkserver: safe even when TensorFlow (not fork-safe) is already loaded in this process.
    ``preload`` names modules, beyond the feature code's, imported once in the fork server.
    """
    temp_dir()  # where the fork server's socket goes: say so now if there is nowhere
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([*WORKER_PRELOAD, *preload])
    return ProcessPoolExecutor(
        jobs, mp_context=ctx, initializer=_worker_init, initargs=(os.getpid(),)
    )


def skip_reason(exc: Exception) -> tuple[str, bool]:
    """The message a file is skipped with, and whether it lasts (depends on the bytes alone).

    An undecodable file may decode once ffmpeg is installed, and an unreadable one once it is
    readable: those reasons do not last, and are not cached. Any other failure is named with
    its type, and not cached either.
    """
    if isinstance(exc, OSError):
        return f"cannot read file: {exc.strerror or exc}", False
    if not isinstance(exc, AudioError):
        return f"cannot use file: {type(exc).__name__}: {exc}", False
    return str(exc), isinstance(exc, InvalidAudioError)


Task = tuple[Path, FeatureConfig, float, Degradation | None]


def _extract_one(args: Task) -> Outcome:
    try:
        return Outcome(file_features(*args), None, True)
    except Exception as exc:  # whatever one file does, it is skipped and named, not fatal
        return Outcome(None, *skip_reason(exc))


def _cached(cache: FeatureCache | None, key: str | None) -> Outcome:
    if cache is None or key is None:  # cannot happen: such files are always decoded
        return Outcome(None, "not decoded", False)
    return Outcome(cache.rows.get(key), cache.errors.get(key), True)


def earlier_copies(keys: Sequence[str | None]) -> dict[int, int]:
    """Each file whose bytes (sha256 ``keys``) an earlier one has, by index, and the index of
    the first with them: one recording given twice, under one speaker or two, counts once."""
    first: dict[str, int] = {}
    earliest = {i: first.setdefault(key, i) for i, key in enumerate(keys) if key is not None}
    return {i: j for i, j in earliest.items() if j != i}


def same_bytes_reason(first: Path, copy: Path) -> str:
    """Why ``copy``, with the bytes of the usable file ``first``, is skipped."""
    if copy == first:
        return "given more than once, counted once"
    return f"the same bytes as {printable(first)!r}, counted once"


def _run_jobs(tasks: list[Task], jobs: int, progress: bool) -> list[Outcome]:
    bar = {"total": len(tasks), "unit": "clip", "disable": not progress, "file": sys.stderr}
    if jobs <= 1 or len(tasks) < PARALLEL_MIN_FILES:
        with threadpool_limits(limits=1, user_api="blas"):
            return [_extract_one(t) for t in tqdm(tasks, desc="features", **bar)]
    chunk = max(1, min(64, len(tasks) // (jobs * 8)))
    with process_pool(jobs) as pool:
        try:
            return list(
                tqdm(pool.map(_extract_one, tasks, chunksize=chunk), desc="features", **bar)
            )
        except BaseException:  # Ctrl-C: leaving the pool waits for what runs, not the rest
            pool.shutdown(cancel_futures=True)
            raise


def _digests_of(
    recordings: Sequence[Recording], known: Mapping[Recording, str]
) -> list[str | None]:
    """The :func:`file_digest` of each of ``recordings``, hashing only those ``known`` lacks;
    None for one with a problem, which is not read."""
    return [
        None if r.problem is not None else known.get(r) or file_digest(r.path) for r in recordings
    ]


def extract_features(
    recordings: Sequence[Recording],
    cfg: FeatureConfig,
    *,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    jobs: int | None = None,
    cache_dir: Path | None = None,
    progress: bool = False,
    degradation: Degradation | None = None,
    digests: Mapping[Recording, str] | None = None,
    learnt: Mapping[str, str] | None = None,
) -> Extraction:
    """Histograms for ``recordings``, in parallel across ``jobs`` processes (default: all cores).

    Files that cannot be used are skipped and listed with the reason, never fatal; so is a usable
    file with the same bytes as an earlier one, and, unread, one with the bytes of a clip a model
    learnt from (``learnt``: each one's sha256 and name), which a score must not count. With
    ``cache_dir``, rows are looked up by content hash and new ones stored.
    With ``degradation``, the rows are of degraded copies (see ``file_features``). ``digests``
    (an earlier extraction's) spares hashing those files again.
    A ``max_seconds`` out of range (``pipeline.audio.check_max_seconds``) and ``jobs`` that is
    not a positive integer are refused first.
    """
    check_max_seconds(max_seconds)
    check_jobs("jobs", jobs)
    jobs = jobs or os.cpu_count() or 1
    cache = (
        FeatureCache(cache_dir, cfg, max_seconds, degradation) if cache_dir is not None else None
    )
    keys = _digests_of(recordings, digests or {})
    copy_of = earlier_copies(keys)
    settled = _settled(recordings, keys, learnt or {})
    missing = [
        i
        for i, k in enumerate(keys)
        if i not in copy_of
        and i not in settled
        and (cache is None or k is None or (k not in cache.rows and k not in cache.errors))
    ]
    tasks = [(recordings[i].path, cfg, max_seconds, degradation) for i in missing]
    computed = _run_jobs(tasks, jobs, progress)
    results = dict(zip(missing, computed, strict=True))
    if cache is not None:
        for i, outcome in results.items():
            key = keys[i]
            if key is not None and outcome.lasting:
                cache.put(key, outcome.row, outcome.error)
        cache.save_or_warn()
    results |= settled
    outcomes = [_outcome_of(i, recordings, copy_of, results, cache, keys)
                for i in range(len(recordings))]  # fmt: skip
    kept = [r for r, o in zip(recordings, outcomes, strict=True) if o.row is not None]
    rows = [o.row for o in outcomes if o.row is not None]
    skipped = [(r, o.error or "unknown error")
               for r, o in zip(recordings, outcomes, strict=True) if o.row is None]  # fmt: skip
    features = np.array(rows, dtype=np.float32).reshape(len(rows), cfg.row_width)
    hashed = {r: key for r, key in zip(recordings, keys, strict=True) if key is not None}
    return Extraction(kept, features, skipped, decoded=len(missing), digests=hashed)


def _outcome_of(
    i: int, recordings: Sequence[Recording], copy_of: Mapping[int, int],
    results: Mapping[int, Outcome], cache: FeatureCache | None, keys: Sequence[str | None],
) -> Outcome:  # fmt: skip
    """Recording ``i``'s outcome: what decoding it (or the file with its bytes that came first)
    gave, or why it was not read; a usable copy of an earlier file is skipped, naming that file."""
    j = copy_of.get(i, i)  # a copy shares its first's outcome: a refusal, or being used
    outcome = results[j] if j in results else _cached(cache, keys[j])
    if outcome.row is not None and j != i:
        return Outcome(None, same_bytes_reason(recordings[j].path, recordings[i].path), False)
    return outcome


def _settled(
    recordings: Sequence[Recording], keys: Sequence[str | None], learnt: Mapping[str, str]
) -> dict[int, Outcome]:
    """The recordings skipped unread, by index: those with a problem, and those with the bytes
    (sha256 ``keys``) of a clip a model learnt from (``learnt``: sha256 -> its name)."""
    settled = {}
    for i, (rec, key) in enumerate(zip(recordings, keys, strict=True)):
        if rec.problem is not None:
            settled[i] = Outcome(None, rec.problem, False)
        elif key is not None and key in learnt:
            settled[i] = Outcome(None, _learnt_reason(learnt[key]), False)
    return settled


def _learnt_reason(name: str) -> str:
    """Why a file with the bytes of ``name``, a clip a model learnt from, is not scored."""
    return f"the same bytes as {name!r}, a clip the model learnt from: not scored"
