"""The speaker store: enrolled voices in the training layout, ``<root>/<speaker>/<clip>``.

Clips are kept as the bytes that were uploaded, named ``<id>.<ext>``: the id is the first 16 hex
digits of the bytes' sha256, so the same clip twice is stored once (and never under two
speakers), and the extension is the sniffed format's, so the folder is a valid ``voiceid train``
input as it stands. Speaker names follow ``pipeline.names``: in NFC, and none that reads the same
as another speaker's. Hidden entries of the root (``.lock``, ``.versions/``, ``.jobs/``,
``.cache/``) belong to the service and are never speakers. Nor is anything whose name the API
could not have made, which a client could then neither name nor remove: a folder whose name
breaks the speaker-name rules (``We~ird``, or bytes that are not UTF-8) or is not in NFC, or a
clip whose file name is not UTF-8. Listing, training and the limits all leave such an entry out
alike, and the store logs a warning naming it, once, so that an operator can move it away.

Several server processes may share one store. Every change happens under an exclusive
``fcntl.flock`` on ``<root>/.lock``, and the limits are checked under it, so they hold exactly;
a clip appears whole or not at all (written to a hidden temporary file, then renamed), the clips
of one call all or none (all are written before any is renamed, and those renamed are removed
again when a later one fails; a process killed on the way leaves temporary files, which the
first write of every process (a restarted server's) removes, and logs), and a removed
speaker disappears at once (renamed to a hidden name, then deleted), so readers, which take no
lock, never see half a clip or half a speaker's removal.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import logging
import os
import secrets
import shutil
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from pipeline.audio import AUDIO_EXTENSIONS, decode, sniff_format
from pipeline.errors import (
    DecodeError,
    InvalidNameError,
    NameTakenError,
    NotInStoreError,
    ParameterError,
    StoreFullError,
    StoreLimitError,
    StoreReadOnlyError,
    VoiceIdError,
)
from pipeline.names import check_speaker_name, label_fault, lookalike

__all__ = [
    "CLIP_ID_DIGITS",
    "Added",
    "Clash",
    "NewClip",
    "SpeakerStore",
    "SpeakerSummary",
    "StoreLimits",
    "StoredClip",
    "check_name_is_free",
    "clip_extension",
    "clip_id",
    "clip_seconds",
    "refused_changes",
]

CLIP_ID_DIGITS = 16  # hex digits of the sha256 that name a clip: 64 bits, no collision in practice
LOCK_FILE = ".lock"
# File extensions of the sniffed containers (pipeline.audio.sniff_format) that can be stored.
_EXTENSIONS = {
    "WAV": "wav",
    "FLAC": "flac",
    "Ogg": "ogg",
    "MP3": "mp3",
    "MP4/M4A": "m4a",
    "WebM/Matroska": "webm",
    "AAC": "aac",
    "AIFF": "aiff",
}
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)  # what a write says when the disk or quota is full
_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)  # what a change says when it may not be
_PART = ".part"  # the suffix of a clip's temporary file, hidden until renamed into place
_REMOVING = ".removing-"  # the prefix of a speaker's folder on its way out
_SECONDS_RATE = 16_000  # Hz: the rate a clip is decoded at when its header gives no length

log = logging.getLogger("voiceid.speakers")


def clip_id(data: bytes) -> str:
    """A clip's id: the first 16 hex digits of the sha256 of its bytes."""
    return hashlib.sha256(data).hexdigest()[:CLIP_ID_DIGITS]


def clip_extension(data: bytes) -> str:
    """The file extension a clip is stored under (``wav``), from the format of its bytes.

    Raises :class:`DecodeError` for audio the store cannot name in a way training reads back.
    """
    sniffed = sniff_format(data)
    if sniffed in _EXTENSIONS:
        return _EXTENSIONS[sniffed]
    try:  # containers without a magic number that libsndfile reads (AU, CAF, W64, ...)
        kind = sf.info(io.BytesIO(data)).format.lower()
    except Exception:  # libsndfile fails in its own ways on bytes it does not know
        kind = ""
    if f".{kind}" in AUDIO_EXTENSIONS:
        return kind
    raise DecodeError(
        f"clips in {sniffed if sniffed != 'unknown' else 'this'} format cannot be stored: "
        f"send {', '.join(sorted(set(_EXTENSIONS)))}"
    )


@dataclass(frozen=True)
class StoreLimits:
    """How much the store takes; the field names are the service's settings."""

    max_speakers: int = 200
    max_clips_per_speaker: int = 200
    max_store_bytes: int = 1_000_000_000


@dataclass(frozen=True)
class StoredClip:
    id: str
    seconds: float
    bytes: int


@dataclass(frozen=True)
class SpeakerSummary:
    name: str
    clips: int
    seconds: float
    bytes: int


@dataclass(frozen=True)
class NewClip:
    """A clip to store: its bytes, its extension (:func:`clip_extension`) and its length."""

    data: bytes
    extension: str
    seconds: float


@dataclass(frozen=True)
class Added:
    """What :meth:`SpeakerStore.add` did with one clip: ``duplicate`` when it was there already
    (or earlier in the same call)."""

    id: str
    duplicate: bool


@dataclass(frozen=True)
class Clash:
    """A clip :meth:`SpeakerStore.add` refused: the store holds it as a clip of ``speaker``."""

    id: str
    speaker: str


class SpeakerStore:
    """The speakers and clips under ``root``, within ``limits``; ``root`` is made on first write.

    Reads take no lock. A clip's length is read from its header (the whole clip is decoded only
    when the header does not say) once per process, then kept while its file is unchanged.
    """

    def __init__(self, root: Path, limits: StoreLimits = StoreLimits()) -> None:
        self.root = root
        self.limits = limits
        self._seconds: dict[Path, tuple[int, int, float]] = {}  # path -> (mtime_ns, size, s)
        self._ignored: set[str] = set()  # entries left out of the store, each logged once
        self._memo_lock = threading.Lock()
        self._swept = False  # whether this process has removed what interrupted writes left

    # Reading

    def speakers(self) -> list[SpeakerSummary]:
        """Every speaker with at least one clip, sorted by name."""
        out = []
        for name, folder in self._speaker_folders():
            clips = self._clips_in(folder)
            if clips:
                out.append(
                    SpeakerSummary(
                        name=name,
                        clips=len(clips),
                        seconds=round(sum(c.seconds for c in clips), 4),
                        bytes=sum(c.bytes for c in clips),
                    )
                )
        return out

    def clip_files(self) -> list[tuple[str, Path]]:
        """Every clip file with its speaker's name, sorted: what a training job learns from."""
        return [(name, path) for name, folder in self._speaker_folders()
                for path in self._clip_files(folder)]  # fmt: skip

    def clips(self, name: str) -> list[StoredClip]:
        """The clips of speaker ``name``, sorted by id; none for a speaker the store lacks."""
        return self._clips_in(self._folder(name))

    def clip_paths(self, name: str) -> list[Path]:
        """The files of speaker ``name``'s clips, sorted; none for a speaker the store lacks."""
        return self._clip_files(self._folder(name))

    # Writing

    def add(
        self,
        name: str,
        clips: Sequence[NewClip],
        *,
        model_labels: Sequence[str] = (),
        add_to_existing: bool = False,
    ) -> list[Added | Clash]:
        """Store ``clips`` under speaker ``name``, all or none, and say what became of each.

        A clip the store holds as another speaker's is refused (a :class:`Clash`): one
        recording cannot be two people. Raises, with nothing written: :class:`InvalidNameError`
        when ``name`` reads as "unknown"; :class:`NameTakenError`
        when ``name`` reads the same as another speaker's in the store or in ``model_labels``
        (the served model's), or is one of ``model_labels`` that the store lacks while
        ``add_to_existing`` is false; :class:`StoreLimitError` when the new clips would take the
        store past a limit; :class:`StoreFullError` when the disk fills up on the way;
        :class:`StoreReadOnlyError` when the store's folder refuses changes.
        """
        folder = self._folder(name)
        for clip in clips:
            if f".{clip.extension}" not in AUDIO_EXTENSIONS:
                raise ParameterError(f"extension={clip.extension!r} is not one of an audio file")
        with self._locked():
            held = self._held()
            check_name_is_free(name, held, model_labels, add_to_existing=add_to_existing)
            have = {c.id for c in held.get(name, [])}
            owners = {c.id: other for other, kept in held.items() if other != name for c in kept}
            outcomes: list[Added | Clash] = []
            new: dict[str, NewClip] = {}
            for clip in clips:
                key = clip_id(clip.data)
                if key in owners:
                    outcomes.append(Clash(key, owners[key]))
                    continue
                duplicate = key in have or key in new
                outcomes.append(Added(key, duplicate))
                if not duplicate:
                    new[key] = clip
            if new:
                self._check_room(name, held, new)
                self._write_all(folder, new, make_folder=not have)
        return outcomes

    def remove_speaker(self, name: str) -> int:
        """Remove speaker ``name`` and its clips; the number of clips it had."""
        folder = self._folder(name)
        with self._locked():
            clips = self._clips_in(folder, with_seconds=False)
            if not clips:
                raise NotInStoreError(f"the store has no speaker {name!r}")
            trash = self.root / f"{_REMOVING}{secrets.token_hex(8)}"
            folder.rename(trash)  # gone for readers at once; then deleted at leisure
            shutil.rmtree(trash, ignore_errors=True)
        return len(clips)

    def remove_clip(self, name: str, clip: str) -> None:
        """Remove clip ``clip`` of speaker ``name`` (and the speaker with its last clip)."""
        folder = self._folder(name)
        with self._locked():
            files = {path.stem: path for path in self._clip_files(folder)}
            if clip not in files:  # a path is never built from the id: it must be listed
                raise NotInStoreError(f"speaker {name!r} has no clip {clip!r} in the store")
            files[clip].unlink()
            if len(files) == 1:
                with contextlib.suppress(OSError):  # it holds something of somebody else's
                    folder.rmdir()

    # Inside

    def _folder(self, name: str) -> Path:
        return self.root / check_speaker_name(name)

    def _speaker_folders(self) -> list[tuple[str, Path]]:
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return []
        return sorted(
            (entry.name, Path(entry.path))
            for entry in entries
            if not entry.name.startswith(".")
            and _is_folder(entry)
            and self._kept(entry.path, _speaker_name_fault(entry.name))
        )

    def _clip_files(self, folder: Path) -> list[Path]:
        if folder.is_symlink():  # a link put in the store is no speaker: never follow it
            return []
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(
            Path(entry.path)
            for entry in entries
            if not entry.name.startswith(".")
            and os.path.splitext(entry.name)[1].lower() in AUDIO_EXTENSIONS
            and _is_file(entry)
            and self._kept(entry.path, _clip_name_fault(entry.name))
        )

    def _kept(self, path: str, fault: str | None) -> bool:
        """Whether the entry at ``path`` is part of the store: it is not when its name has a
        ``fault``, which is logged the first time it is seen."""
        if fault is None:
            return True
        with self._memo_lock:
            first = path not in self._ignored
            self._ignored.add(path)
        if first:
            log.warning("the speaker store leaves out %r: %s", path, fault)
        return False

    def _clips_in(self, folder: Path, *, with_seconds: bool = True) -> list[StoredClip]:
        out = []
        for path in self._clip_files(folder):
            try:
                stat = path.stat()
            except FileNotFoundError:  # removed since it was listed
                continue
            seconds = self._seconds_of(path, stat) if with_seconds else 0.0
            out.append(StoredClip(path.stem, seconds, stat.st_size))
        return out

    def _seconds_of(self, path: Path, stat: os.stat_result) -> float:
        with self._memo_lock:
            known = self._seconds.get(path)
        if known is not None and known[:2] == (stat.st_mtime_ns, stat.st_size):
            return known[2]
        seconds = clip_seconds(path)
        self._remember(path, stat, seconds)
        return seconds

    def _remember(self, path: Path, stat: os.stat_result, seconds: float) -> None:
        with self._memo_lock:
            self._seconds[path] = (stat.st_mtime_ns, stat.st_size, seconds)

    def _held(self) -> dict[str, list[StoredClip]]:
        """Each speaker with clips and its clips, without reading any clip's length."""
        out = {}
        for name, folder in self._speaker_folders():
            clips = self._clips_in(folder, with_seconds=False)
            if clips:
                out[name] = clips
        return out

    def _check_room(
        self, name: str, held: dict[str, list[StoredClip]], new: dict[str, NewClip]
    ) -> None:
        limits = self.limits
        clips = len(held.get(name, []))
        if clips == 0 and len(held) >= limits.max_speakers:
            raise StoreLimitError(
                f"cannot add speaker {name!r}: the store holds {len(held)} speakers, the limit",
                limit="max_speakers",
            )
        if clips + len(new) > limits.max_clips_per_speaker:
            raise StoreLimitError(
                f"cannot add {len(new)} clips to {name!r}: it has {clips}, and the limit is "
                f"{limits.max_clips_per_speaker} clips per speaker",
                limit="max_clips_per_speaker",
            )
        stored = sum(c.bytes for kept in held.values() for c in kept)
        adding = sum(len(c.data) for c in new.values())
        if stored + adding > limits.max_store_bytes:
            raise StoreLimitError(
                f"cannot add {adding} bytes of clips: the store holds {stored} bytes, and the "
                f"limit is {limits.max_store_bytes} bytes",
                limit="max_store_bytes",
            )

    def _write_all(self, folder: Path, new: dict[str, NewClip], *, make_folder: bool) -> None:
        """Write every clip of ``new`` into ``folder``, or, when the disk says no, none.

        Every clip is written to its temporary file first, and only then are they renamed into
        place, one after another: a process killed while it writes (the slow part) leaves only
        temporary files, which the next write removes (:meth:`_sweep`)."""
        parts: list[tuple[Path, Path]] = []  # (temporary file, clip's file)
        placed: list[Path] = []
        try:
            if make_folder:
                _make_folder(folder)
            for key, clip in new.items():
                path = folder / f"{key}.{clip.extension}"
                parts.append((path.with_name(f".{path.name}.{secrets.token_hex(4)}{_PART}"), path))
                _write_synced(parts[-1][0], clip.data)
            for part, path in parts:
                os.replace(part, path)
                placed.append(path)
        except BaseException as exc:
            for path in [part for part, _ in parts] + placed:
                path.unlink(missing_ok=True)
            if make_folder:
                with contextlib.suppress(OSError):
                    folder.rmdir()
            if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
                raise StoreFullError(
                    f"the disk of the speaker store is full: none of the {len(new)} new clips "
                    "was stored; free space on it, or lower the store's size limit to what it "
                    "holds"
                ) from exc
            raise
        for path, clip in zip(placed, new.values(), strict=True):
            self._remember(path, path.stat(), round(clip.seconds, 4))

    def _sweep(self) -> None:
        """Remove what writes that were interrupted left (a process killed while it wrote
        clips, or removed a speaker): under the lock, no write is under way, so every
        temporary file and every speaker folder being removed is such a leftover."""
        try:
            entries = list(os.scandir(self.root))
        except OSError:
            return
        left = [Path(e.path) for e in entries if e.name.startswith(_REMOVING) and _is_folder(e)]
        for path in left:
            shutil.rmtree(path, ignore_errors=True)
        for entry in entries:
            if not entry.name.startswith(".") and _is_folder(entry):
                left += _remove_parts(Path(entry.path))
        if left:
            log.warning("the speaker store removes %d temporary files that an interrupted write "
                        "left: %s", len(left), ", ".join(repr(str(p)) for p in left))  # fmt: skip

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Exclusive, across processes and threads: each call opens the lock file anew, and
        ``flock`` locks belong to an open file, not to a process. A store that refuses changes
        is a :class:`StoreReadOnlyError`, whichever change finds it out."""
        with refused_changes("nothing in it was changed"):
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if not self._swept:  # once a process: what a killed one left is not in the way
                    self._sweep()
                    self._swept = True
                yield
            finally:
                os.close(fd)  # releases the lock


@contextlib.contextmanager
def refused_changes(outcome: str) -> Iterator[None]:
    """Turn the file system's refusal of a change to the speaker store's folder into our
    errors: :class:`StoreReadOnlyError` (read-only, no permission), :class:`StoreFullError` (a
    full disk); ``outcome`` says what became of the call (``nothing in it was changed``)."""
    try:
        yield
    except OSError as exc:
        if exc.errno in _READ_ONLY:
            raise StoreReadOnlyError(
                f"the speaker store cannot be written ({exc.strerror}): {outcome}; its folder "
                "must be made writable again"
            ) from exc
        if exc.errno in _DISK_FULL:
            raise StoreFullError(
                f"the disk of the speaker store is full: {outcome}; free space on it, or lower "
                "the store's size limit to leave room"
            ) from exc
        raise


def clip_seconds(path: Path) -> float:
    """A stored clip's length in seconds: from its header, else by decoding it; 0.0 when it
    cannot be read at all (a file put there by hand: training will skip it and say why)."""
    try:
        info = sf.info(str(path))
        if 0 < info.frames < 1 << 62 and info.samplerate > 0:  # 1 << 62 and up: "unknown"
            return round(info.frames / info.samplerate, 4)
    except Exception:  # libsndfile does not read this container: decode below
        pass
    try:
        return round(decode(path, sample_rate=_SECONDS_RATE).duration_s, 4)
    except (VoiceIdError, OSError):
        return 0.0


def check_name_is_free(
    name: str,
    held: dict[str, list[StoredClip]],
    model_labels: Sequence[str],
    *,
    add_to_existing: bool,
) -> None:
    """Raise :class:`NameTakenError` unless clips may go to ``name`` (see ``SpeakerStore.add``);
    enrolment from the command line holds new speakers to the same rule. A name no model could
    have as a label (``names.label_fault``: one that reads as "unknown") is an
    :class:`InvalidNameError`, even for a speaker the store already holds, since training on
    the store would refuse it."""
    if (fault := label_fault(name)) is not None:
        raise InvalidNameError(
            f"speaker name {name!r} {fault}: no model could be trained with it; choose another name"
        )
    if name in held:  # more clips of a speaker of the store
        return
    taken = lookalike(name, [*held, *model_labels])
    if taken is not None:
        where = "in the store" if taken in held else "of the model"
        raise NameTakenError(
            f"speaker name {name!r} reads the same as {taken!r}, a speaker {where}: use "
            f"{taken!r} to add to that speaker, or a name that reads differently"
        )
    if name in model_labels and not add_to_existing:
        raise NameTakenError(
            f"{name!r} is a speaker the model knows: to add these clips to its voice, say so "
            "with add_to_existing=true; for another person, choose another name"
        )


def _speaker_name_fault(name: str) -> str | None:
    """Why a folder named ``name`` cannot be a speaker the API made, or None when it can."""
    try:
        checked = check_speaker_name(name)
    except InvalidNameError as exc:
        return f"no client could name it as a speaker ({exc})"
    if checked != name:
        return "its name is not in NFC, as the API writes every speaker's"
    return None


def _clip_name_fault(name: str) -> str | None:
    """Why a file named ``name`` cannot be a clip a client can name, or None when it can."""
    try:
        name.encode()
    except UnicodeEncodeError:  # bytes that are not UTF-8, held as surrogates by os.scandir
        return "its name is not UTF-8, so no client could name the clip"
    return None


def _write_synced(path: Path, data: bytes) -> None:
    """Write ``data`` to the new file ``path``, and wait until the disk holds it."""
    with path.open("xb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def _remove_parts(folder: Path) -> list[Path]:
    """Remove the clips' temporary files from a speaker's ``folder``, and the folder when that
    leaves it empty; the files removed."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    parts = sorted(
        Path(e.path)
        for e in entries
        if e.name.startswith(".") and e.name.endswith(_PART) and _is_file(e)
    )
    for part in parts:
        part.unlink(missing_ok=True)
    if parts:
        with contextlib.suppress(OSError):  # it holds clips
            folder.rmdir()
    return parts


def _make_folder(folder: Path) -> None:
    """Make a speaker's folder, refusing a name something other than a folder holds."""
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise InvalidNameError(
            f"speaker name {folder.name!r} is taken in the store by something not a speaker folder"
        )
    folder.mkdir(exist_ok=True)


def _is_folder(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file(follow_symlinks=False)
    except OSError:
        return False
