"""Training survives every bad file: each is skipped and named, none sets the band layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import FeatureConfig, default_fmax
from pipeline.dataset import extract_features, scan_folder
from pipeline.train import feature_config_for
from tests.security import hostile
from tests.signals import SR, encode, harmonics, tone

BAD = {
    "low-100hz.wav": (
        encode(tone(20, sample_rate=100), 100),
        "sample rate 100 Hz is below the minimum of 8000 Hz",
    ),
    "low-1khz.wav": (
        encode(tone(200, sample_rate=1000), 1000),
        "sample rate 1000 Hz is below the minimum of 8000 Hz",
    ),
    "junk.wav": (hostile.riff_junk(), hostile.DAMAGED_WAV),
    "bomb.flac": (
        hostile.flac_bomb(),
        "clip holds 309325200 samples (8 channels at 655350 Hz); at most 5760000 are decoded",
    ),
}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    for speaker, f0 in (("alice", 120.0), ("bob", 200.0)):
        (root / speaker).mkdir(parents=True)
        for i in range(2):
            (root / speaker / f"{i}.wav").write_bytes(encode(harmonics(f0 + i, seconds=0.5)))
    for name, (data, _) in BAD.items():
        (root / "alice" / name).write_bytes(data)
    return root


def test_each_bad_file_is_skipped_with_its_reason(data_dir: Path) -> None:
    recordings = scan_folder(data_dir)

    extraction = extract_features(recordings, FeatureConfig(), jobs=1)

    skipped = {rec.path.name: reason for rec, reason in extraction.skipped}
    assert skipped == {name: reason for name, (_, reason) in BAD.items()}
    assert len(extraction.recordings) == 4


def test_a_low_rate_file_does_not_set_the_band_layout(data_dir: Path) -> None:
    cfg = feature_config_for(scan_folder(data_dir), fmax=None)

    assert cfg.fmax == default_fmax(SR)


def test_an_unwritable_cache_warns_and_the_run_goes_on(data_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")

    with pytest.warns(UserWarning, match=r"feature cache '.*a-file/cache' is not writable"):
        extraction = extract_features(
            scan_folder(data_dir), FeatureConfig(), jobs=1, cache_dir=blocker / "cache"
        )

    assert len(extraction.recordings) == 4
