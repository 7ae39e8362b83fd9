"""The speaker store: enrolled voices in the training layout, ``<root>/<speaker>/<clip>``.

Clips are kept as the bytes that were uploaded, named ``<id>.<ext>``: the id is the first 16 hex
digits of the bytes' sha256, so the same clip twice is stored once, and the extension is the
sniffed format's, so the folder is a valid ``voiceid train`` input as it stands. Hidden entries
of the root (``.lock``, ``.versions/``, ``.jobs/``, ``.cache/``) belong to the service and are
never speakers.

Several server processes may share one store. Every change happens under an exclusive
``fcntl.flock`` on ``<root>/.lock``, and the limits are checked under it, so they hold exactly;
a clip appears whole or not at all (written to a hidden temporary file, then renamed), and a
removed speaker disappears at once (renamed to a hidden name, then deleted), so readers, which
take no lock, never see half of either.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
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
    NotInStoreError,
    ParameterError,
    StoreLimitError,
    VoiceIdError,
)

__all__ = [
    "CLIP_ID_DIGITS",
    "MAX_NAME_CHARS",
    "NAME_PUNCTUATION",
    "NewClip",
    "SpeakerStore",
    "SpeakerSummary",
    "StoreLimits",
    "StoredClip",
    "check_speaker_name",
    "clip_extension",
    "clip_id",
    "clip_seconds",
]

MAX_NAME_CHARS = 64
NAME_PUNCTUATION = " -_."  # allowed besides letters and digits
CLIP_ID_DIGITS = 16  # hex digits of the sha256 that name a clip: 64 bits, no collision in practice
LOCK_FILE = ".lock"
_ALLOWED = "letters, digits, spaces, '-', '_' and '.'"
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
_SECONDS_RATE = 16_000  # Hz: the rate a clip is decoded at when its header gives no length


def check_speaker_name(name: str) -> str:
    """``name`` when it is a valid speaker name, else :class:`InvalidNameError` saying why.

    1-64 characters: letters (any script), digits, space, ``-``, ``_`` and ``.``; not starting
    with ``.`` or a space nor ending with a space, so a name is a plain folder name, never a
    path, a hidden entry or one that reads the same as another.
    """
    if not name:
        raise InvalidNameError(f"speaker name is empty: use 1-{MAX_NAME_CHARS} {_ALLOWED}")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidNameError(
            f"speaker name {name!r} is {len(name)} characters long: at most {MAX_NAME_CHARS} "
            "are allowed"
        )
    for separator in ("/", "\\"):
        if separator in name:
            raise InvalidNameError(f"speaker name {name!r} holds a path separator {separator!r}")
    for char in name:
        if not (char.isalpha() or char.isdecimal() or char in NAME_PUNCTUATION):
            raise InvalidNameError(f"speaker name {name!r} holds {char!r}: use only {_ALLOWED}")
    if name[0] in ". ":
        raise InvalidNameError(f"speaker name {name!r} starts with {name[0]!r}")
    if name.endswith(" "):
        raise InvalidNameError(f"speaker name {name!r} ends with a space")
    return name


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


class SpeakerStore:
    """The speakers and clips under ``root``, within ``limits``; ``root`` is made on first write.

    Reads take no lock. A clip's length is read from its header (the whole clip is decoded only
    when the header does not say) once per process, then kept while its file is unchanged.
    """

    def __init__(self, root: Path, limits: StoreLimits = StoreLimits()) -> None:
        self.root = root
        self.limits = limits
        self._seconds: dict[Path, tuple[int, int, float]] = {}  # path -> (mtime_ns, size, s)
        self._seconds_lock = threading.Lock()

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

    # Writing

    def add(self, name: str, clips: Sequence[NewClip]) -> list[Added]:
        """Store ``clips`` under speaker ``name``, all or none: raises :class:`StoreLimitError`
        (nothing written) when the new ones would take the store past a limit."""
        folder = self._folder(name)
        for clip in clips:
            if f".{clip.extension}" not in AUDIO_EXTENSIONS:
                raise ParameterError(f"extension={clip.extension!r} is not one of an audio file")
        with self._locked():
            have = {c.id for c in self._clips_in(folder, with_seconds=False)}
            added: list[Added] = []
            new: dict[str, NewClip] = {}
            for clip in clips:
                key = clip_id(clip.data)
                duplicate = key in have or key in new
                added.append(Added(key, duplicate))
                if not duplicate:
                    new[key] = clip
            if new:
                self._check_room(name, len(have), new)
            if not have:
                _make_folder(folder)
            for key, clip in new.items():
                self._write(folder / f"{key}.{clip.extension}", clip)
        return added

    def remove_speaker(self, name: str) -> int:
        """Remove speaker ``name`` and its clips; the number of clips it had."""
        folder = self._folder(name)
        with self._locked():
            clips = self._clips_in(folder, with_seconds=False)
            if not clips:
                raise NotInStoreError(f"the store has no speaker {name!r}")
            trash = self.root / f".removing-{secrets.token_hex(8)}"
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
            if not entry.name.startswith(".") and _is_folder(entry)
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
        )

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
        with self._seconds_lock:
            known = self._seconds.get(path)
        if known is not None and known[:2] == (stat.st_mtime_ns, stat.st_size):
            return known[2]
        seconds = clip_seconds(path)
        self._remember(path, stat, seconds)
        return seconds

    def _remember(self, path: Path, stat: os.stat_result, seconds: float) -> None:
        with self._seconds_lock:
            self._seconds[path] = (stat.st_mtime_ns, stat.st_size, seconds)

    def _check_room(self, name: str, clips: int, new: dict[str, NewClip]) -> None:
        limits = self.limits
        speakers = self._bytes_by_speaker()
        if clips == 0 and len(speakers) >= limits.max_speakers:
            raise StoreLimitError(
                f"cannot add speaker {name!r}: the store holds {len(speakers)} speakers, the limit",
                limit="max_speakers",
            )
        if clips + len(new) > limits.max_clips_per_speaker:
            raise StoreLimitError(
                f"cannot add {len(new)} clips to {name!r}: it has {clips}, and the limit is "
                f"{limits.max_clips_per_speaker} clips per speaker",
                limit="max_clips_per_speaker",
            )
        held, adding = sum(speakers.values()), sum(len(c.data) for c in new.values())
        if held + adding > limits.max_store_bytes:
            raise StoreLimitError(
                f"cannot add {adding} bytes of clips: the store holds {held} bytes, and the "
                f"limit is {limits.max_store_bytes} bytes",
                limit="max_store_bytes",
            )

    def _bytes_by_speaker(self) -> dict[str, int]:
        """Each speaker with clips and the bytes they take, without reading any clip's length."""
        out = {}
        for name, folder in self._speaker_folders():
            clips = self._clips_in(folder, with_seconds=False)
            if clips:
                out[name] = sum(c.bytes for c in clips)
        return out

    def _write(self, path: Path, clip: NewClip) -> None:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        try:
            with temporary.open("xb") as out:
                out.write(clip.data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
        self._remember(path, path.stat(), round(clip.seconds, 4))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Exclusive, across processes and threads: each call opens the lock file anew, and
        ``flock`` locks belong to an open file, not to a process."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock


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
