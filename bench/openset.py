"""Open-set benchmark: how many strangers are named as someone, and how many known voices are not.

Protocols, each with the nearest-training-clip rule (``pipeline.openset``) and the old rule (a
threshold on the top softmax score, keeping 95 % of validation clips) side by side:

1. FSDD, leave two speakers out, over all 15 pairs: a model trained on four speakers' takes
   15-49; known clips are their takes 5-14, strangers the other two speakers' takes 5-14.
2. LibriSpeech-mini as strangers against a 6-speaker FSDD model, as full sentences and cut into
   1 s pieces; known clips are FSDD takes 5-14.
3. Synthetic voices as strangers: espeak-ng voices and variants saying the ten digits, made at
   run time (skipped when espeak-ng is not installed).

Reported: FAR and FRR at the model's own calibrated decision, FAR where the rule's score is set
to reject 5 % and 10 % of known clips (an ROC operating point on these clips), and the AUROC.
Protocol 1 is repeated under each harsh condition of ``bench.robustness`` (the known and the
left-out speakers' takes 5-14 altered alike), with the decision's figures per condition: known
clips named (coverage), rightly (precision), refused (FRR) and of those as a poor recording, and
left-out speakers' clips named (FAR on degraded strangers) and answered as a poor recording.
Then the cost of one decision against 10,000 reference rows spread over 2 to 10,000 speakers, and
against a million rows over 5,000 speakers, where each compares with one speaker's rows only; and
of a clip that resembles a degraded condition, compared with the clean and the matched references
(``pipeline.openset``), at 1,000 rows a speaker each.

    python -m bench.openset [--seed 0] [--pairs 15] [--cost-only]
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
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

from bench.common import DATA_ROOT, fsdd_dir, split_by_take
from bench.robustness import HARSH, Babble, alter_folder, conditions
from pipeline import dataset
from pipeline.bundle import Bundle, load_bundle
from pipeline.config import (
    BAND_SPREAD,
    CEPSTRA,
    CLASSIC_HIDDEN,
    TrainConfig,
    derived_feature_config,
)
from pipeline.evaluate import evaluate_folder
from pipeline.openset import MAX_REFERENCES_PER_SPEAKER, Nuisance, OpenSet, auroc
from pipeline.train import TrainOptions, train

ESPEAK_VOICES = ["en", "en-us", "en-gb-x-rp", "en-029", "en-gb-scotland", "de", "fr", "es",
                 "it", "nl", "pl", "sv", "en+m2", "en+m4", "en+m7", "en+f2", "en+f4",
                 "en+croak", "en+whisper", "en-us+klatt"]  # fmt: skip
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@dataclass(frozen=True)
class Scores:
    """Each clip's open-set score (higher: more likely a stranger) and the model's verdict."""

    distance: np.ndarray
    softmax: np.ndarray  # 1 - top score
    rejected: np.ndarray  # by the bundle's own decision
    rejected_softmax: np.ndarray  # by the old rule


def score(bundle: Bundle, rows: np.ndarray, softmax_threshold: float) -> Scores:
    _, scores, distance, reasons, _ = bundle.decision().decide(rows)
    top = scores.max(axis=1)
    return Scores(distance, 1 - top, np.array([r is not None for r in reasons]),
                  top < softmax_threshold)  # fmt: skip


def far_at_frr(known: np.ndarray, strangers: np.ndarray, frr: float) -> float:
    """Strangers accepted when the threshold rejects ``frr`` of the known clips."""
    threshold = np.quantile(known, 1 - frr)
    return float(np.mean(strangers <= threshold))


def rows_of(folder: Path, bundle: Bundle, cache: Path) -> tuple[np.ndarray, list[str]]:
    extraction = dataset.extract_features(dataset.scan_folder(folder), bundle.feature_config,
                                          cache_dir=cache)  # fmt: skip
    return extraction.features, [r.speaker for r in extraction.recordings]


def softmax_threshold(bundle: Bundle, rows: np.ndarray) -> float:
    """The old rule's threshold: the top score that keeps 95 % of these (validation) rows."""
    return float(np.quantile(bundle.network.forward(rows)[1].max(axis=1), 0.05, method="lower"))


def protocol_row(name: str, known: Scores, strangers: Scores) -> list[str]:
    cells = []
    for rule, k, s, kr, sr in (
        ("distance", known.distance, strangers.distance, known.rejected, strangers.rejected),
        ("softmax", known.softmax, strangers.softmax, known.rejected_softmax,
         strangers.rejected_softmax),
    ):  # fmt: skip
        area = auroc(k, s)
        cells.append(f"{name:>34} | {rule:>8} | {1 - sr.mean():6.3f} | {kr.mean():6.3f} | "
                     f"{far_at_frr(k, s, 0.05):6.3f} | {far_at_frr(k, s, 0.10):6.3f} | "
                     f"{area if area is not None else float('nan'):6.3f}")  # fmt: skip
    return cells


def header() -> None:
    print(f"{'protocol':>34} | {'rule':>8} | {'FAR':>6} | {'FRR':>6} | "
          f"{'FAR@5%':>6} | {'FAR@10%':>6} | {'AUROC':>6}")  # fmt: skip


def validation_rows(bundle: Bundle, train_dir: Path, cache: Path) -> np.ndarray:
    validation = set(json.loads((bundle.path / "report.json").read_text())["split"]["validation"])
    rows, _ = rows_of(train_dir, bundle, cache)
    files = [str(r.path.relative_to(train_dir)) for r in dataset.scan_folder(train_dir)]
    return rows[[i for i, f in enumerate(files) if f in validation]]


def train_model(train_dir: Path, out: Path, seed: int, cache: Path) -> Bundle:
    train(train_dir, out, TrainOptions(train=TrainConfig(seed=seed), cache_dir=cache))
    return load_bundle(out)


def leave_two_out(root: Path, train_dir: Path, test_dir: Path, seed: int, pairs: int,
                  cache: Path) -> None:  # fmt: skip
    speakers = sorted(p.name for p in train_dir.iterdir())
    known_all, strangers_all = [], []
    harsh = harsh_folders(root, test_dir)
    tallies = {name: Tally() for name in ["clean", *harsh]}
    for left_out in list(itertools.combinations(speakers, 2))[:pairs]:
        subset = root / f"l2o-{'-'.join(left_out)}"
        subset.mkdir()
        for s in speakers:
            if s not in left_out:
                (subset / s).symlink_to((train_dir / s).resolve(), target_is_directory=True)
        bundle = train_model(subset, root / f"model-{'-'.join(left_out)}", seed, cache)
        threshold = softmax_threshold(bundle, validation_rows(bundle, subset, cache))
        rows, who = rows_of(test_dir, bundle, cache)
        is_known = np.array([w not in left_out for w in who])
        known_all.append(score(bundle, rows[is_known], threshold))
        strangers_all.append(score(bundle, rows[~is_known], threshold))
        k, st = known_all[-1], strangers_all[-1]
        print(f"  left out {'+'.join(left_out):>18}: FAR {1 - st.rejected.mean():.3f} "
              f"FRR {k.rejected.mean():.3f} (softmax rule: FAR "
              f"{1 - st.rejected_softmax.mean():.3f} FRR {k.rejected_softmax.mean():.3f})",
              flush=True)  # fmt: skip
        for name, folder in {"clean": test_dir, **harsh}.items():
            tallies[name].add(evaluate_folder(folder, bundle.decision(), bundle.labels,
                                              bundle.feature_config, cache_dir=cache))  # fmt: skip
    fars = [1 - s.rejected.mean() for s in strangers_all]
    frrs = [k.rejected.mean() for k in known_all]
    print(
        f"  over {len(fars)} pairs: FAR median {statistics.median(fars):.3f} "
        f"(range {min(fars):.3f}-{max(fars):.3f}), FRR median {statistics.median(frrs):.3f}"
    )
    header()
    for line in protocol_row("FSDD leave-2-out (pooled)", merge(known_all), merge(strangers_all)):
        print(line)
    print_tallies(tallies)


def harsh_folders(root: Path, test_dir: Path) -> dict[str, Path]:
    """FSDD takes 5-14 under each of ``bench.robustness``'s harsh conditions, altered as it
    alters them (the same seeds)."""
    table = conditions(Babble(8000))
    return {name: alter_folder(test_dir, root / f"harsh{i}", table[name], seed=1000 + i)
            for i, name in enumerate(table) if name in HARSH}  # fmt: skip


@dataclass
class Tally:
    """Counts of the decision's answers, pooled over the leave-2-out models."""

    known: int = 0
    named: int = 0
    right: int = 0
    poor: int = 0
    strangers: int = 0
    accepted: int = 0
    strangers_poor: int = 0

    def add(self, report: dict[str, Any]) -> None:
        answers = report["answers"]
        self.known += report["n"]
        self.named += answers["named_right"] + answers["named_wrong"]
        self.right += answers["named_right"]
        self.poor += sum(round(r["n"] * r["false_reject_rate"] * (r["poor_recording"] or 0))
                         for r in report["conditions"].values() if r["n"])  # fmt: skip
        self.strangers += report["unknown_speakers"]["n"]
        self.accepted += round(report["unknown_speakers"]["n"]
                               * report["unknown_speakers"]["false_accept_rate"])  # fmt: skip
        self.strangers_poor += report["unknown_speakers"]["poor_recording"]


def print_tallies(tallies: dict[str, Tally]) -> None:
    print(
        "  per condition, pooled over the pairs: known clips named (coverage), rightly "
        "(precision), refused (FRR) and of those as a poor recording; left-out speakers' clips "
        "under the same condition named (FAR), and answered as a poor recording (their poor)"
    )
    print(f"{'condition':>20} | coverage | precision | FRR   | poor  | FAR   | their poor")
    for name, t in tallies.items():
        refused = t.known - t.named
        print(f"{name:>20} | {t.named / t.known:8.3f} | {t.right / max(t.named, 1):9.3f} | "
              f"{refused / t.known:.3f} | {t.poor / max(refused, 1):.3f} | "
              f"{t.accepted / t.strangers:.3f} | {t.strangers_poor / t.strangers:.3f}")  # fmt: skip
    harsh = [t for name, t in tallies.items() if name != "clean"]
    print(
        f"  harsh: FRR {statistics.mean(1 - t.named / t.known for t in harsh):.3f} (goal <= "
        f"0.30), FAR on degraded strangers "
        f"{statistics.mean(t.accepted / t.strangers for t in harsh):.3f} (goal <= 0.15); "
        f"clean FAR {tallies['clean'].accepted / tallies['clean'].strangers:.3f} "
        "(goal <= 0.10); left-out speakers' clean clips answered as a poor recording "
        f"{tallies['clean'].strangers_poor / tallies['clean'].strangers:.3f} (goal <= 0.03)"
    )


def merge(parts: list[Scores]) -> Scores:
    return Scores(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                    ("distance", "softmax", "rejected", "rejected_softmax")))  # fmt: skip


def librispeech_folders(root: Path) -> tuple[Path, Path]:
    full, cut = root / "libri-full", root / "libri-1s"
    for flac in sorted((DATA_ROOT / "librispeech-mini").glob("*/*.flac")):
        (full / flac.parent.name).mkdir(parents=True, exist_ok=True)
        (full / flac.parent.name / flac.name).symlink_to(flac.resolve())
        y, sr = sf.read(flac, dtype="float32")
        (cut / flac.parent.name).mkdir(parents=True, exist_ok=True)
        for i in range(len(y) // sr):
            sf.write(cut / flac.parent.name / f"{flac.stem}-{i:02d}.wav", y[i * sr : (i + 1) * sr],
                     sr, subtype="PCM_16")  # fmt: skip
    return full, cut


def espeak_folder(root: Path) -> Path | None:
    if shutil.which("espeak-ng") is None:
        print("  espeak-ng is not installed: the synthetic-voice protocol is skipped")
        return None
    folder = root / "espeak"
    for voice in ESPEAK_VOICES:
        (folder / voice).mkdir(parents=True, exist_ok=True)
        for word in DIGITS:
            out = folder / voice / f"{word}.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-w", str(out), word], check=True,
                           capture_output=True)  # fmt: skip
    return folder


def other_corpora(root: Path, train_dir: Path, test_dir: Path, seed: int, cache: Path) -> None:
    bundle = train_model(train_dir, root / "model-all", seed, cache)
    threshold = softmax_threshold(bundle, validation_rows(bundle, train_dir, cache))
    known_rows, _ = rows_of(test_dir, bundle, cache)
    known = score(bundle, known_rows, threshold)
    full, cut = librispeech_folders(root)
    header()
    folders = [("LibriSpeech-mini, full sentences", full), ("LibriSpeech-mini, 1 s pieces", cut)]
    synthetic = espeak_folder(root)
    if synthetic is not None:
        folders.append((f"espeak-ng, {len(ESPEAK_VOICES)} voices x 10 digits", synthetic))
    for name, folder in folders:
        rows, _ = rows_of(folder, bundle, cache)
        for line in protocol_row(name, known, score(bundle, rows, threshold)):
            print(line)


# a clip's columns in the open set's view: the histogram, the classic network's hidden units, the
# band spread and the cepstral correlations, as training makes them
VIEW_COLUMNS = derived_feature_config(None, None).row_width + CLASSIC_HIDDEN


def decision_cost() -> None:
    """Microseconds for one clip's distance, median of 2,000, at several layouts."""
    rng = np.random.default_rng(0)
    print(f"({VIEW_COLUMNS} numbers a row: {len(BAND_SPREAD) + 1} of each band, the hidden "
          f"units and {CEPSTRA * (CEPSTRA - 1) // 2} cepstral correlations)")  # fmt: skip
    print(f"{'reference rows':>15} | {'speakers':>8} | {'rows a speaker':>14} | {'us a clip':>9}")
    print(f"(training keeps at most {MAX_REFERENCES_PER_SPEAKER} rows a speaker; the first two "
          "layouts go past that to show the worst case)")  # fmt: skip
    for speakers, per in ((1, 10_000), (2, 5000), (6, 1000), (100, 100), (10_000, 1), (5_000, 200)):
        open_set = random_open_set(rng, speakers, per)
        clips = rng.standard_normal((2000, VIEW_COLUMNS))
        who = rng.integers(speakers, size=2000)
        us = median_us(open_set.distance, clips, who)
        print(f"{speakers * per:>15,} | {speakers:>8,} | {per:>14,} | {us:9.1f}")
    noisy = random_open_set(rng, 6, 1000, room=False)  # matched references make no room
    matched = random_open_set(rng, 6, 1000, {"noisy": noisy})
    clips, who = rng.standard_normal((2000, VIEW_COLUMNS)), rng.integers(6, size=2000)
    for condition in ("clean", "noisy"):
        us = median_us(functools.partial(matched.judge, condition=condition), clips, who)
        print(f"a clip that resembles a {condition} recording, 6 speakers, 1,000 rows a speaker "
              f"(and as many matched): {us:.1f} us (goal <= 100)")  # fmt: skip


def random_open_set(
    rng: np.random.Generator,
    speakers: int,
    per: int,
    matched: dict[str, OpenSet] | None = None,
    room: bool = True,
) -> OpenSet:
    """Random rows in the view's layout; with ``room``, room for noise along a random direction,
    as training gives the clean references."""
    rows = rng.standard_normal((speakers * per, VIEW_COLUMNS)).astype(np.float32)
    direction = rng.standard_normal(VIEW_COLUMNS)
    nuisance = Nuisance(direction / np.linalg.norm(direction), 4.0) if room else None
    return OpenSet(rows, np.arange(speakers + 1, dtype=np.int64) * per, 1.0, None, matched or {},
                   nuisance=nuisance)  # fmt: skip


def median_us(
    judge: Callable[[np.ndarray, int], object], clips: np.ndarray, who: np.ndarray
) -> float:
    """Median microseconds of ``judge(clip, speaker)`` over ``clips`` and their ``who``."""
    times = []
    for z, s in zip(clips, who, strict=True):
        started = time.perf_counter()
        judge(z, int(s))
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pairs", type=int, default=15, help="leave-2-out pairs (of 15)")
    parser.add_argument("--cost-only", action="store_true", help="only the decision's cost")
    args = parser.parse_args()
    print("Decision cost (numpy, one clip against its predicted speaker's rows)")
    decision_cost()
    if args.cost_only:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        train_dir, test_dir = split_by_take(fsdd_dir(), root / "fsdd")
        cache = root / "cache"
        print(
            f"Open set, seed {args.seed}; known clips are FSDD takes 5-14 of the model's speakers"
        )
        print("1. FSDD, leave two speakers out")
        leave_two_out(root, train_dir, test_dir, args.seed, args.pairs, cache)
        print("2-3. Strangers from other corpora against a 6-speaker FSDD model")
        other_corpora(root, train_dir, test_dir, args.seed, cache)
    return 0


if __name__ == "__main__":
    sys.exit(main())
