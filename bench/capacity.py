"""How wide the hidden layer should be for more voices: accuracy, FAR, FRR and training time
for each hidden width at several speaker counts, and the width training chooses by itself.

The voices: FSDD's 6 speakers (training takes 15-29, held-out takes 5-9) and LibriSpeech-mini's
10 cut into 1 s pieces (training files 0-6, held-out pieces of files 7-9, so no recording is on
both sides), taken alternately (FSDD, LibriSpeech, ...) so that every count mixes both corpora.
A model knows the first ``--voices`` of them; the held-out clips of the voices it does not know,
and espeak-ng voices saying the ten digits, are its strangers. Every model is trained with the
default settings but its width; the features of one split are extracted (and cached) once and
every width is trained on them.

Reported per voice count and width, the median over the seeds (and the range): closed-set
accuracy on the held-out clips of known voices (the top score's speaker, right or wrong), FRR
(held-out known clips answered "unknown"), FAR (strangers' clips named) and seconds of training
(fitting and calibrating, not features). The width training chooses for each count
(``pipeline.config.hidden_units``) is always among the widths, marked "<- rule". "FAR at FRR 5 %"
moves both thresholds of the decision together until 5 % of the known clips are refused, so that
widths compare at the same FRR.

    python -m bench.capacity [--voices 8 12 16] [--widths 6 8 12 16 24 32] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.common import DATA_ROOT, fsdd_dir, take_of
from bench.openset import espeak_folder
from pipeline import dataset
from pipeline.config import TrainConfig, hidden_units
from pipeline.train import Prepared, TrainOptions, fit_and_calibrate, prepare

FSDD_TRAIN, FSDD_TEST = range(15, 30), range(5, 10)
LIBRI_TEST_FILES = 3  # the last files of each LibriSpeech speaker are held out


@dataclass(frozen=True)
class Run:
    accuracy: float
    frr: float
    far: float
    far_at_5: float
    seconds: float


def link(target: Path, link_path: Path) -> None:
    link_path.parent.mkdir(parents=True, exist_ok=True)
    link_path.symlink_to(target.resolve())


def fsdd_voices(root: Path) -> list[str]:
    speakers = sorted(p for p in fsdd_dir().iterdir() if p.is_dir())
    for speaker in speakers:
        for wav in sorted(speaker.glob("*.wav")):
            take = take_of(wav)
            if take in FSDD_TRAIN or take in FSDD_TEST:
                part = "train" if take in FSDD_TRAIN else "test"
                link(wav, root / part / f"fsdd-{speaker.name}" / wav.name)
    return [f"fsdd-{s.name}" for s in speakers]


def librispeech_voices(root: Path) -> list[str]:
    """Each LibriSpeech-mini speaker's files cut into 1 s pieces, written under root."""
    speakers = sorted(p for p in (DATA_ROOT / "librispeech-mini").iterdir() if p.is_dir())
    for speaker in speakers:
        files = sorted(speaker.glob("*.flac"))
        for n, flac in enumerate(files):
            part = "test" if n >= len(files) - LIBRI_TEST_FILES else "train"
            folder = root / part / f"libri-{speaker.name}"
            folder.mkdir(parents=True, exist_ok=True)
            y, sr = sf.read(flac, dtype="float32")
            for i in range(len(y) // sr):
                sf.write(folder / f"{flac.stem}-{i:02d}.wav", y[i * sr : (i + 1) * sr], sr,
                         subtype="PCM_16")  # fmt: skip
    return [f"libri-{s.name}" for s in speakers]


def alternate(a: list[str], b: list[str]) -> list[str]:
    """a[0], b[0], a[1], b[1], ... then the rest of the longer list."""
    mixed = [v for pair in zip(a, b, strict=False) for v in pair]
    return mixed + a[len(mixed) // 2 :] + b[len(mixed) // 2 :]


def known_folder(root: Path, voices: list[str]) -> Path:
    folder = root / f"known-{len(voices)}"
    for voice in voices:
        link(root / "train" / voice, folder / voice)
    return folder


def held_out_rows(root: Path, data: Prepared, cache: Path) -> tuple[np.ndarray, list[str]]:
    """Every held-out clip's row (strangers included) and its voice."""
    found = dataset.scan_folder(root / "test")
    extraction = dataset.extract_features(found, data.cfg, cache_dir=cache)
    return extraction.features, [r.speaker for r in extraction.recordings]


def one_run(data: Prepared, tcfg: TrainConfig, rows: np.ndarray, voices: list[str]) -> Run:
    started = time.perf_counter()
    fitted = fit_and_calibrate(data, tcfg)
    seconds = time.perf_counter() - started
    decision = fitted.decision
    _, scores, distance, reasons, _ = decision.decide(rows)
    named = np.array([r is None for r in reasons])
    known = np.isin(voices, data.labels)
    truth = np.array([data.labels.index(v) if v in data.labels else -1 for v in voices])
    right = scores.argmax(axis=1) == truth
    # Both tests at once: a clip is refused when this exceeds 1 (farther than the distance
    # threshold, or a top score under the "unsure" one); moving the 1 traces a curve through
    # the decision's own operating point, so widths compare at the same FRR.
    refusal = np.maximum(distance / fitted.open_set.threshold,
                         decision.unsure_below / scores.max(axis=1))  # fmt: skip
    at_5 = np.quantile(refusal[known], 0.95)
    far_at_5 = float(np.mean(refusal[~known] <= at_5))
    return Run(float(right[known].mean()), float(1 - named[known].mean()),
               float(named[~known].mean()), far_at_5, seconds)  # fmt: skip


def cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def table(results: dict[tuple[int, int], list[Run]]) -> None:
    print(f"{'voices':>6} | {'width':>5} | {'accuracy':>19} | {'FRR':>19} | {'FAR':>19} | "
          f"{'FAR at FRR 5 %':>19} | {'train s':>7}")  # fmt: skip
    for (voices, width), runs in sorted(results.items()):
        rule = " <- rule" if width == hidden_units(voices) else ""
        print(f"{voices:>6} | {width:>5} | {cell([r.accuracy for r in runs]):>19} | "
              f"{cell([r.frr for r in runs]):>19} | {cell([r.far for r in runs]):>19} | "
              f"{cell([r.far_at_5 for r in runs]):>19} | "
              f"{statistics.median(r.seconds for r in runs):7.1f}{rule}", flush=True)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--voices", type=int, nargs="+", default=[8, 12, 16])
    parser.add_argument("--widths", type=int, nargs="+", default=[6, 8, 12, 16, 24, 32])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    results: dict[tuple[int, int], list[Run]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pool = alternate(fsdd_voices(root), librispeech_voices(root))
        espeak_folder(root / "test")  # every espeak-ng voice is a stranger: one "espeak" folder
        if max(args.voices) > len(pool):
            sys.exit(f"--voices {max(args.voices)}: the set holds {len(pool)} voices")
        cache = Path(tempfile.gettempdir()) / "voiceid-bench-capacity-cache"
        for voices in args.voices:
            known = known_folder(root, pool[:voices])
            for seed in args.seeds:
                data = prepare(known, TrainOptions(train=TrainConfig(seed=seed), cache_dir=cache))
                rows, who = held_out_rows(root, data, cache)
                for width in sorted({*args.widths, hidden_units(voices)}):
                    run = one_run(data, TrainConfig(seed=seed, hidden=width), rows, who)
                    results.setdefault((voices, width), []).append(run)
                    print(f"  {voices} voices, width {width}, seed {seed}: accuracy "
                          f"{run.accuracy:.3f} FRR {run.frr:.3f} FAR {run.far:.3f} "
                          f"(at FRR 5 %: {run.far_at_5:.3f}) "
                          f"({run.seconds:.0f} s)", flush=True)  # fmt: skip
    table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
