"""Tests of pipeline.learnt: the sha256 of each clip a bundle learnt from, kept and read back."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from pipeline.bundle import TRAIN_FEATURES_FILE, load_bundle
from pipeline.errors import BundleError
from pipeline.learnt import LearntClip, digests_array, digests_of, learnt_clips, model_clips

A, B = (hashlib.sha256(data).hexdigest() for data in (b"a", b"b"))


def test_digests_go_to_32_bytes_a_clip_and_back_with_zeros_for_none() -> None:
    array = digests_array([A, None, B])

    assert array.shape == (3, 32) and array.dtype == np.uint8
    assert not array[1].any()
    assert digests_of(array, 3, "x") == [A, None, B]


def test_a_training_set_without_digests_knows_none() -> None:
    assert digests_of(None, 2, "x") == [None, None]


@pytest.mark.parametrize(
    "array", [np.zeros((2, 32), np.uint8), np.zeros((3, 16), np.uint8), np.zeros((3, 32))]
)
def test_digests_that_are_not_one_32_byte_row_a_clip_are_refused(array: np.ndarray) -> None:
    with pytest.raises(BundleError) as refused:
        digests_of(array, 3, "m/train_features.npz")

    assert str(refused.value) == (
        f"m/train_features.npz does not check out: digests are {array.shape} {array.dtype}, "
        "expected (3, 32) uint8"
    )


def _rewrite(bundle: Path, **change: np.ndarray | None) -> None:
    path = bundle / TRAIN_FEATURES_FILE
    with np.load(path) as npz:
        arrays = {k: v for k, v in (dict(npz) | change).items() if v is not None}
    np.savez(path, **arrays)  # type: ignore[arg-type]


def test_learnt_clips_name_each_digest_by_its_file(bundle_copy: Path) -> None:
    with np.load(bundle_copy / TRAIN_FEATURES_FILE) as npz:
        files = [str(f) for f in npz["files"]]
    digests: list[str | None] = [hashlib.sha256(f.encode()).hexdigest() for f in files]
    digests[0] = None  # a file whose bytes were not known
    _rewrite(bundle_copy, digests=digests_array(digests))

    learnt = learnt_clips(load_bundle(bundle_copy))

    assert learnt == {d: f for d, f in zip(digests[1:], files[1:], strict=True)}


def test_a_bundle_without_digests_or_a_training_set_has_learnt_none(bundle_copy: Path) -> None:
    _rewrite(bundle_copy, digests=None)
    assert learnt_clips(load_bundle(bundle_copy)) == {}

    (bundle_copy / TRAIN_FEATURES_FILE).unlink()
    assert learnt_clips(load_bundle(bundle_copy)) == {}


def test_file_names_that_are_no_list_are_refused(bundle_copy: Path) -> None:
    _rewrite(bundle_copy, files=np.array([["a", "b"]] * 200), digests=np.zeros((200, 32), np.uint8))

    with pytest.raises(BundleError, match=r"files are \(200, 2\), expected \(clips,\)"):
        learnt_clips(load_bundle(bundle_copy))


def test_model_clips_name_each_clip_s_speaker_and_leave_out_a_store_s(bundle_copy: Path) -> None:
    with np.load(bundle_copy / TRAIN_FEATURES_FILE) as npz:
        files, labels, names = npz["files"], npz["labels"], npz["label_names"]
    digests = [hashlib.sha256(str(f).encode()).hexdigest() for f in files]
    enrolled = np.zeros(len(files), dtype=bool)
    enrolled[:3] = True  # rows a speaker store gave: training from the store reads them afresh
    _rewrite(bundle_copy, digests=digests_array(digests), enrolled=enrolled)

    clips = model_clips(bundle_copy)

    assert clips == {
        digests[i]: LearntClip(str(files[i]), str(names[labels[i]])) for i in range(3, len(files))
    }
    assert {c.speaker for c in clips.values()} == {"David", "Steve"}
    assert len(learnt_clips(load_bundle(bundle_copy))) == len(files)  # evaluate skips them all


def test_labels_that_do_not_fit_the_files_are_refused(bundle_copy: Path) -> None:
    _rewrite(bundle_copy, labels=np.zeros(3, dtype=np.int64))

    with pytest.raises(BundleError, match=r"labels are \(3,\) and enrolled \(200,\), expected"):
        model_clips(bundle_copy)

    _rewrite(bundle_copy, labels=np.full(200, 2))
    with pytest.raises(BundleError, match="a label is not one of 2 names"):
        model_clips(bundle_copy)
