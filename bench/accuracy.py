"""Speaker accuracy of the 60-6-6 network on held-out FSDD takes, over 3 seeds.

Trains on takes 15-49 and tests on takes 5-14 of ../shared/data/fsdd (VOICEID_DATA overrides the
data root). Prints each seed's held-out accuracy, the median and the spread.

    python -m bench.accuracy [--seeds 0 1 2] [any `voiceid train` training option but --seed]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.common import fsdd_dir, split_by_take
from pipeline.config import TrainConfig
from pipeline.train import TrainOptions, train
from voiceid.options import add_options, from_options


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    add_options(parser, TrainConfig, skip=("seed",))
    args = parser.parse_args()
    base = from_options(TrainConfig, args, skip=("seed",))
    accuracies = []
    with tempfile.TemporaryDirectory() as tmp:
        train_dir, test_dir = split_by_take(fsdd_dir(), Path(tmp) / "fsdd")
        cache = Path(tmp) / "cache"
        settings = ", ".join(
            f"{f.name}={getattr(base, f.name)}"
            for f in dataclasses.fields(base)
            if f.name != "seed"
        )
        print(f"FSDD held-out takes 5-14; {settings}")
        for seed in args.seeds:
            cfg = dataclasses.replace(base, seed=seed)
            started = time.perf_counter()
            report = train(train_dir, Path(tmp) / f"model-{seed}",
                           TrainOptions(train=cfg, cache_dir=cache, test_dir=test_dir))  # fmt: skip
            acc = report["metrics"]["test_accuracy"]
            accuracies.append(acc)
            print(
                f"seed {seed}: held-out accuracy {acc:.4f} on {report['test']['n']} clips "
                f"(validation {report['metrics']['val_accuracy']:.4f}, "
                f"{report['epochs_run']} epochs, {time.perf_counter() - started:.1f} s)"
            )
    spread = (max(accuracies) - min(accuracies)) * 100
    median = statistics.median(accuracies)
    print(f"median {median:.4f}  spread {spread:.2f} points  (goal: >= 0.98, spread <= 2)")
    return 0 if median >= 0.98 and spread <= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
