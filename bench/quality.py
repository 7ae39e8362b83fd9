"""How often each recording issue is found, per recording condition: the limits' calibration.

Clean FSDD clips (8 kHz) and LibriSpeech-mini 1 s pieces (16 kHz), as they are and through each
of training's degraded-copy conditions (``pipeline.augment``, then a playback level), measured
with ``pipeline.quality`` for a model that listens up to ``--band-hz``. Prints, per source and
condition, the share of clips with any issue and with each, and the share a refusal would blame
on the recording (an issue, or a sign ``pipeline.quality.conditions.blames``): clean clips should
rarely have either (``poor_recording`` refuses only clips the decision refuses anyway), degraded
ones often.
Then how often a telephone code is read (``companded_levels``): FSDD takes (8 kHz) through a
300-3400 Hz line saved as G.711 mu-law and A-law WAV files by libsndfile, and as they are, in
16-bit and in 8-bit linear WAV. Then the cost of measuring: one 1 s clip through
``predict_clip`` (decode, features, quality, decision) against the same path without the
quality measures, side by side, best of interleaved runs, on the shipped model.

    python -m bench.quality [--clips 180] [--band-hz 3800]
"""

from __future__ import annotations

import argparse
import collections
import io
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

from bench.common import DATA_ROOT, fsdd_dir
from bench.serve import one_second_clip
from pipeline import augment
from pipeline.audio import Clip, decode
from pipeline.bundle import load_bundle
from pipeline.predict import clip_histogram, predict_clip, predict_features
from pipeline.quality.conditions import causes, signs
from pipeline.quality.issues import issues
from pipeline.quality.measures import Quality, measure

SAMPLE_RATE = 16_000
ROOT = Path(__file__).resolve().parents[1]


def fsdd_clips(n: int) -> list[Clip]:
    files = sorted(fsdd_dir().glob("*/*.wav"))
    step = max(1, len(files) // n)
    return [decode(f, sample_rate=SAMPLE_RATE) for f in files[::step][:n]]


def libri_pieces(n: int) -> list[Clip]:
    files = sorted((DATA_ROOT / "librispeech-mini").glob("*/*.flac"))
    if not files:
        sys.exit(f"LibriSpeech-mini not found under {DATA_ROOT}")
    pieces = []
    for f in files:
        clip = decode(f, sample_rate=SAMPLE_RATE)
        for k in range(min(3, int(clip.duration_s))):
            part = clip.samples[k * SAMPLE_RATE : (k + 1) * SAMPLE_RATE]
            pieces.append(Clip(part, SAMPLE_RATE, clip.source_rate, 1))
    return pieces[:n]


def degraded(clip: Clip, name: str, rng: np.random.Generator) -> Quality:
    y = clip.samples.astype(np.float64)
    if name != "clean":
        y = augment.CONDITIONS[name](y, SAMPLE_RATE, rng)
        y = np.clip(y * 10 ** (rng.uniform(*augment.GAIN_DB) / 20), -1, 1)
    return measure(y.astype(np.float32), SAMPLE_RATE, source_rate=clip.source_rate)


def print_rates(source: str, condition: str, qualities: list[Quality], band_hz: float) -> None:
    counts: collections.Counter[str] = collections.Counter()
    flagged = blamed = 0
    for quality in qualities:
        found = issues(quality, band_hz)
        flagged += bool(found)
        blamed += bool(causes(found, [sign for _, sign in signs(quality, band_hz)]))
        counts.update(issue.measure for issue in found)
    shares = ", ".join(f"{k} {v / len(qualities):.2f}" for k, v in counts.most_common())
    print(f"{source:>6} {condition:>10}: any issue {flagged / len(qualities):.2f} ({shares}); "
          f"blamed when refused {blamed / len(qualities):.2f}")  # fmt: skip


def print_codes(n: int) -> None:
    files = sorted(fsdd_dir().glob("*/*.wav"))
    files = files[:: max(1, len(files) // n)][:n]
    for subtype, line in (("ULAW", True), ("ALAW", True), ("PCM_16", False), ("PCM_U8", False)):
        coded = 0
        for path in files:
            y, rate = sf.read(path, dtype="float64")
            if line:
                sos = signal.butter(4, [300, 3400], btype="bandpass", fs=rate, output="sos")
                y = signal.sosfilt(sos, y)
            buffer = io.BytesIO()
            sf.write(buffer, np.clip(y, -1, 1), rate, format="WAV", subtype=subtype)
            levels = decode(buffer.getvalue(), sample_rate=SAMPLE_RATE).source_companded_levels
            coded += bool(levels)
        what = "through a telephone line" if line else "as recorded"
        print(f"  fsdd {what}, {subtype} WAV: read as a telephone code {coded / len(files):.2f}")


def per_clip_ms(job: Callable[[], object]) -> float:
    return min(timeit.repeat(job, number=20, repeat=3)) / 20 * 1e3


def print_cost() -> None:
    bundle = load_bundle(ROOT / "models" / "default")
    data = one_second_clip()

    def without_quality() -> object:
        row, _ = clip_histogram(data, bundle.feature_config)
        return predict_features(bundle, row)

    old, new = [], []
    for _ in range(15):  # interleaved, so that a busy moment hits both
        old.append(per_clip_ms(without_quality))
        new.append(per_clip_ms(lambda: predict_clip(bundle, data)))
    print(f"per 1 s clip: {min(old):.3f} ms without the quality measures, {min(new):.3f} ms "
          f"with them: x{min(new) / min(old):.3f}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=180, help="clips per source")
    parser.add_argument("--band-hz", type=float, default=3800.0, help="the model's fmax")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for source, clips in (("fsdd", fsdd_clips(args.clips)), ("libri", libri_pieces(args.clips))):
        for condition in ("clean", *augment.CONDITIONS):
            qualities = [degraded(c, condition, rng) for c in clips]
            print_rates(source, condition, qualities, args.band_hz)
    print_codes(args.clips)
    print_cost()
    return 0


if __name__ == "__main__":
    sys.exit(main())
