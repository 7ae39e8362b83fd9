"""Tests of pipeline.enrol: a successor learns new voices from the bundle's kept training set."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from pipeline.augment import CONDITIONS
from pipeline.bundle import TRAIN_FEATURES_FILE, load_bundle
from pipeline.config import hidden_units
from pipeline.dataset import NO_CONDITION, Recording, file_digest
from pipeline.demo.synth import STRANGER, VoiceSpec, synthesize_hello, write_demo_data
from pipeline.enrol import (
    EnrolOptions,
    ProgressFile,
    _train_config,
    enrol,
    read_training_set,
    store_recordings,
)
from pipeline.envelope import CAP, ORDER
from pipeline.errors import BundleError, DatasetError
from pipeline.predict import predict_clip
from pipeline.train import SPLIT_VALIDATION
from tests.helpers import MODEL_DIR

# A voice neither the shipped model nor the tests' Stranger has: higher and brighter.
ALICE = VoiceSpec("Alice", pitch_hz=210.0, formant_scale=1.2, tilt=10.0, breathiness=0.1)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A speaker store holding 12 clips of Alice."""
    root = tmp_path_factory.mktemp("store")
    write_demo_data(root, clips_per_voice=12, seed=5, voices=[ALICE])
    return root


@pytest.fixture(scope="module")
def enrolled(store: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("versions") / "v1"
    report = enrol(
        MODEL_DIR, out, store_recordings(store), EnrolOptions(from_store=True, root=store)
    )
    return out, report


def test_the_shipped_bundle_keeps_its_training_set_with_splits_and_copies() -> None:
    kept = read_training_set(load_bundle(MODEL_DIR))

    assert len(kept) == 200
    assert int((kept.split == SPLIT_VALIDATION).sum()) == 40
    # 4 degraded copies, then 2 crops, each a histogram, its 80th and 20th percentiles and the
    # 66 correlations of 12 cepstra
    assert kept.copies.shape == (200, 4 + 2, 3 * 60 + 66)
    has_copy = np.isfinite(kept.copies).all(axis=2)
    assert has_copy[kept.split == 0].all()  # every training clip has its copies and crops
    assert has_copy[kept.split == 1, 0].all() and not has_copy[kept.split == 1, 1:].any()
    assert not kept.enrolled.any()
    # Which condition made each degraded copy; none for the crops
    assert ((kept.conditions[:, :4] != NO_CONDITION) == has_copy[:, :4]).all()
    assert (kept.conditions[:, 4:] == NO_CONDITION).all()


@pytest.mark.slow
def test_the_successor_knows_the_new_voice_and_the_old_ones(
    enrolled: tuple[Path, dict[str, Any]],
    tmp_path: Path,
) -> None:
    out, report = enrolled
    fresh = write_demo_data(tmp_path / "alice", clips_per_voice=8, seed=9, voices=[ALICE])
    known = write_demo_data(tmp_path / "known", clips_per_voice=10, seed=9)
    bundle = load_bundle(out)

    assert bundle.labels == ("Alice", "David", "Steve")
    # The open set is calibrated afresh: Alice has references, and a scale for her dozen clips.
    assert bundle.open_set.n_speakers == 3
    assert bundle.open_set.scales is not None and bundle.open_set.scales[0] > 1.2
    assert bundle.metadata.open_set.threshold != load_bundle(MODEL_DIR).metadata.open_set.threshold
    assert report["files"]["decoded"] == 12  # the new clips, none of the model's 200
    named = [predict_clip(bundle, p)[0].speaker for p in fresh["Alice"]]
    assert named.count("Alice") >= 7
    for voice, paths in known.items():
        assert [predict_clip(bundle, p)[0].speaker for p in paths].count(voice) >= 9


def _after(silence_ms: int, hello: np.ndarray, path: Path) -> Path:
    """``hello`` (16 kHz) after ``silence_ms`` of silence, written to ``path``."""
    sf.write(path, np.concatenate([np.zeros(16 * silence_ms, np.float32), hello]), 16000)
    return path


@pytest.mark.slow
def test_a_voice_taught_one_recording_five_times_is_named_when_it_starts_elsewhere(
    tmp_path: Path,
) -> None:
    # As the page records a loop or a played-back file: the takes' frames fall a few ms apart,
    # their histograms all but identical. Their own gaps would leave the voice a radius that
    # no other start of the same recording reaches.
    alice, stranger = (
        synthesize_hello(v, np.random.default_rng(0), 16000) for v in (ALICE, STRANGER)
    )
    store = tmp_path / "store"
    (store / "Alice").mkdir(parents=True)
    for ms in (0, 10, 20, 30, 40):
        _after(ms, alice, store / "Alice" / f"take-{ms}.wav")
    enrol(
        MODEL_DIR,
        tmp_path / "v1",
        store_recordings(store),
        EnrolOptions(from_store=True, root=store),
    )
    bundle = load_bundle(tmp_path / "v1")

    for ms in (5, 13, 27, 61, 250):
        assert predict_clip(bundle, _after(ms, alice, tmp_path / "again.wav"))[0].speaker == "Alice"
    assert predict_clip(bundle, _after(0, stranger, tmp_path / "s.wav"))[0].speaker != "Alice"


@pytest.mark.slow
def test_a_voice_taught_with_a_dozen_takes_gets_envelope_rows_and_a_radius(
    enrolled: tuple[Path, dict[str, Any]],
) -> None:
    envelopes = load_bundle(enrolled[0]).open_set.envelopes

    assert envelopes is not None
    # Alice's 12 takes; David and Steve, of 100 clips each, are judged by the open set alone
    assert envelopes.offsets.tolist() == [0, 12, 12, 12]
    assert 0 < envelopes.radii[0] <= CAP * (2 * ORDER) ** 0.5
    assert envelopes.radii[1:].tolist() == [0.0, 0.0]


@pytest.mark.slow
def test_a_successor_keeps_the_envelope_rows_of_a_voice_whose_takes_are_not_at_hand(
    enrolled: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    # Alice's rows name files of the store she was taught from; this successor is taught Bob
    # from elsewhere, and her files are not where its rows say (relative to the working folder).
    bob = VoiceSpec("Bob", pitch_hz=95.0, formant_scale=0.9, tilt=14.0, breathiness=0.05)
    folder = tmp_path / "bob"
    write_demo_data(folder, clips_per_voice=12, seed=3, voices=[bob])
    base = load_bundle(enrolled[0]).open_set.envelopes
    assert base is not None

    enrol(enrolled[0], tmp_path / "v2", store_recordings(folder), EnrolOptions(root=folder))
    envelopes = load_bundle(tmp_path / "v2").open_set.envelopes

    assert load_bundle(tmp_path / "v2").labels == ("Alice", "Bob", "David", "Steve")
    assert envelopes is not None
    assert envelopes.offsets.tolist() == [0, 12, 24, 24, 24]
    np.testing.assert_array_equal(envelopes.references[:12], base.references[:12])
    assert envelopes.radii[0] == pytest.approx(base.radii[0])


@pytest.mark.slow
def test_the_successor_keeps_the_old_split_and_marks_the_store_rows(
    enrolled: tuple[Path, dict[str, Any]],
) -> None:
    out, _ = enrolled
    base, successor = read_training_set(load_bundle(MODEL_DIR)), read_training_set(load_bundle(out))

    assert len(successor) == len(base) + 12
    assert successor.files[: len(base)] == base.files
    assert successor.split[: len(base)].tolist() == base.split.tolist()
    assert successor.enrolled.tolist() == [False] * len(base) + [True] * 12
    assert successor.files[len(base) :] == [f"Alice/hello_{k:03d}.wav" for k in range(12)]
    assert int((successor.split[len(base) :] == SPLIT_VALIDATION).sum()) == 2


@pytest.mark.slow
def test_the_successor_keeps_the_sha256_of_every_clip_it_learnt_from(
    enrolled: tuple[Path, dict[str, Any]], store: Path
) -> None:
    out, _ = enrolled
    base, successor = read_training_set(load_bundle(MODEL_DIR)), read_training_set(load_bundle(out))

    assert successor.digests[: len(base)] == base.digests
    assert successor.digests[len(base) :] == [
        file_digest(store / name) for name in successor.files[len(base) :]
    ]


@pytest.mark.parametrize(
    ("name", "why"),
    [("Alice", "one recording cannot teach two voices: leave it out of 'Alice'"),
     ("Steve", "it holds nothing new: leave it out")],
)  # fmt: skip
def test_a_clip_the_model_learnt_from_is_refused_as_a_new_take(
    demo_data: Path, tmp_path: Path, name: str, why: str
) -> None:
    """The shipped model learnt from the demo voices' clips of seed 0 (``demo_data``'s)."""
    takes = tmp_path / "takes"
    write_demo_data(takes, clips_per_voice=5, seed=5, voices=[ALICE])
    again = shutil.copy(demo_data / "Steve" / "hello_003.wav", takes / "Alice" / "again.wav")
    new = [Recording(p, name) for p in sorted((takes / "Alice").iterdir())]

    with pytest.raises(DatasetError) as refused:
        enrol(MODEL_DIR, tmp_path / "out", new, EnrolOptions(root=tmp_path))

    assert str(refused.value) == (
        f"clip {str(Path(again).relative_to(tmp_path))!r} has the same bytes as "
        f"'Steve/hello_003.wav', a clip of 'Steve' the model learnt from: {why}"
    )
    assert not (tmp_path / "out").exists()


def test_digests_that_do_not_fit_the_training_set_are_refused(bundle_copy: Path) -> None:
    _rewrite_training_set(bundle_copy, {"digests": np.zeros((199, 32), dtype=np.uint8)})

    with pytest.raises(BundleError, match=r"digests are \(199, 32\) uint8, expected \(200, 32\)"):
        read_training_set(load_bundle(bundle_copy))


@pytest.mark.slow
def test_training_from_the_store_again_replaces_its_voices(
    enrolled: tuple[Path, dict[str, Any]],
    tmp_path: Path,
) -> None:
    out, _ = enrolled
    empty = tmp_path / "store"
    empty.mkdir()

    enrol(out, tmp_path / "v2", [], EnrolOptions(from_store=True, root=empty))

    assert load_bundle(tmp_path / "v2").labels == ("David", "Steve")  # Alice left the store


def _with_training_record(bundle: Path, **changes: Any) -> None:
    """Change ``bundle``'s recorded training settings (metadata.json is not checksummed)."""
    path = bundle / "metadata.json"
    meta = json.loads(path.read_text())
    meta["training"] |= changes
    path.write_text(json.dumps(meta))


# Five voices besides the shipped model's two: a successor that knows them knows seven.
FIVE = [
    VoiceSpec(f"Voice{k}", pitch_hz=100.0 + 35 * k, formant_scale=0.8 + 0.1 * k, tilt=4.0 * k,
              breathiness=0.05)
    for k in range(5)
]  # fmt: skip


@pytest.mark.slow
def test_a_successor_past_six_speakers_gets_the_rules_width(
    bundle_copy: Path, tmp_path: Path
) -> None:
    _with_training_record(bundle_copy, candidates=2, max_epochs=20, patience=5)
    write_demo_data(tmp_path / "new", clips_per_voice=5, seed=3, voices=FIVE)
    new = store_recordings(tmp_path / "new")

    enrol(bundle_copy, tmp_path / "out", new, EnrolOptions(root=tmp_path / "new"))

    successor = load_bundle(tmp_path / "out")
    assert len(successor.labels) == 7
    assert successor.network.sizes == (60, hidden_units(7), 7)
    assert (successor.metadata.training.hidden, successor.metadata.training.hidden_pinned) == (
        hidden_units(7),
        False,
    )


def test_a_width_the_rule_chose_is_chosen_again_and_a_pinned_one_kept(bundle_copy: Path) -> None:
    assert _train_config(load_bundle(bundle_copy)).hidden is None  # the rule's 6 for 2 voices
    _with_training_record(bundle_copy, hidden=3, hidden_pinned=True)

    assert _train_config(load_bundle(bundle_copy)).hidden == 3


def test_a_model_needs_two_speakers_and_a_forgotten_one_must_exist(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"would know 1 speaker\(s\); at least 2"):
        enrol(MODEL_DIR, tmp_path / "out", [], EnrolOptions(forget=("Steve",)))
    with pytest.raises(DatasetError, match="cannot forget 'Bob': not a speaker of the model"):
        enrol(MODEL_DIR, tmp_path / "out", [], EnrolOptions(forget=("Bob",)))
    assert not (tmp_path / "out").exists()


def test_a_new_voice_with_too_few_usable_clips_is_refused(store: Path, tmp_path: Path) -> None:
    three = store_recordings(store)[:3]

    with pytest.raises(DatasetError, match="speaker 'Alice' has 3 usable clips; at least 4"):
        enrol(MODEL_DIR, tmp_path / "out", three, EnrolOptions(root=store))


def test_a_new_voice_whose_takes_are_all_refused_says_so_with_a_feature_cache(
    tmp_path: Path,
) -> None:
    """The cache then holds only refusals, and is saved all the same (it crashed saving)."""
    takes = tmp_path / "store" / "Zed"
    takes.mkdir(parents=True)
    for i in range(4):
        sf.write(takes / f"take-{i}.wav", np.zeros(16_000, np.float32), 16_000)

    with pytest.raises(DatasetError) as error:
        enrol(MODEL_DIR, tmp_path / "out", store_recordings(tmp_path / "store"),
              EnrolOptions(root=tmp_path / "store", cache_dir=tmp_path / "cache"))  # fmt: skip

    silent = "clip is silent: peak level -inf dBFS is below -80 dBFS"
    assert str(error.value) == (
        "speaker 'Zed' has 0 usable clips; at least 4 are needed; skipped: "
        + "; ".join(f"Zed/take-{i}.wav: {silent}" for i in range(4))
    )
    assert not (tmp_path / "out").exists()
    assert len(list((tmp_path / "cache").iterdir())) == 1


def test_a_bundle_without_a_training_set_says_so(bundle_copy: Path, tmp_path: Path) -> None:
    (bundle_copy / TRAIN_FEATURES_FILE).unlink()

    with pytest.raises(BundleError, match="keeps no training set"):
        enrol(bundle_copy, tmp_path / "out", [])


def test_a_training_set_that_disagrees_with_its_bundle_is_refused(bundle_copy: Path) -> None:
    path = bundle_copy / TRAIN_FEATURES_FILE
    with np.load(path) as npz:
        arrays = dict(npz)
    np.savez(path, **(arrays | {"split": np.full(len(arrays["labels"]), 7)}))

    with pytest.raises(BundleError, match=r"split is not one 0 \(train\) or 1 \(validation\)"):
        read_training_set(load_bundle(bundle_copy))


def _rewrite_training_set(bundle: Path, change: dict[str, np.ndarray | None]) -> None:
    path = bundle / TRAIN_FEATURES_FILE
    with np.load(path) as npz:
        arrays = {k: v for k, v in (dict(npz) | change).items() if v is not None}
    np.savez(path, **arrays)  # type: ignore[arg-type]


def test_a_training_set_from_before_copy_conditions_has_none(bundle_copy: Path) -> None:
    _rewrite_training_set(bundle_copy, {"copy_conditions": None, "condition_names": None})

    kept = read_training_set(load_bundle(bundle_copy))

    assert kept.conditions.shape == kept.copies.shape[:2]
    assert (kept.conditions == NO_CONDITION).all()


def test_copy_conditions_are_read_by_name(bundle_copy: Path) -> None:
    names = list(CONDITIONS)
    n, width = read_training_set(load_bundle(bundle_copy)).copies.shape[:2]
    codes = np.full((n, width), NO_CONDITION, dtype=np.int8)
    codes[:, 0], codes[:, 1] = 0, 1  # the first and second of the names the file keeps
    kept_names = np.array([names[2], "gone", *names[3:]])
    _rewrite_training_set(bundle_copy, {"copy_conditions": codes, "condition_names": kept_names})

    kept = read_training_set(load_bundle(bundle_copy))

    assert (kept.conditions[:, 0] == 2).all()  # today's index of that name
    assert (kept.conditions[:, 1] == NO_CONDITION).all()  # a condition training no longer has


def test_copy_conditions_that_do_not_fit_the_copies_are_refused(bundle_copy: Path) -> None:
    _rewrite_training_set(bundle_copy, {"copy_conditions": np.zeros((3, 1), dtype=np.int8),
                                        "condition_names": np.array(list(CONDITIONS))})  # fmt: skip

    with pytest.raises(BundleError, match=r"copy_conditions are not one code per copy \(200, 6\)"):
        read_training_set(load_bundle(bundle_copy))


def test_store_recordings_skip_hidden_entries_and_other_files(tmp_path: Path) -> None:
    for name in ("Bob/a.wav", "Bob/.b.wav", "Bob/notes.txt", ".versions/x/c.wav", "Eve/d.flac"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")

    found = [(r.speaker, r.path.name) for r in store_recordings(tmp_path)]

    assert found == [("Bob", "a.wav"), ("Eve", "d.flac")]
    assert store_recordings(tmp_path / "missing") == []


def test_progress_file_holds_the_latest_step(tmp_path: Path) -> None:
    progress = ProgressFile(tmp_path / "p.json", min_interval_s=0.0)

    progress(0.5, "training: epoch 3")

    assert (tmp_path / "p.json").read_text().startswith('{"progress": 0.5, "detail": "training')
    shutil.rmtree(tmp_path)
    progress(0.6, "lost")  # a vanished folder never fails the job


def test_progress_on_a_full_disk_keeps_the_last_step_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    progress = ProgressFile(tmp_path / "p.json", min_interval_s=0.0)
    progress(0.5, "training: epoch 3")

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    progress(0.6, "training: epoch 4")  # never fails the job

    assert os.listdir(tmp_path) == ["p.json"]
    assert json.loads((tmp_path / "p.json").read_text())["detail"] == "training: epoch 3"


def test_an_out_dir_it_should_not_replace_is_refused_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "afile").write_bytes(b"keep")

    def no_work(*args: object) -> None:
        raise AssertionError("enrolment started")

    monkeypatch.setattr("pipeline.enrol.load_bundle", no_work)
    with pytest.raises(BundleError) as error:
        enrol(MODEL_DIR, tmp_path / "afile" / "new", [])

    assert str(error.value) == (
        f"cannot write a bundle at '{tmp_path}/afile/new': '{tmp_path}/afile' is a file, not a "
        "folder"
    )
