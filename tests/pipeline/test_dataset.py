"""Tests of folder scanning, feature extraction with its skips, the cache and parallel runs."""

from __future__ import annotations

import errno
import hashlib
import io
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pipeline import augment
from pipeline.config import FeatureConfig
from pipeline.dataset import (
    NO_CONDITION,
    PARALLEL_MIN_FILES,
    Degradation,
    FeatureCache,
    Recording,
    condition_codes,
    copy_condition,
    degraded_copy,
    extract_features,
    file_digest,
    file_features,
    lowest_sample_rate,
    printable,
    process_pool,
    scan_folder,
    shown_path,
)
from pipeline.errors import DatasetError, ParameterError
from tests.helpers import process_running
from tests.pipeline.test_paths import NO_TEMP_MESSAGE, no_temp_dir
from tests.signals import PNG_BYTES, SR, encode, tone

CFG = FeatureConfig()
MIXED_SKIPS = [
    (
        "alice/broken.wav",
        "cannot decode PNG image data: not a supported audio format",
    ),
    ("bob/quiet.wav", "clip is silent: peak level -inf dBFS is below -80 dBFS"),
    ("bob/zero.flac", "clip is empty (0 bytes)"),
]  # the skips of mixed_folder, in order


def _layout(root: Path, files: dict[str, bytes]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def _tones(root: Path, speaker: str, freqs: list[float]) -> None:
    _layout(root, {f"{speaker}/{f:06.1f}.wav": encode(tone(f, seconds=0.25)) for f in freqs})


def _relative(recordings: list[Recording], root: Path) -> list[tuple[str, str]]:
    return [(r.path.relative_to(root).as_posix(), r.speaker) for r in recordings]


@pytest.fixture
def mixed_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Four good clips, then a corrupt, a silent and an empty one, in two speaker folders.

    ffmpeg is hidden so the corrupt file's message does not depend on whether it is installed.
    """
    monkeypatch.setattr("pipeline.audio.shutil.which", lambda name: None)
    _tones(tmp_path, "alice", [300.0, 500.0])
    _tones(tmp_path, "bob", [700.0, 900.0])
    _layout(
        tmp_path,
        {
            "alice/broken.wav": PNG_BYTES,
            "bob/quiet.wav": encode(np.zeros(SR, np.float32)),
            "bob/zero.flac": b"",
        },
    )
    return tmp_path


# Scanning


def test_scan_folder_sorts_by_speaker_then_path(tmp_path: Path) -> None:
    _layout(
        tmp_path,
        {
            "bob/b.wav": b"",
            "bob/a.FLAC": b"",
            "alice/x.ogg": b"",
            "alice/sub/y.mp3": b"",
            "alice/notes.txt": b"",
            "alice/folder.wav/inside.m4a": b"",
            ".trash/z.wav": b"",
            "loose.wav": b"",
        },
    )

    with pytest.warns(UserWarning, match=r"^1 recording\(s\) lie in .* not used: 'loose.wav'$"):
        recordings = scan_folder(tmp_path)

    assert _relative(recordings, tmp_path) == [
        ("alice/folder.wav/inside.m4a", "alice"),
        ("alice/sub/y.mp3", "alice"),
        ("alice/x.ogg", "alice"),
        ("bob/a.FLAC", "bob"),
        ("bob/b.wav", "bob"),
    ]


def test_a_broken_link_to_a_recording_is_found_and_skipped_with_the_reason(
    tmp_path: Path,
) -> None:
    """Left out unsaid, a take the user moved or a link that loops would go unnoticed."""
    _tones(tmp_path, "alice", [300.0])
    (tmp_path / "alice" / "moved.wav").symlink_to(tmp_path / "elsewhere.wav")
    (tmp_path / "alice" / "loop.wav").symlink_to("loop.wav")
    os.mkfifo(tmp_path / "alice" / "pipe.wav")  # read, it would wait for a writer forever

    recordings = scan_folder(tmp_path)
    result = extract_features(recordings, CFG, jobs=1)

    assert _relative(recordings, tmp_path) == [
        ("alice/0300.0.wav", "alice"),
        ("alice/loop.wav", "alice"),
        ("alice/moved.wav", "alice"),
    ]
    assert result.skipped_files(tmp_path) == [
        {"file": "alice/loop.wav", "error": "cannot read file: Too many levels of symbolic links"},
        {"file": "alice/moved.wav", "error": "cannot read file: No such file or directory"},
    ]


def test_what_looks_meant_for_a_speaker_but_is_none_is_warned_of(tmp_path: Path) -> None:
    _layout(tmp_path, {"bob/b.wav": b"", "empty/notes.txt": b"", ".trash/z.wav": b"",
                       "hello.wav": b"", "b.flac": b"", "readme.md": b""})  # fmt: skip
    (tmp_path / "carol").symlink_to(tmp_path / "gone")

    with pytest.warns(UserWarning) as caught:
        recordings = scan_folder(tmp_path)

    assert [(r.speaker, r.path.name) for r in recordings] == [("bob", "b.wav")]
    assert [str(w.message) for w in caught] == [
        f"2 recording(s) lie in {str(tmp_path)!r} itself, in no speaker's folder, and are not "
        "used: 'b.flac', 'hello.wav'",
        "'carol' is a link that leads to no folder: not a speaker",
        "folder 'empty' holds no recordings: not a speaker",
    ]


def test_a_linked_subfolder_is_followed_and_one_that_loops_or_leads_nowhere_is_skipped_with_why(
    tmp_path: Path,
) -> None:
    """A speaker folder that is a link is read, so a subfolder that is one is too; one that
    leads back up, or nowhere, is listed as skipped rather than left out unsaid."""
    data = tmp_path / "data"
    _tones(data, "alice", [300.0])
    _tones(tmp_path, "elsewhere", [500.0])
    alice = data / "alice"
    (alice / "session").symlink_to(tmp_path / "elsewhere")
    (alice / "unmounted").symlink_to(tmp_path / "drive" / "takes")
    (alice / "here").symlink_to(".")
    (alice / "up").symlink_to("..")  # the data folder, which holds alice
    (tmp_path / "elsewhere" / "back").symlink_to(alice)  # alice/session/back: alice again

    recordings = scan_folder(data)
    result = extract_features(recordings, CFG, jobs=1)

    assert _relative(recordings, data) == [
        ("alice/0300.0.wav", "alice"),
        ("alice/here", "alice"),
        ("alice/session/0500.0.wav", "alice"),
        ("alice/session/back", "alice"),
        ("alice/unmounted", "alice"),
        ("alice/up", "alice"),
    ]
    loops = "a link back to a folder it lies in, not followed"
    assert result.skipped_files(data) == [
        {"file": "alice/here", "error": loops},
        {"file": "alice/session/back", "error": loops},
        {"file": "alice/unmounted", "error": "cannot read file: No such file or directory"},
        {"file": "alice/up", "error": loops},
    ]
    assert _relative(result.recordings, data) == [
        ("alice/0300.0.wav", "alice"),
        ("alice/session/0500.0.wav", "alice"),
    ]


def test_a_subfolder_that_cannot_be_listed_is_skipped_with_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tones(tmp_path, "alice", [300.0])
    (tmp_path / "alice" / "locked").mkdir()
    listing = os.scandir

    def refusing(folder: Path) -> Iterator[os.DirEntry[str]]:  # as another user's, of mode 700
        if Path(folder).name == "locked":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(folder))
        return listing(folder)

    monkeypatch.setattr(os, "scandir", refusing)

    result = extract_features(scan_folder(tmp_path), CFG, jobs=1)

    assert _relative(result.recordings, tmp_path) == [("alice/0300.0.wav", "alice")]
    assert result.skipped_files(tmp_path) == [
        {"file": "alice/locked", "error": "cannot list folder: Permission denied"}
    ]


def test_a_file_with_the_bytes_of_a_clip_a_model_learnt_from_is_skipped_unread_naming_it(
    tmp_path: Path,
) -> None:
    _tones(tmp_path, "alice", [300.0, 500.0])
    learnt = (tmp_path / "alice" / "0300.0.wav").read_bytes()
    _layout(tmp_path, {"bob/copy.wav": learnt, "bob/copy2.wav": learnt})
    sha = hashlib.sha256(learnt).hexdigest()

    result = extract_features(scan_folder(tmp_path), CFG, jobs=1, learnt={sha: "ann/take.wav"})

    assert _relative(result.recordings, tmp_path) == [("alice/0500.0.wav", "alice")]
    why = "the same bytes as 'ann/take.wav', a clip the model learnt from: not scored"
    assert result.skipped_files(tmp_path) == [
        {"file": "alice/0300.0.wav", "error": why},
        {"file": "bob/copy.wav", "error": why},
        {"file": "bob/copy2.wav", "error": why},
    ]
    assert result.decoded == 1


def test_scan_folder_refuses_a_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "missing"

    with pytest.raises(DatasetError) as error:
        scan_folder(missing)

    assert str(error.value) == f"data folder '{missing}' does not exist or is not a folder"


def test_scan_folder_refuses_a_speaker_folder_whose_name_is_not_utf8(tmp_path: Path) -> None:
    _layout(tmp_path, {"ann/1.wav": b"", os.fsdecode(b"b\xffb") + "/1.wav": b""})

    with pytest.raises(DatasetError) as error:
        scan_folder(tmp_path)

    assert str(error.value) == (
        f"speaker folder 'b\\xffb' of '{tmp_path}' has a name that is not UTF-8, which no answer "
        "could give: rename the folder"
    )


def test_scan_folder_refuses_a_folder_without_recordings(tmp_path: Path) -> None:
    _layout(tmp_path, {"alice/readme.txt": b"", "loose.wav": b""})

    with pytest.raises(DatasetError) as error:
        scan_folder(tmp_path)

    assert str(error.value) == (
        f"no recordings found in '{tmp_path}': expected <speaker>/<clip> files ending in one of "
        ".aac, .aif, .aiff, .au, .flac, .m4a, .mp3, .mp4, .oga, .ogg, .opus, .wav, .webm, .wma; "
        "1 audio file(s) lie in the folder itself: put each speaker's takes in a subfolder named "
        "after them"
    )


def test_lowest_sample_rate_reads_headers_and_ignores_unreadable_files(tmp_path: Path) -> None:
    _layout(
        tmp_path,
        {
            "a.wav": encode(tone(440, sample_rate=22050), 22050),
            "b.flac": encode(tone(440, sample_rate=8000), 8000, fmt="FLAC"),
            "c.wav": PNG_BYTES,
        },
    )

    assert lowest_sample_rate(sorted(tmp_path.iterdir())) == 8000
    assert lowest_sample_rate([tmp_path / "c.wav"]) is None


def test_a_name_that_is_not_utf8_is_read_and_shown_escaped(tmp_path: Path) -> None:
    path = tmp_path / os.fsdecode(b"bad\xff.wav")
    path.write_bytes(encode(tone(440, sample_rate=22050), 22050))

    assert lowest_sample_rate([path]) == 22050
    assert shown_path(path, tmp_path) == "bad\\xff.wav"
    assert printable(path) == f"{tmp_path}/bad\\xff.wav"


# Extraction and skips


def test_unusable_files_are_skipped_with_their_reason(mixed_folder: Path) -> None:
    recordings = scan_folder(mixed_folder)

    result = extract_features(recordings, CFG, jobs=1)

    assert _relative(result.recordings, mixed_folder) == [
        ("alice/0300.0.wav", "alice"),
        ("alice/0500.0.wav", "alice"),
        ("bob/0700.0.wav", "bob"),
        ("bob/0900.0.wav", "bob"),
    ]
    assert [(r.path.relative_to(mixed_folder).as_posix(), e) for r, e in result.skipped] == (
        MIXED_SKIPS
    )
    assert result.features.shape == (4, 60)
    assert result.features.dtype == np.float32
    assert result.decoded == 7


def test_rows_are_the_histograms_of_the_files(tmp_path: Path) -> None:
    _tones(tmp_path, "alice", [300.0, 2500.0])

    result = extract_features(scan_folder(tmp_path), CFG, jobs=1)

    expected = [file_features(r.path, CFG, 60.0) for r in result.recordings]
    np.testing.assert_array_equal(result.features, np.array(expected))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy reports the overflow too
def test_degraded_copies_are_fixed_by_seed_copy_and_content(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    path.write_bytes(encode(tone(440, seconds=0.5) + tone(1500, seconds=0.5)))
    clean = file_features(path, CFG, 60.0)

    first = file_features(path, CFG, 60.0, Degradation(seed=0, copy=0))
    again = file_features(path, CFG, 60.0, Degradation(seed=0, copy=0))
    second = file_features(path, CFG, 60.0, Degradation(seed=0, copy=1))
    other_seed = file_features(path, CFG, 60.0, Degradation(seed=1, copy=0))

    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, clean)
    assert not np.array_equal(first, second)
    assert not np.array_equal(first, other_seed)


def test_a_copys_condition_is_known_without_making_it_and_is_the_one_that_makes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = encode(tone(440, seconds=0.5))
    made: list[str] = []

    def spy(name: str) -> augment.Condition:
        def apply(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
            made.append(name)
            return y

        return apply

    for name in augment.CONDITIONS:
        monkeypatch.setitem(augment.CONDITIONS, name, spy(name))
    digest = hashlib.sha256(data).hexdigest()
    told = [copy_condition(digest, Degradation(0, copy)) for copy in range(8)]

    for copy in range(8):
        degraded_copy(tone(440, seconds=0.5), data, SR, Degradation(0, copy))

    assert made == told
    assert len(set(told)) > 1  # the copies go through several conditions
    assert copy_condition(digest, Degradation(0, 0, crop=True)) is None


def test_condition_codes_index_the_conditions_and_mark_crops_and_unknown_files(
    tmp_path: Path,
) -> None:
    _tones(tmp_path, "alice", [300.0])
    (path,) = [r.path for r in scan_folder(tmp_path)]
    digests = [file_digest(path), file_digest(tmp_path / "gone.wav")]
    plan = [Degradation(0, 0), Degradation(0, 1), Degradation(0, 0, crop=True)]

    codes = condition_codes(digests, plan)

    names = list(augment.CONDITIONS)
    assert digests[0] == hashlib.sha256(path.read_bytes()).hexdigest() and digests[1] is None
    assert codes.dtype == np.int8
    assert codes.tolist() == [
        [names.index(str(copy_condition(str(digests[0]), d))) for d in plan[:2]] + [NO_CONDITION],
        [NO_CONDITION] * 3,
    ]


def test_each_degraded_copy_has_its_own_cache_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _tones(data, "alice", [300.0, 500.0])
    recordings = scan_folder(data)
    cache = tmp_path / "cache"

    rows = [extract_features(recordings, CFG, cache_dir=cache, degradation=Degradation(0, c))
            for c in range(3)]  # fmt: skip
    again = extract_features(recordings, CFG, cache_dir=cache, degradation=Degradation(0, 2))

    assert len(list(cache.iterdir())) == 3
    assert again.decoded == 0
    np.testing.assert_array_equal(again.features, rows[2].features)


def test_a_float_file_far_beyond_full_scale_is_skipped_not_a_nan_row(tmp_path: Path) -> None:
    _tones(tmp_path, "alice", [300.0])
    _layout(tmp_path, {"alice/huge.wav": encode(tone(440, amplitude=1e30), subtype="FLOAT")})

    result = extract_features(scan_folder(tmp_path), CFG, jobs=1)

    assert np.all(np.isfinite(result.features))
    assert _relative(result.recordings, tmp_path) == [("alice/0300.0.wav", "alice")]
    assert [e for _, e in result.skipped] == [
        "clip overflows the spectrum: its peak sample 1e+30 is far beyond full scale (1.0)"
    ]


def test_extraction_of_nothing_is_empty() -> None:
    result = extract_features([], CFG, jobs=1)

    assert result.features.shape == (0, 60)
    assert (result.recordings, result.skipped, result.decoded) == ([], [], 0)


# The cache


def test_a_second_run_decodes_only_the_undecodable_file_and_gives_the_same_rows(
    mixed_folder: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cache = tmp_path_factory.mktemp("cache")
    recordings = scan_folder(mixed_folder)

    first = extract_features(recordings, CFG, jobs=1, cache_dir=cache)
    second = extract_features(recordings, CFG, jobs=1, cache_dir=cache)

    # The corrupt file is tried again: it may decode once ffmpeg is installed. The silent one
    # is refused for its content, which cannot change under the same hash.
    assert (first.decoded, second.decoded) == (7, 1)
    np.testing.assert_array_equal(second.features, first.features)
    assert second.recordings == first.recordings
    assert second.skipped == first.skipped
    assert [p.name for p in cache.iterdir()] == [FeatureCache(cache, CFG, 60.0).path.name]


def test_a_changed_file_misses_the_cache(tmp_path: Path) -> None:
    data, cache = tmp_path / "data", tmp_path / "cache"
    _tones(data, "alice", [300.0, 500.0, 700.0])
    recordings = scan_folder(data)
    extract_features(recordings, CFG, jobs=1, cache_dir=cache)
    changed = data / "alice" / "0500.0.wav"
    changed.write_bytes(encode(tone(2500.0, seconds=0.25)))

    result = extract_features(recordings, CFG, jobs=1, cache_dir=cache)

    assert result.decoded == 1
    np.testing.assert_array_equal(
        result.features, extract_features(recordings, CFG, jobs=1).features
    )


def test_another_feature_config_uses_another_cache_file(tmp_path: Path) -> None:
    data, cache = tmp_path / "data", tmp_path / "cache"
    _tones(data, "alice", [300.0, 500.0])
    recordings = scan_folder(data)
    extract_features(recordings, CFG, jobs=1, cache_dir=cache)

    result = extract_features(recordings, FeatureConfig(n_bands=40), jobs=1, cache_dir=cache)

    assert result.decoded == 2
    assert result.features.shape == (2, 40)
    assert len(list(cache.iterdir())) == 2


def _narrowed(data: bytes) -> bytes:
    """A cache file whose rows lost all but 10 of their values: a valid archive, not a cache."""
    with np.load(io.BytesIO(data)) as arrays:
        held = {name: arrays[name] for name in arrays.files}
    out = io.BytesIO()
    np.savez(out, **(held | {"rows": held["rows"][:, :10]}))
    return out.getvalue()


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: b"", id="empty"),
        pytest.param(lambda data: b"not a cache" * 10, id="garbage"),
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(_narrowed, id="rows-too-narrow"),
    ],
)
def test_a_damaged_cache_file_is_ignored(tmp_path: Path, damage: object) -> None:
    data, cache = tmp_path / "data", tmp_path / "cache"
    _tones(data, "alice", [300.0, 500.0, 700.0])
    recordings = scan_folder(data)
    clean = extract_features(recordings, CFG, jobs=1, cache_dir=cache)
    cache_file = FeatureCache(cache, CFG, 60.0).path
    cache_file.write_bytes(damage(cache_file.read_bytes()))  # type: ignore[operator]

    result = extract_features(recordings, CFG, jobs=1, cache_dir=cache)

    assert result.decoded == 3
    np.testing.assert_array_equal(result.features, clean.features)
    assert extract_features(recordings, CFG, jobs=1, cache_dir=cache).decoded == 0  # rewritten


# Parallel extraction


@pytest.mark.slow  # starts a process pool
def test_parallel_extraction_equals_sequential(tmp_path: Path) -> None:
    half = PARALLEL_MIN_FILES // 2
    _tones(tmp_path, "alice", [200.0 + 25 * k for k in range(half)])
    _tones(tmp_path, "bob", [1200.0 + 25 * k for k in range(half)])
    _layout(tmp_path, {"bob/quiet.wav": encode(np.zeros(SR, np.float32))})
    recordings = scan_folder(tmp_path)
    assert len(recordings) > PARALLEL_MIN_FILES

    sequential = extract_features(recordings, CFG, jobs=1)
    parallel = extract_features(recordings, CFG, jobs=2)

    assert parallel.recordings == sequential.recordings
    assert parallel.skipped == sequential.skipped
    assert [e for _, e in parallel.skipped] == [
        "clip is silent: peak level -inf dBFS is below -80 dBFS"
    ]
    np.testing.assert_array_equal(parallel.features, sequential.features)


def test_extraction_refuses_a_limit_on_length_before_reading_a_file(tmp_path: Path) -> None:
    missing = [Recording(tmp_path / "nowhere.wav", "a")]

    with pytest.raises(ParameterError) as error:
        extract_features(missing, FeatureConfig(), max_seconds=math.inf, jobs=1)

    assert str(error.value) == (
        "max_seconds=inf must be a number of seconds above 0 and at most 86400"
    )


def test_a_cache_holding_only_failures_is_saved_and_read_back(tmp_path: Path) -> None:
    """Every file refused (an enrolment of one unusable take): nothing to give a row's width."""
    cache = FeatureCache(tmp_path, CFG, 60.0)
    cache.put("a" * 64, None, "clip is silent")
    cache.save()

    again = FeatureCache(tmp_path, CFG, 60.0)
    assert (again.rows, again.errors) == ({}, {"a" * 64: "clip is silent"})


def test_an_interrupted_cache_save_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def half_written(path: Path, **arrays: object) -> None:
        path.write_bytes(b"PK\x03\x04")
        raise KeyboardInterrupt

    cache = FeatureCache(tmp_path, CFG, 60.0)
    cache.put("a" * 64, np.zeros(CFG.row_width, np.float32), None)
    monkeypatch.setattr(np, "savez", half_written)

    with pytest.raises(KeyboardInterrupt):
        cache.save()

    assert list(tmp_path.iterdir()) == []


def test_a_save_removes_what_a_killed_save_of_the_cache_left_an_hour_ago(tmp_path: Path) -> None:
    """kill -9 runs no ``finally``: its temporary file, the size of the cache, stays behind."""
    cache = FeatureCache(tmp_path, CFG, 60.0)
    killed, live = (cache.path.with_suffix(f".tmp{pid}.npz") for pid in (4_194_301, 4_194_302))
    for path in (killed, live):
        path.write_bytes(b"PK\x03\x04")
    os.utime(killed, (0, 0))  # written long ago: no save takes an hour

    cache.put("a" * 64, np.zeros(CFG.row_width, np.float32), None)
    cache.save()

    assert sorted(p.name for p in tmp_path.iterdir()) == [cache.path.name, live.name]


def test_a_file_with_the_same_bytes_as_an_earlier_one_is_skipped_naming_it(
    tmp_path: Path,
) -> None:
    """Counted twice, one recording would weigh double in training and in a score; a copy of a
    refused file is refused for its own reason."""
    _tones(tmp_path, "alice", [300.0, 500.0])
    clip, silent = (tmp_path / "alice" / "0300.0.wav").read_bytes(), encode(np.zeros(SR))
    _layout(tmp_path, {"alice/again.wav": clip, "bob/0300.0.wav": clip, "bob/q1.wav": silent,
                       "bob/q2.wav": silent})  # fmt: skip
    recordings = scan_folder(tmp_path)
    recordings.insert(1, recordings[0])
    first = str(tmp_path / "alice" / "0300.0.wav")
    quiet = "clip is silent: peak level -inf dBFS is below -80 dBFS"

    for cache_dir in (None, tmp_path / "cache", tmp_path / "cache"):
        result = extract_features(recordings, CFG, jobs=1, cache_dir=cache_dir)

        assert _relative(result.recordings, tmp_path) == [
            ("alice/0300.0.wav", "alice"),
            ("alice/0500.0.wav", "alice"),
        ]
        assert result.skipped_files(tmp_path) == [
            {"file": "alice/0300.0.wav", "error": "given more than once, counted once"},
            {"file": "alice/again.wav", "error": f"the same bytes as {first!r}, counted once"},
            {"file": "bob/0300.0.wav", "error": f"the same bytes as {first!r}, counted once"},
            {"file": "bob/q1.wav", "error": quiet},
            {"file": "bob/q2.wav", "error": quiet},
        ]
        assert result.features.shape == (2, 60)


def test_a_process_pool_without_a_temporary_folder_says_what_to_mount(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    no_temp_dir(monkeypatch)  # the fork server's socket is made in the temporary folder

    with pytest.raises(ParameterError) as error:
        process_pool(2)

    assert str(error.value) == NO_TEMP_MESSAGE


# Makes a pool of 2 workers, writes their ids to argv[1], and is killed outright (kill -9: no
# clean-up).
_KILLED_WITH_A_POOL = """
import os, signal, sys
from pathlib import Path
from pipeline.dataset import process_pool
pool = process_pool(2)
list(pool.map(abs, range(4)))  # both workers started
Path(sys.argv[1]).write_text(" ".join(map(str, sorted(pool._processes))))
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="Linux only")
def test_extraction_workers_end_with_a_process_killed_outright(tmp_path: Path) -> None:
    """kill -9 of `voiceid train` (or of a training job) must leave no worker behind: each
    would wait for work for ever, holding its memory, and the fork server with it."""
    ids = tmp_path / "workers"
    command = [sys.executable, "-c", _KILLED_WITH_A_POOL, str(ids)]
    killed = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            timeout=120, check=False)  # fmt: skip
    workers = [int(pid) for pid in ids.read_text().split()]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(map(process_running, workers)):
        time.sleep(0.1)
    left = [pid for pid in workers if process_running(pid)]
    for pid in left:  # the test's own clean-up
        os.kill(pid, signal.SIGKILL)

    assert (killed.returncode, len(workers), left) == (-signal.SIGKILL, 2, [])
