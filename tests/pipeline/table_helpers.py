"""A small data folder for feature-table tests: the demo voices plus files with known fates."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.signals import PNG_BYTES, encode, harmonics, tone

__all__ = ["SKIPPED", "build_corpus"]

# path -> the reason folder training and both engines give for skipping it (with ffmpeg installed:
# without it, the not-audio file's reason says so)
SKIPPED = {
    "Steve/empty.wav": "clip is empty (0 bytes)",
    "Steve/not-audio.wav": "cannot decode PNG image data: not a supported audio format",
    "Steve/short.wav": "clip holds no speech: it has 0.06 s of sound within 40 dB of its "
    "loudest frame; at least 0.1 s is needed",
    "Steve/silent.wav": "clip is silent: peak level -inf dBFS is below -80 dBFS",
}


def build_corpus(root: Path, demo_data: Path) -> Path:
    """``root`` holding the demo voices (symlinked), the four files of ``SKIPPED``, an 8 kHz FLAC
    in a subfolder, and what scanning ignores (a hidden folder, a text file): 29 recordings."""
    for speaker_dir in sorted(demo_data.iterdir()):
        (root / speaker_dir.name).mkdir()
        for wav in sorted(speaker_dir.glob("*.wav")):
            (root / speaker_dir.name / wav.name).symlink_to(wav)
    steve = root / "Steve"
    (steve / "empty.wav").write_bytes(b"")
    (steve / "not-audio.wav").write_bytes(PNG_BYTES)
    (steve / "silent.wav").write_bytes(encode(np.zeros(16_000, dtype=np.float32)))
    (steve / "short.wav").write_bytes(encode(tone(440.0, seconds=0.05)))
    (root / "David" / "sessions").mkdir()
    low = harmonics(120.0, seconds=1.0, sample_rate=8000)
    (root / "David" / "sessions" / "8k.flac").write_bytes(encode(low, 8000, fmt="FLAC"))
    (root / "David" / "notes.txt").write_text("not a recording")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "x.wav").write_bytes(encode(tone(440.0)))
    return root
