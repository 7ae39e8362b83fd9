"""The speaker store: names, clip ids, adding and removing, limits, and what training sees."""

from __future__ import annotations

import errno
import hashlib
import multiprocessing
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.dataset import scan_folder
from pipeline.errors import (
    DecodeError,
    InvalidNameError,
    NameTakenError,
    NotInStoreError,
    StoreFullError,
    StoreLimitError,
    StoreReadOnlyError,
)
from pipeline.speakers import (
    Added,
    Clash,
    NewClip,
    SpeakerStore,
    SpeakerSummary,
    StoredClip,
    StoreLimits,
    clip_extension,
    clip_id,
    clip_seconds,
)
from tests.helpers import read_only
from tests.signals import SR, encode, tone


def wav(seconds: float, freq: float = 220.0) -> bytes:
    return encode(tone(freq, seconds=seconds))


def new(seconds: float, freq: float = 220.0) -> NewClip:
    return NewClip(wav(seconds, freq), "wav", seconds)


@pytest.fixture
def store(tmp_path: Path) -> SpeakerStore:
    return SpeakerStore(tmp_path / "speakers")


# --- clip ids and formats ------------------------------------------------------------------------


def test_a_clip_id_is_the_start_of_its_sha256() -> None:
    data = wav(0.5)

    assert clip_id(data) == hashlib.sha256(data).hexdigest()[:16]


@pytest.mark.parametrize(("fmt", "subtype", "ext"),
                         [("WAV", "PCM_16", "wav"), ("FLAC", "PCM_16", "flac"),
                          ("OGG", "VORBIS", "ogg"), ("AU", "PCM_16", "au")])  # fmt: skip
def test_a_clip_is_stored_under_its_format_s_extension(fmt: str, subtype: str, ext: str) -> None:
    data = encode(tone(220, seconds=0.5), fmt=fmt, subtype=subtype)

    assert clip_extension(data) == ext


def test_a_format_the_store_cannot_name_is_refused() -> None:
    with pytest.raises(DecodeError) as caught:
        clip_extension(b"#!AMR\n" + bytes(100))

    assert str(caught.value) == (
        "clips in AMR format cannot be stored: send AAC, AIFF, FLAC, MP3, MP4/M4A, Ogg, WAV, "
        "WebM/Matroska"
    )


# --- adding and listing --------------------------------------------------------------------------


def test_an_empty_store_lists_nothing_and_is_not_made_by_reading(store: SpeakerStore) -> None:
    assert store.speakers() == []
    assert store.clips("Alice") == []
    assert not store.root.exists()


def test_added_clips_are_listed_with_their_length_and_size(store: SpeakerStore) -> None:
    one, two = new(0.5), new(1.25, 330)

    added = store.add("Alice", [one, two])

    assert added == [Added(clip_id(one.data), False), Added(clip_id(two.data), False)]
    assert store.speakers() == [SpeakerSummary("Alice", 2, 1.75, len(one.data) + len(two.data))]
    assert store.clips("Alice") == sorted(
        [StoredClip(clip_id(one.data), 0.5, len(one.data)),
         StoredClip(clip_id(two.data), 1.25, len(two.data))], key=lambda c: c.id,
    )  # fmt: skip
    assert (store.root / "Alice" / f"{clip_id(one.data)}.wav").read_bytes() == one.data


def test_the_same_clip_twice_is_stored_once(store: SpeakerStore) -> None:
    clip = new(0.5)

    first = store.add("Alice", [clip, clip])
    again = store.add("Alice", [clip])

    key = clip_id(clip.data)
    assert first + again == [Added(key, False), Added(key, True), Added(key, True)]
    assert store.speakers()[0].clips == 1


def test_a_new_process_reads_lengths_from_the_files(store: SpeakerStore) -> None:
    store.add("Alice", [new(0.5), new(2.0, 330)])

    fresh = SpeakerStore(store.root)  # nothing remembered from the writes

    assert sorted(c.seconds for c in fresh.clips("Alice")) == [0.5, 2.0]


def test_the_length_of_a_file_without_one_in_its_header_comes_from_decoding(
    tmp_path: Path,
) -> None:
    data = bytearray(wav(0.75))
    data[4:8] = data[40:44] = b"\xff\xff\xff\xff"  # as ffmpeg writes WAV to a pipe
    path = tmp_path / "stream.wav"
    path.write_bytes(bytes(data))

    assert clip_seconds(path) == 0.75


def test_an_unreadable_file_has_no_length_but_is_listed(store: SpeakerStore) -> None:
    (store.root / "Bob").mkdir(parents=True)
    (store.root / "Bob" / "broken.wav").write_bytes(b"RIFF nonsense")

    assert store.clips("Bob") == [StoredClip("broken", 0.0, 13)]


def test_hidden_entries_and_other_files_are_not_speakers_or_clips(store: SpeakerStore) -> None:
    store.add("Alice", [new(0.5)])
    for hidden in (".versions", ".jobs", ".cache"):
        (store.root / hidden / "x").mkdir(parents=True)
        (store.root / hidden / "x" / "a.wav").write_bytes(wav(0.5))
    (store.root / "Alice" / ".half.wav.1234.part").write_bytes(b"half")
    (store.root / "Alice" / "notes.txt").write_text("not audio")
    (store.root / "loose.wav").write_bytes(wav(0.5))

    assert [s.name for s in store.speakers()] == ["Alice"]
    assert len(store.clips("Alice")) == 1


def _put(store: SpeakerStore, raw_path: bytes) -> Path:
    """A clip put in the store by hand at ``raw_path`` (bytes: not always UTF-8)."""
    path = store.root / os.fsdecode(raw_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wav(0.5, 330))
    return path


def test_entries_no_client_could_name_are_left_out_of_listing_and_training(
    store: SpeakerStore,
) -> None:
    store.add("Alice", [new(0.5)])
    for raw in (b"We~ird/a.wav", b"Ab\xffc/a.wav", "Rene\u0301/a.wav".encode(), b"Alice/x\xff.wav"):
        _put(store, raw)

    assert [s.name for s in store.speakers()] == ["Alice"]
    assert [c.id for c in store.clips("Alice")] == [clip_id(wav(0.5))]
    assert store.clip_files() == [("Alice", store.root / "Alice" / f"{clip_id(wav(0.5))}.wav")]


def test_entries_no_client_could_name_are_not_counted_by_the_limits(tmp_path: Path) -> None:
    store = SpeakerStore(tmp_path, StoreLimits(max_speakers=1))
    _put(store, b"We~ird/a.wav")

    assert store.add("Alice", [new(0.5)]) == [Added(clip_id(wav(0.5)), duplicate=False)]


def test_each_entry_left_out_is_logged_once(
    store: SpeakerStore, caplog: pytest.LogCaptureFixture
) -> None:
    weird = _put(store, b"We~ird/a.wav").parent
    odd_clip = _put(store, b"Alice/x\xff.wav")

    store.speakers()
    store.clips("Alice")
    store.speakers()

    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", f"the speaker store leaves out {str(weird)!r}: no client could name it as a "
                    "speaker (speaker name 'We~ird' holds '~': use only letters, digits, spaces, "
                    "'-', '_' and '.')"),
        ("WARNING", f"the speaker store leaves out {str(odd_clip)!r}: its name is not UTF-8, "
                    "so no client could name the clip"),
    ]  # fmt: skip


def test_the_store_is_a_training_folder(store: SpeakerStore) -> None:
    store.add("Alice", [new(0.5), new(0.6, 330)])
    store.add("Bob", [new(0.5, 440)])
    (store.root / ".versions" / "v1").mkdir(parents=True)

    recordings = scan_folder(store.root)

    assert sorted((r.speaker, r.path.stem) for r in recordings) == sorted(
        [(s, c.id) for s in ("Alice", "Bob") for c in store.clips(s)]
    )


def test_a_bad_name_or_extension_writes_nothing(store: SpeakerStore) -> None:
    with pytest.raises(InvalidNameError):
        store.add("../outside", [new(0.5)])
    with pytest.raises(ValueError, match=r"^extension='wav/../../x' is not one of an audio file$"):
        store.add("Alice", [NewClip(wav(0.5), "wav/../../x", 0.5)])

    assert not store.root.exists()


# --- removing ------------------------------------------------------------------------------------


def test_a_speaker_is_removed_with_its_clips(store: SpeakerStore) -> None:
    store.add("Alice", [new(0.5), new(0.6, 330)])
    store.add("Bob", [new(0.5, 440)])

    assert store.remove_speaker("Alice") == 2
    assert [s.name for s in store.speakers()] == ["Bob"]
    assert sorted(p.name for p in store.root.iterdir()) == [".lock", "Bob"]


def test_removing_a_speaker_the_store_lacks_says_so(store: SpeakerStore) -> None:
    with pytest.raises(NotInStoreError, match=r"^the store has no speaker 'Alice'$"):
        store.remove_speaker("Alice")


def test_a_clip_is_removed_and_the_last_one_takes_its_speaker(store: SpeakerStore) -> None:
    first, second = (a.id for a in store.add("Alice", [new(0.5), new(0.6, 330)]))

    store.remove_clip("Alice", first)
    assert [c.id for c in store.clips("Alice")] == [second]
    store.remove_clip("Alice", second)

    assert store.speakers() == []
    assert not (store.root / "Alice").exists()


@pytest.mark.parametrize("bad", ["0123456789abcdef", "..", "../Bob", "", "*", "Alice"])
def test_a_clip_that_is_not_listed_is_not_removed(store: SpeakerStore, bad: str) -> None:
    store.add("Alice", [new(0.5)])
    store.add("Bob", [new(0.5, 440)])

    with pytest.raises(NotInStoreError) as caught:
        store.remove_clip("Alice", bad)

    assert str(caught.value) == f"speaker 'Alice' has no clip {bad!r} in the store"
    assert [s.clips for s in store.speakers()] == [1, 1]


# --- names --------------------------------------------------------------------------------------


def test_a_name_reaches_its_speaker_in_nfc(store: SpeakerStore) -> None:
    store.add("Rene\u0301", [new(0.5)])  # decomposed, as some clients send it
    store.add("Ren\u00e9", [new(0.6)])

    assert [s.name for s in store.speakers()] == ["Ren\u00e9"]
    assert len(store.clips("Rene\u0301")) == 2
    assert store.remove_speaker("Rene\u0301") == 2


@pytest.mark.parametrize(
    ("name", "message"),
    [("alice", "speaker name 'alice' reads the same as 'Alice', a speaker in the store: use "
               "'Alice' to add to that speaker, or a name that reads differently"),
     ("Dav\u0456d", "speaker name 'Dav\u0456d' reads the same as 'David', a speaker of the "
                    "model: use 'David' to add to that speaker, or a name that reads differently")],
    ids=["store", "model"],
)  # fmt: skip
def test_a_name_that_reads_as_another_speaker_s_is_refused(
    store: SpeakerStore, name: str, message: str
) -> None:
    store.add("Alice", [new(0.5)])

    with pytest.raises(NameTakenError) as caught:
        store.add(name, [new(0.6)], model_labels=["David", "Steve"], add_to_existing=True)

    assert str(caught.value) == message
    assert [s.name for s in store.speakers()] == ["Alice"]


def test_a_speaker_with_lookalikes_from_before_still_takes_clips(store: SpeakerStore) -> None:
    store.add("Alice", [new(0.5)])
    (store.root / "alice").mkdir()  # made before lookalikes were refused
    (store.root / "alice" / f"{clip_id(wav(0.6))}.wav").write_bytes(wav(0.6))

    store.add("Alice", [new(0.7)])

    assert [s.clips for s in store.speakers()] == [2, 1]


def test_a_model_speaker_takes_clips_only_when_the_call_says_so(store: SpeakerStore) -> None:
    with pytest.raises(NameTakenError) as caught:
        store.add("Steve", [new(0.5)], model_labels=["David", "Steve"])
    store.add("Steve", [new(0.5)], model_labels=["David", "Steve"], add_to_existing=True)
    store.add("Steve", [new(0.6)], model_labels=["David", "Steve"])  # the store has it now

    assert str(caught.value) == (
        "'Steve' is a speaker the model knows: to add these clips to its voice, say so with "
        "add_to_existing=true; for another person, choose another name"
    )
    assert store.speakers()[0].clips == 2


# --- one recording, one speaker -------------------------------------------------------------------


def test_a_clip_of_another_speaker_is_refused_and_the_rest_stored(store: SpeakerStore) -> None:
    theirs, mine = new(0.5), new(0.6, 330)
    store.add("Alice", [theirs])

    outcomes = store.add("Bob", [theirs, mine])

    assert outcomes == [Clash(clip_id(theirs.data), "Alice"), Added(clip_id(mine.data), False)]
    assert [(s.name, s.clips) for s in store.speakers()] == [("Alice", 1), ("Bob", 1)]


def test_a_call_of_clips_of_others_only_makes_no_speaker(store: SpeakerStore) -> None:
    theirs = new(0.5)
    store.add("Alice", [theirs])

    outcomes = store.add("Bob", [theirs])

    assert outcomes == [Clash(clip_id(theirs.data), "Alice")]
    assert [s.name for s in store.speakers()] == ["Alice"]
    assert not (store.root / "Bob").exists()


# --- a full disk ---------------------------------------------------------------------------------


def _files(store: SpeakerStore) -> list[str]:
    """Everything under the store but its lock file, temporary files included."""
    return sorted(
        str(p.relative_to(store.root)) for p in store.root.rglob("*") if p.name != ".lock"
    )


def _failing_fsync(monkeypatch: pytest.MonkeyPatch, code: int, after: int) -> None:
    """``os.fsync`` that fails with ``code`` once ``after`` calls have passed, as a disk that
    fills up part way through a call does."""
    calls = []
    real = os.fsync

    def fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) > after:
            raise OSError(code, os.strerror(code))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.parametrize("existing", [False, True], ids=["new speaker", "known speaker"])
def test_a_full_disk_stores_none_of_the_call(
    store: SpeakerStore, monkeypatch: pytest.MonkeyPatch, existing: bool
) -> None:
    if existing:
        store.add("Alice", [new(0.4)])
    before = _files(store)
    _failing_fsync(monkeypatch, errno.ENOSPC, after=1)

    with pytest.raises(StoreFullError) as caught:
        store.add("Alice", [new(0.5), new(0.6), new(0.7)])

    assert str(caught.value) == (
        "the disk of the speaker store is full: none of the 3 new clips was stored; free space "
        "on it, or lower the store's size limit to what it holds"
    )
    assert caught.value.limit == "max_store_bytes"
    assert _files(store) == before


def test_another_write_error_stores_none_and_is_raised(
    store: SpeakerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _failing_fsync(monkeypatch, errno.EIO, after=1)

    with pytest.raises(OSError, match="Input/output error"):
        store.add("Alice", [new(0.5), new(0.6)])

    assert store.speakers() == []
    assert not (store.root / "Alice").exists()


# --- limits --------------------------------------------------------------------------------------


def test_the_speakers_limit_refuses_one_more_speaker_only(tmp_path: Path) -> None:
    store = SpeakerStore(tmp_path, StoreLimits(max_speakers=2))
    store.add("Alice", [new(0.5)])
    store.add("Bob", [new(0.5, 330)])

    with pytest.raises(StoreLimitError) as caught:
        store.add("Carol", [new(0.5, 440)])
    store.add("Alice", [new(0.6)])  # an existing speaker still takes clips

    assert caught.value.limit == "max_speakers"
    assert str(caught.value) == "cannot add speaker 'Carol': the store holds 2 speakers, the limit"
    assert [s.name for s in store.speakers()] == ["Alice", "Bob"]


def test_the_clips_limit_refuses_the_whole_call_and_takes_duplicates(tmp_path: Path) -> None:
    store = SpeakerStore(tmp_path, StoreLimits(max_clips_per_speaker=2))
    first = new(0.5)
    store.add("Alice", [first])

    with pytest.raises(StoreLimitError) as caught:
        store.add("Alice", [new(0.6), new(0.7)])
    store.add("Alice", [first, new(0.6)])  # one new clip: up to the limit
    again = store.add("Alice", [first])  # nothing new: no limit is passed

    assert caught.value.limit == "max_clips_per_speaker"
    assert str(caught.value) == (
        "cannot add 2 clips to 'Alice': it has 1, and the limit is 2 clips per speaker"
    )
    assert again == [Added(clip_id(first.data), True)]
    assert store.speakers()[0].clips == 2


def test_the_bytes_limit_counts_every_speaker_s_clips(tmp_path: Path) -> None:
    one, two = new(0.5), new(0.5, 330)
    store = SpeakerStore(tmp_path, StoreLimits(max_store_bytes=len(one.data) + len(two.data) - 1))
    store.add("Alice", [one])

    with pytest.raises(StoreLimitError) as caught:
        store.add("Bob", [two])

    assert caught.value.limit == "max_store_bytes"
    assert str(caught.value) == (
        f"cannot add {len(two.data)} bytes of clips: the store holds {len(one.data)} bytes, and "
        f"the limit is {len(one.data) + len(two.data) - 1} bytes"
    )
    assert [s.name for s in store.speakers()] == ["Alice"]


# --- several processes ---------------------------------------------------------------------------


def _add_many(root: str, worker: int, start: Any, out: Any) -> None:
    """Add 10 distinct clips one call at a time; put how many calls the limit refused."""
    store = SpeakerStore(Path(root), StoreLimits(max_clips_per_speaker=12))
    start.wait()  # every worker started: they add at the same moment
    refused = 0
    for i in range(10):
        level = (worker * 100 + i + 1) / 10_000  # a distinct clip for each worker and call
        data = encode(np.full(SR // 10, level, dtype=np.float32))
        try:
            store.add("Alice", [NewClip(data, "wav", 0.1)])
        except StoreLimitError:
            refused += 1
    out.put(refused)


def test_processes_adding_at_once_never_pass_the_clips_limit(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")  # this process may hold TensorFlow's threads
    start, out = ctx.Barrier(4), ctx.Queue()
    workers = [ctx.Process(target=_add_many, args=(str(tmp_path), w, start, out))
               for w in range(4)]  # fmt: skip
    for worker in workers:
        worker.start()
    refused = [out.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(30)

    names = os.listdir(tmp_path / "Alice")
    assert len(names) == 12
    assert all(not name.startswith(".") for name in names)  # no temporary file left
    assert sum(refused) == 40 - 12


# --- a process killed while it writes ------------------------------------------------------------


def _add_and_die(root: str, clips: int, fsyncs: int) -> None:
    """Add ``clips`` clips to 'Alice', the process ending at once, as ``kill -9`` ends it, in
    its ``fsyncs + 1``-th ``os.fsync``: no ``except``, no ``finally`` runs."""
    real, calls = os.fsync, []

    def fsync(fd: Any) -> None:
        calls.append(fd)
        if len(calls) > fsyncs:
            os._exit(137)
        real(fd)

    os.fsync = fsync
    SpeakerStore(Path(root)).add("Alice", [new(0.5 + i / 10) for i in range(clips)])


def _killed_while_adding(root: Path, clips: int, fsyncs: int) -> None:
    ctx = multiprocessing.get_context("spawn")  # this process may hold TensorFlow's threads
    child = ctx.Process(target=_add_and_die, args=(str(root), clips, fsyncs))
    child.start()
    child.join(120)
    assert child.exitcode == 137


@pytest.mark.parametrize("existing", [False, True], ids=["new speaker", "known speaker"])
def test_a_call_killed_part_way_stores_none_of_its_clips(tmp_path: Path, existing: bool) -> None:
    store = SpeakerStore(tmp_path)
    if existing:
        store.add("Alice", [new(0.4)])
    before = store.clips("Alice")

    _killed_while_adding(tmp_path, clips=3, fsyncs=2)  # killed writing the third clip

    assert store.clips("Alice") == before


def test_what_a_killed_call_left_is_removed_by_the_next_write(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _killed_while_adding(tmp_path, clips=3, fsyncs=2)
    left = sorted(p.name for p in (tmp_path / "Alice").iterdir())

    SpeakerStore(tmp_path).add("Bob", [new(0.5, 330)])

    assert len(left) == 3 and all(name.endswith(".part") for name in left)
    assert not (tmp_path / "Alice").exists()  # the killed call's new speaker is gone too
    assert caplog.messages == [
        f"the speaker store removes 3 temporary files that an interrupted write left: "
        f"{', '.join(repr(str(tmp_path / 'Alice' / name)) for name in left)}"
    ]


# --- a store that cannot be written --------------------------------------------------------------

READ_ONLY = (
    "the speaker store cannot be written (Read-only file system): nothing in it was changed; "
    "its folder must be made writable again"
)


def test_a_read_only_store_refuses_every_change_and_reads_on(
    store: SpeakerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = new(0.5)
    store.add("Alice", [first])
    read_only(monkeypatch, store.root)

    refusals = []
    for change in (lambda: store.add("Alice", [new(0.6)]), lambda: store.add("Bob", [new(0.7)]),
                   lambda: store.remove_clip("Alice", clip_id(first.data)),
                   lambda: store.remove_speaker("Alice")):  # fmt: skip
        with pytest.raises(StoreReadOnlyError) as caught:
            change()
        refusals.append(str(caught.value))

    assert refusals == [READ_ONLY] * 4
    assert store.speakers() == [SpeakerSummary("Alice", 1, 0.5, len(first.data))]


def test_a_removal_killed_part_way_is_finished_by_the_next_write(
    store: SpeakerStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.add("Alice", [new(0.5)])
    left = store.root / ".removing-0123456789abcdef"  # renamed away, then killed mid-delete
    (store.root / "Alice").rename(left)

    SpeakerStore(store.root).add("Bob", [new(0.5, 330)])

    assert sorted(p.name for p in store.root.iterdir()) == [".lock", "Bob"]
    assert caplog.messages == [
        f"the speaker store removes 1 temporary files that an interrupted write left: {str(left)!r}"
    ]
