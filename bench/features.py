"""Feature extraction speed over all of FSDD: our extraction against a naive librosa loop.

Ours: ``pipeline.dataset.extract_features`` (decode, resample to 16 kHz, 60-band histogram) with
one process per core and no cache, at the feature config training would pick for this data.
Baseline: a sequential loop of ``librosa.load(path)`` and
``librosa.feature.melspectrogram(y=y, sr=sr)`` over the same files, in the same run. The baseline
runs with one BLAS thread, as ours does: left alone, BLAS threads spinning on the mel product
slow it down several times over, and the ratio would then measure that rather than the pipeline.

Each side runs once cold (imports, and for ours starting the worker processes) and then
``--repeats`` times warm; the warm figures are the best run. Ours also runs in one process, which
separates the per-clip gain from the parallel one (on a busy machine, the cores are not free).
Prints clips/s, times real time (seconds of audio per second of wall time) and the ratio; exits 1
below the goal of 4x warm.

    python -m bench.features [--jobs N] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import librosa
import soundfile as sf
from threadpoolctl import threadpool_limits

from bench.common import fsdd_dir
from pipeline.dataset import Recording, extract_features, scan_folder
from pipeline.train import feature_config_for

GOAL_RATIO = 4.0  # warm speed-up over the naive loop


def naive_loop(paths: list[Path]) -> None:
    """What a first script does: librosa's defaults (22.05 kHz, 128 mel bands), one by one."""
    with threadpool_limits(limits=1, user_api="blas"):
        for path in paths:
            y, sr = librosa.load(path)
            librosa.feature.melspectrogram(y=y, sr=sr)


def timed(run: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Seconds of the first (cold) run and of the best of ``repeats`` further (warm) runs."""
    started = time.perf_counter()
    run()
    cold = time.perf_counter() - started
    warm = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        warm.append(time.perf_counter() - started)
    return cold, min(warm)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=2, help="warm runs per side (best kept)")
    args = parser.parse_args()

    recordings: list[Recording] = scan_folder(fsdd_dir())
    paths = [r.path for r in recordings]
    audio_s = sum(sf.info(str(p)).duration for p in paths)
    cfg = feature_config_for(recordings, None)

    skipped: list[int] = []

    def ours(jobs: int) -> None:
        skipped.append(len(extract_features(recordings, cfg, jobs=jobs).skipped))

    print(
        f"FSDD: {len(paths)} clips, {audio_s:.0f} s of audio, feature fmax {cfg.fmax:g} Hz; "
        f"best of {args.repeats} warm runs"
    )
    ours_s = timed(lambda: ours(args.jobs), args.repeats)
    print(f"ours refused {skipped[0]} clips as unusable (decoded all the same)")
    naive_s = timed(lambda: naive_loop(paths), args.repeats)
    # Measured last: its first run would otherwise import librosa for the baseline's cold run.
    _, ours_one_s = timed(lambda: ours(1), args.repeats)
    rows = [
        (f"ours, {args.jobs} processes", ours_s),
        ("librosa load+melspectrogram", naive_s),
        ("ours, 1 process", (None, ours_one_s)),
    ]
    for name, seconds in rows:
        for label, s in zip(("cold", "warm"), seconds, strict=True):
            if s is not None:
                print(
                    f"{name:>28} {label}: {s:6.2f} s  {len(paths) / s:7.0f} clips/s  "
                    f"{audio_s / s:6.0f}x real time"
                )
    warm_ratio = naive_s[1] / ours_s[1]
    print(
        f"ratio: {warm_ratio:.1f}x warm, {naive_s[0] / ours_s[0]:.1f}x cold "
        f"({naive_s[1] / ours_one_s:.1f}x warm in 1 process)  (goal: >= {GOAL_RATIO:g}x warm)"
    )
    return 0 if warm_ratio >= GOAL_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
