"""Integration: speaker accuracy on real recordings (FSDD), split by take so no take is in both.

The data lives outside the repository, at ``$VOICEID_DATA/fsdd`` (default ``../shared/data``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.common import DATA_ROOT, split_by_take
from pipeline.config import TrainConfig
from pipeline.train import TrainOptions, train

FSDD = DATA_ROOT / "fsdd"
SPEAKERS = ("george", "jackson", "lucas")  # three of the six: ~5 s on two cores

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not all((FSDD / s).is_dir() for s in SPEAKERS),
        reason=f"FSDD not found at {FSDD} (set VOICEID_DATA to the folder holding fsdd/)",
    ),
]


def test_held_out_takes_are_identified(tmp_path: Path) -> None:
    subset = tmp_path / "subset"
    subset.mkdir()
    for speaker in SPEAKERS:
        (subset / speaker).symlink_to(FSDD / speaker)
    train_dir, test_dir = split_by_take(subset, tmp_path / "split")  # test: takes 5-14
    opts = TrainOptions(train=TrainConfig(candidates=2), jobs=1, test_dir=test_dir)

    report = train(train_dir, tmp_path / "model", opts)

    assert report["labels"] == list(SPEAKERS)
    assert report["files"]["found"] == 3 * 350  # 10 digits x takes 15-49
    assert report["test"]["n"] + len(report["test"]["skipped"]) == 3 * 100  # takes 5-14
    assert report["files"]["skipped"] + len(report["test"]["skipped"]) <= 0.02 * 3 * 450
    assert report["metrics"]["test_accuracy"] >= 0.95
