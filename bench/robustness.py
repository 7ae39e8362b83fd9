"""The robustness table: held-out FSDD accuracy under the conditions people really record in.

Trains one 60-6-6 model per seed on FSDD takes 15-49, then scores takes 5-14 as they are and
altered: level (gain -30 to +12 dB, clipped where it overflows, and peak-normalised), overdrive
(gain x2/x3/x4 into hard clipping), pink, white and babble noise at 5/10/20 dB SNR, a telephone
line (300-3400 Hz with mu-law), rooms (RT60 0.3/0.6/1.0 s), MP3 at 8/16/32 kbit/s, OGG/Vorbis,
FLAC, 44.1 kHz stereo with silence padding, and clipping at half the peak. Prints each
condition's median accuracy over the seeds (a refused clip counts as wrong), its change from
clean, and the issue's goals per group; then, per condition, the decision's figures: the share of
known clips named (coverage), how many of those rightly (precision), the share refused (FRR) and,
of those, refused as a poor recording with a cause, the share of strangers named (FAR):
LibriSpeech-mini speakers cut into 1 s pieces at 8 kHz, under the same condition, and the share of
all known and of all strangers' clips refused as a poor recording.

The alterations are this file's own, independent of ``pipeline.augment``; babble is real speech
from LibriSpeech-mini, which training never sees. MP3 needs ``ffmpeg`` (for exact bitrates).

    python -m bench.robustness [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr
from scipy import signal

from bench.common import DATA_ROOT, fsdd_dir, split_by_take
from pipeline.bundle import load_bundle
from pipeline.config import TrainConfig
from pipeline.evaluate import evaluate_folder
from pipeline.train import TrainOptions, train

Alter = Callable[[np.ndarray, int, np.random.Generator], tuple[np.ndarray, int]]
BABBLE_TALKERS = 6
STRANGER_PIECES = 2  # 1 s pieces of each LibriSpeech-mini file, as strangers
STRANGER_RATE = 8000  # Hz: FSDD's own rate, so that strangers differ by voice, not by band


@dataclass(frozen=True)
class Condition:
    alter: Alter
    container: str = "wav"  # wav, flac, ogg, or mp3-<kbit/s>


def as_is(y: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    return y, sr


def gain(db: float) -> Alter:
    def alter(y: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        return np.clip(y * 10 ** (db / 20), -1, 1), sr

    return alter


def peak_normalised(y: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    return y * 10 ** (-1 / 20) / np.max(np.abs(y)), sr


def overdrive(factor: float) -> Alter:
    def alter(y: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        return np.clip(y * factor, -1, 1), sr

    return alter


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.arange(len(spectrum), dtype=np.float64)
    freqs[0] = 1.0
    return np.fft.irfft(spectrum / np.sqrt(freqs), n=n)


class Babble:
    """Six LibriSpeech-mini talkers at once, at random offsets, each at the same level."""

    def __init__(self, sample_rate: int) -> None:
        files = sorted((DATA_ROOT / "librispeech-mini").glob("*/*.flac"))
        if not files:
            sys.exit(f"LibriSpeech-mini not found under {DATA_ROOT}; babble needs it")
        self.voices = [soxr.resample(sf.read(f, dtype="float64")[0], 16_000, sample_rate)
                       for f in files]  # fmt: skip

    def __call__(self, n: int, rng: np.random.Generator) -> np.ndarray:
        out = np.zeros(n)
        for i in rng.choice(len(self.voices), BABBLE_TALKERS, replace=False):
            voice = np.tile(self.voices[i], n // len(self.voices[i]) + 2)
            start = int(rng.integers(len(voice) - n))
            part = voice[start : start + n]
            out += part / (np.sqrt(np.mean(part**2)) + 1e-12)
        return out


def noise(kind: str, snr_db: float, babble: Babble) -> Alter:
    def alter(y: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        n = len(y)
        if kind == "white":
            z = rng.standard_normal(n)
        elif kind == "pink":
            z = _pink(n, rng)
        else:
            z = babble(n, rng)
        z *= np.sqrt(np.mean(y**2) / 10 ** (snr_db / 10) / np.mean(z**2))
        return np.clip(y + z, -1, 1), sr

    return alter


def telephone(y: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    sos = signal.butter(4, [300, 3400], btype="bandpass", fs=sr, output="sos")
    x = np.clip(signal.sosfilt(sos, y), -1, 1)
    mu = 255.0
    code = np.round(np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu) * 127) / 127
    return np.sign(code) * ((1 + mu) ** np.abs(code) - 1) / mu, sr


def room(rt60: float) -> Alter:
    def alter(y: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        n = int(1.2 * rt60 * sr)
        response = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / sr / rt60)
        response[0] = 1.0
        wet = signal.fftconvolve(y, response)[: len(y) + n // 2]
        return wet * np.max(np.abs(y)) / np.max(np.abs(wet)), sr

    return alter


def stereo_44k_with_silence(
    y: np.ndarray, sr: int, rng: np.random.Generator
) -> tuple[np.ndarray, int]:
    rate = 44_100
    pad = np.zeros(rate // 2)
    mono = np.concatenate([pad, soxr.resample(y, sr, rate), pad])
    return np.stack([mono, 0.8 * mono], axis=1), rate  # channels at different levels


def clipped_at_half(y: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    level = 0.5 * np.max(np.abs(y))
    return np.clip(y, -level, level), sr


def conditions(babble: Babble) -> dict[str, Condition]:
    table = {"clean": Condition(as_is)}
    table |= {f"gain {db:+d} dB": Condition(gain(db)) for db in (-30, -20, -12, -6, 6, 12)}
    table["peak-normalised -1 dBFS"] = Condition(peak_normalised)
    table |= {f"overdrive x{k}": Condition(overdrive(k)) for k in (2, 3, 4)}
    for kind in ("pink", "white", "babble"):
        table |= {f"{kind} noise {snr} dB": Condition(noise(kind, snr, babble))
                  for snr in (5, 10, 20)}  # fmt: skip
    table["telephone"] = Condition(telephone)
    table |= {f"reverb RT60 {rt} s": Condition(room(rt)) for rt in (0.3, 0.6, 1.0)}
    table |= {f"MP3 {kbps} kbit/s": Condition(as_is, f"mp3-{kbps}") for kbps in (8, 16, 32)}
    table["OGG/Vorbis"] = Condition(as_is, "ogg")
    table["FLAC"] = Condition(as_is, "flac")
    table["44.1 kHz stereo + silence"] = Condition(stereo_44k_with_silence)
    table["clipped at half the peak"] = Condition(clipped_at_half)
    return table


LEVEL = ["gain -20 dB", "gain -12 dB", "gain -6 dB", "gain +6 dB", "peak-normalised -1 dBFS"]
HARSH = ["overdrive x3", "pink noise 10 dB", "telephone", "reverb RT60 0.6 s", "MP3 8 kbit/s"]
FORMATS = ["OGG/Vorbis", "MP3 16 kbit/s", "FLAC", "44.1 kHz stereo + silence",
           "white noise 20 dB", "clipped at half the peak"]  # fmt: skip
# The goal groups: (conditions, goal for the group's mean, floor for each condition).
GROUPS = {
    "level": (LEVEL, None, 0.95),
    "harsh": (HARSH, 0.90, 0.80),
    "formats": (FORMATS, 0.95, None),
}


def write_clip(path: Path, y: np.ndarray, sr: int, container: str) -> None:
    if container.startswith("mp3-"):
        pcm = (np.clip(y, -1, 1) * 32767).astype("<i2").tobytes()
        command = ["ffmpeg", "-loglevel", "error", "-f", "s16le", "-ar", str(sr), "-ac", "1",
                   "-i", "-", "-b:a", f"{container[4:]}k", "-f", "mp3", str(path)]  # fmt: skip
        subprocess.run(command, input=pcm, check=True)
        return
    fmt, subtype = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"),
                    "ogg": ("OGG", "VORBIS")}[container]  # fmt: skip
    sf.write(path, np.clip(y, -1, 1), sr, format=fmt, subtype=subtype)


def alter_folder(src: Path, dest: Path, condition: Condition, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    suffix = "." + condition.container.split("-")[0]
    for wav in sorted(src.rglob("*.wav")):
        y, sr = sf.read(wav, dtype="float64")
        out, rate = condition.alter(y, sr, rng)
        target = dest / wav.parent.name / (wav.stem + suffix)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_clip(target, out, rate, condition.container)
    return dest


def stranger_folder(dest: Path) -> Path:
    """LibriSpeech-mini's speakers as 1 s pieces at 8 kHz WAV: dest/libri-<speaker>/*.wav."""
    for flac in sorted((DATA_ROOT / "librispeech-mini").glob("*/*.flac")):
        y, sr = sf.read(flac, dtype="float64")
        y = soxr.resample(y, sr, STRANGER_RATE)
        for k in range(min(STRANGER_PIECES, len(y) // STRANGER_RATE)):
            target = dest / f"libri-{flac.parent.name}" / f"{flac.stem}-{k}.wav"
            target.parent.mkdir(parents=True, exist_ok=True)
            sf.write(target, y[k * STRANGER_RATE : (k + 1) * STRANGER_RATE], STRANGER_RATE)
    return dest


DECISION_FIGURES = ("coverage", "named_precision", "false_reject_rate", "poor_recording",
                    "false_accept_rate", "poor_known", "poor_strangers")  # fmt: skip


def decision_figures(report: dict[str, Any]) -> dict[str, float]:
    """The decision's figures over all of a folder's clips, whatever their condition."""
    rows = report["conditions"].values()
    known = sum(r["n"] for r in rows)
    named = sum(r["n"] * r["coverage"] for r in rows if r["n"])
    right = sum(r["n"] * r["coverage"] * r["named_precision"] for r in rows if r["coverage"])
    refused = known - named
    poor = sum(r["n"] * r["false_reject_rate"] * (r["poor_recording"] or 0) for r in rows if r["n"])
    strangers = report["unknown_speakers"]
    return {
        "coverage": named / known,
        "named_precision": right / named if named else float("nan"),
        "false_reject_rate": refused / known,
        "poor_recording": poor / refused if refused else float("nan"),
        "false_accept_rate": strangers["false_accept_rate"],
        "poor_known": poor / known,
        "poor_strangers": strangers["poor_recording"] / strangers["n"],
    }


def _finite_mean(values: list[float]) -> float:
    """The mean of the values that are numbers: a condition that names nobody has no precision."""
    finite = [v for v in values if math.isfinite(v)]
    return statistics.mean(finite) if finite else float("nan")


def print_decisions(figures: dict[str, dict[str, float]]) -> None:
    print("\nThe decision per condition, median over seeds: known FSDD clips named (coverage), "
          "rightly (precision), refused (FRR) and of those as a poor recording; strangers named "
          "(FAR, LibriSpeech 1 s pieces under the same condition); the share of all known clips "
          "and of all strangers' clips refused as a poor recording")  # fmt: skip
    print(f"{'condition':>28} | coverage | precision | FRR   | poor  | FAR   | poor of known "
          "| poor of strangers")  # fmt: skip
    for name, row in figures.items():
        values = " | ".join(f"{row[k]:.3f}" for k in DECISION_FIGURES)
        print(f"{name:>28} | {values}")
    for group, (names, _, _) in GROUPS.items():
        means = {k: _finite_mean([figures[n][k] for n in names]) for k in DECISION_FIGURES}
        print(f"{group:>8}: FRR {means['false_reject_rate']:.3f} (goal harsh <= 0.30, others <= "
              f"0.06), named precision {means['named_precision']:.3f}, poor recording "
              f"{means['poor_recording']:.3f} of refusals (goal harsh >= 0.50), stranger FAR "
              f"{means['false_accept_rate']:.3f}")  # fmt: skip
    clean = figures["clean"]
    print(f"   clean: poor recording on {clean['poor_known']:.3f} of known clips and "
          f"{clean['poor_strangers']:.3f} of strangers' (goal <= 0.03 each)")  # fmt: skip


def print_groups(median: dict[str, float]) -> None:
    clean = median["clean"]
    for group, (names, goal, floor) in GROUPS.items():
        values = [median[n] for n in names]
        worst = min(values)
        goals = []
        if group == "level":
            change = (statistics.mean(values) - clean) * 100
            goals.append(f"mean within 1 point of clean (it is {change:+.2f})")
        if goal is not None:
            goals.append(f"mean >= {goal}")
        if floor is not None:
            goals.append(f"none below {floor}")
        print(f"{group:>8}: mean {statistics.mean(values):.4f}, worst {worst:.4f} "
              f"({names[values.index(worst)]}); goals: {', '.join(goals)}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        sys.exit("bench.robustness needs ffmpeg for the MP3 conditions")
    table = conditions(Babble(8000))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        train_dir, test_dir = split_by_take(fsdd_dir(), root / "fsdd")
        strangers = stranger_folder(root / "strangers")
        cache = root / "cache"
        bundles = []
        for seed in args.seeds:
            started = time.perf_counter()
            opts = TrainOptions(train=TrainConfig(seed=seed), cache_dir=cache)
            train(train_dir, root / f"model-{seed}", opts)
            bundles.append(load_bundle(root / f"model-{seed}"))
            print(f"seed {seed}: trained on takes 15-49 in {time.perf_counter() - started:.1f} s")
        opts = TrainOptions(cache_dir=cache)
        print(f"FSDD takes 5-14, median accuracy over seeds {args.seeds} (a refused clip is wrong)")
        print(f"{'condition':>28} | {'accuracy':>8} | {'change':>7} | per seed | refused")
        median: dict[str, float] = {}
        figures: dict[str, dict[str, float]] = {}
        for i, (name, condition) in enumerate(table.items()):
            folder = alter_folder(test_dir, root / f"cond{i}", condition, seed=1000 + i)
            alter_folder(strangers, folder, condition, seed=2000 + i)
            accs, refused, per_seed = [], 0, []
            for b in bundles:
                report = evaluate_folder(folder, b.decision(), b.labels, b.feature_config,
                                         cache_dir=opts.cache_dir)  # fmt: skip
                known_skipped = [s for s in report["skipped"] if not s["file"].startswith("libri")]
                n_all = report["n"] + len(known_skipped)
                accs.append(report["accuracy"] * report["n"] / n_all)
                refused = len(known_skipped)
                per_seed.append(decision_figures(report))
            figures[name] = {k: statistics.median(f[k] for f in per_seed) for k in DECISION_FIGURES}
            median[name] = statistics.median(accs)
            change = (median[name] - median["clean"]) * 100
            seeds = " ".join(f"{a:.3f}" for a in accs)
            print(f"{name:>28} | {median[name]:8.4f} | {change:+7.2f} | {seeds} | {refused}")
            shutil.rmtree(folder)
    print_groups(median)
    print_decisions(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
