"""Helpers shared by the benchmarks: where the shared data is, and FSDD's take split."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

DATA_ROOT = Path(
    os.environ.get("VOICEID_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
FSDD_NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")


def fsdd_dir() -> Path:
    path = DATA_ROOT / "fsdd"
    if not path.is_dir():
        sys.exit(f"FSDD not found at {path}; set VOICEID_DATA to the folder holding fsdd/")
    return path


def take_of(path: Path) -> int:
    match = FSDD_NAME.match(path.name)
    if match is None:
        raise ValueError(f"{path.name!r} is not an FSDD file name")
    return int(match.group(3))


def split_by_take(source: Path, dest: Path, test_takes: range = range(5, 15)) -> tuple[Path, Path]:
    """Symlink FSDD into dest/train and dest/test by take number, so no take is in both."""
    for speaker_dir in sorted(p for p in source.iterdir() if p.is_dir()):
        for wav in sorted(speaker_dir.glob("*.wav")):
            part = "test" if take_of(wav) in test_takes else "train"
            target = dest / part / speaker_dir.name / wav.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(wav)
    return dest / "train", dest / "test"
