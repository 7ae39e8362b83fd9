"""How much held-out FSDD accuracy survives other formats, rates, silence, noise and clipping.

Trains one 60-6-6 model on takes 15-49 (seed 0), then scores takes 5-14 as they are and
transformed: re-encoded as FLAC, OGG/Vorbis and MP3; resampled to 44.1 kHz stereo with 0.5 s of
silence either side; with white noise at 20 dB SNR; clipped at half the peak. Prints the accuracy
of each and its loss in points against the clean clips.

    python -m bench.robustness [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from bench.common import fsdd_dir, split_by_take
from pipeline.bundle import load_bundle
from pipeline.config import TrainConfig
from pipeline.evaluate import evaluate_folder
from pipeline.train import TrainOptions, train

Transform = Callable[[np.ndarray, int, np.random.Generator], tuple[np.ndarray, int]]


def as_is(y: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    return y, sr


def stereo_44k_with_silence(
    y: np.ndarray, sr: int, rng: np.random.Generator
) -> tuple[np.ndarray, int]:
    rate = 44_100
    up = soxr.resample(y, sr, rate)
    pad = np.zeros(rate // 2, dtype=up.dtype)
    mono = np.concatenate([pad, up, pad])
    return np.stack([mono, 0.8 * mono], axis=1), rate  # channels at different levels


def noise_20db(y: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    signal_rms = np.sqrt(np.mean(y**2))
    noise = rng.standard_normal(len(y)) * signal_rms / 10 ** (20 / 20)
    return np.clip(y + noise, -1, 1), sr


def clipped(y: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    level = 0.5 * np.max(np.abs(y))
    return np.clip(y, -level, level), sr


CONDITIONS: dict[str, tuple[Transform, str, str | None]] = {
    "clean WAV": (as_is, "WAV", "PCM_16"),
    "FLAC": (as_is, "FLAC", "PCM_16"),
    "OGG/Vorbis": (as_is, "OGG", "VORBIS"),
    "MP3": (as_is, "MP3", "MPEG_LAYER_III"),
    "44.1 kHz stereo + silence": (stereo_44k_with_silence, "WAV", "PCM_16"),
    "white noise, 20 dB SNR": (noise_20db, "WAV", "PCM_16"),
    "clipped at half the peak": (clipped, "WAV", "PCM_16"),
}
SUFFIX = {"WAV": ".wav", "FLAC": ".flac", "OGG": ".ogg", "MP3": ".mp3"}


def transform_folder(src: Path, dest: Path, name: str, seed: int) -> Path:
    transform, fmt, subtype = CONDITIONS[name]
    rng = np.random.default_rng(seed)
    for wav in sorted(src.rglob("*.wav")):
        y, sr = sf.read(wav, dtype="float32")
        out, rate = transform(y, sr, rng)
        target = dest / wav.parent.name / (wav.stem + SUFFIX[fmt])
        target.parent.mkdir(parents=True, exist_ok=True)
        sf.write(target, out, rate, format=fmt, subtype=subtype)
    return dest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        train_dir, test_dir = split_by_take(fsdd_dir(), root / "fsdd")
        opts = TrainOptions(train=TrainConfig(seed=args.seed), cache_dir=root / "cache")
        train(train_dir, root / "model", opts)
        bundle = load_bundle(root / "model")
        labels = list(bundle.labels)
        print(f"FSDD takes 5-14, one model (seed {args.seed}) trained on takes 15-49")
        clean = None
        for i, name in enumerate(CONDITIONS):
            started = time.perf_counter()
            folder = transform_folder(test_dir, root / f"cond{i}", name, args.seed)
            report = evaluate_folder(folder, bundle.network, labels, bundle.threshold,
                                     bundle.feature_config, cache_dir=opts.cache_dir)  # fmt: skip
            acc = report["accuracy"]
            clean = acc if clean is None else clean
            print(f"{name:>28}: accuracy {acc:.4f} on {report['n']} clips "
                  f"({(acc - clean) * 100:+.2f} points, {len(report['skipped'])} skipped, "
                  f"{time.perf_counter() - started:.1f} s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
