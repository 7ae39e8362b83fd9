"""Serving compute per clip, side by side with another checkout: the goal of "within +15 %".

The work a ``/predict`` request (and each file of ``/predict/batch``) exists for is
``pipeline.predict.predict_clip``: decode the WAV, features, recording quality where the code has
it, forward pass and decision. This times it, as ``bench.serve``'s compute-only limit does (CPU
time of the calling thread, BLAS at one thread, median of ``--repeats``), for this checkout and
for ``--against`` (a git worktree of the code before a change, ``git worktree add ../before
HEAD~3``), each with its own shipped model, on three WAVs: 1 s at 16 kHz (``bench.serve``'s
clip), 1 s at 8 kHz and 3 s at 16 kHz.

Each checkout runs in a process of its own that imports only that checkout's code; the two take
turns clip by clip and round by round, so that a change in the machine's load falls on both.
Prints each clip's median milliseconds and the median over rounds of the per-round ratio, and
exits 1 when a ratio is over the goal (+15 %).

    python -m bench.compute --against ../serve-base [--rounds 30] [--repeats 50]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_RATIO = 1.15  # compute per clip over the other checkout's
CLIPS = ((16_000, 1.0), (8_000, 1.0), (16_000, 3.0))  # (sample rate Hz, seconds) of each WAV
WARM_UP = 30  # untimed calls per clip and round: caches and lazily built arrays


def clip_wav(sample_rate: int, seconds: float) -> bytes:
    """A 16-bit WAV of ``seconds`` at ``sample_rate``: Steve saying "Hello" once a second, the
    first second ``bench.serve.one_second_clip``'s."""
    import numpy as np
    import soundfile as sf

    from pipeline.demo.synth import VOICES, synthesize_hello

    rng = np.random.default_rng(123)
    parts = []
    for _ in range(round(seconds)):
        hello = synthesize_hello(VOICES["Steve"], rng, sample_rate)[:sample_rate]
        parts.append(np.pad(hello, (0, sample_rate - len(hello))))
    buf = io.BytesIO()
    sf.write(buf, np.concatenate(parts), sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def serve_timings(model: Path) -> None:
    """The worker: read "<wav path> <repeats>" lines, answer each with the JSON median CPU
    seconds of ``predict_clip`` on that file's bytes and the page faults per call. Imports only
    the checkout on the path, whose ``predict_clip`` must exist there (it has since the first
    version)."""
    import resource
    import time

    from threadpoolctl import threadpool_limits

    from pipeline.bundle import load_bundle
    from pipeline.predict import predict_clip

    bundle = load_bundle(model)
    with threadpool_limits(limits=1, user_api="blas"):
        for line in sys.stdin:
            path, repeats = line.split()
            data = Path(path).read_bytes()
            for _ in range(WARM_UP):
                predict_clip(bundle, data)
            times = []
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for _ in range(int(repeats)):
                started = time.thread_time()
                predict_clip(bundle, data)
                times.append(time.thread_time() - started)
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
            print(json.dumps([statistics.median(times), faults / int(repeats)]), flush=True)


class Worker:
    """One checkout's timing process (this file run with only that checkout importable)."""

    def __init__(self, root: Path, model: Path) -> None:
        self.root = root
        self.faults: dict[Path, list[float]] = {}  # minor page faults per call, per WAV
        env = os.environ | {"PYTHONPATH": str(root), "TF_CPP_MIN_LOG_LEVEL": "3"}
        # -P: this file's own folder is not put on the path; only ``root``'s code is imported.
        self.proc = subprocess.Popen(
            [sys.executable, "-P", __file__, "--worker", "--model", str(model)],
            cwd=root, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    def median_s(self, wav: Path, repeats: int) -> float:
        """The median CPU seconds of ``repeats`` calls on ``wav``; their page faults per call
        are added to ``faults``."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{wav} {repeats}\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise SystemExit(f"the timing process for {self.root} stopped")
        seconds, faults = json.loads(answer)
        self.faults.setdefault(wav, []).append(faults)
        return float(seconds)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def side_by_side(ours: Worker, theirs: Worker, wavs: list[Path], rounds: int,
                 repeats: int) -> list[tuple[list[float], list[float]]]:  # fmt: skip
    """Per WAV, our and their median seconds in each round, the two taking turns."""
    times: list[tuple[list[float], list[float]]] = [([], []) for _ in wavs]
    for turn in range(rounds):
        for wav, (our, their) in zip(wavs, times, strict=True):
            # Who goes first alternates, so that neither always follows the other's work.
            if turn % 2:
                their.append(theirs.median_s(wav, repeats))
            our.append(ours.median_s(wav, repeats))
            if not turn % 2:
                their.append(theirs.median_s(wav, repeats))
    return times


def report(times: list[tuple[list[float], list[float]]], faults: list[tuple[float, float]],
           against: Path) -> bool:  # fmt: skip
    """Print one line per clip; whether every ratio meets the goal."""
    met = True
    print(f"predict_clip CPU per clip, this checkout against {against} (each with its own "
          "models/default), median over rounds; ratio: median of the rounds' ratios; faults: "
          "minor page faults per call (memory the allocator gave back and took again)")  # fmt: skip
    for (rate, seconds), (our, their), (our_faults, their_faults) in zip(
        CLIPS, times, faults, strict=True
    ):
        ratio = statistics.median(a / b for a, b in zip(our, their, strict=True))
        met &= ratio <= GOAL_RATIO
        print(f"{seconds:g} s {rate / 1000:g} kHz WAV: {statistics.median(our) * 1e3:.3f} ms "
              f"against {statistics.median(their) * 1e3:.3f} ms: x{ratio:.3f} "
              f"(goal <= x{GOAL_RATIO:g}); faults {our_faults:.0f} against "
              f"{their_faults:.0f}")  # fmt: skip
    return met


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--against", type=Path, help="the checkout to compare with")
    parser.add_argument("--model", type=Path, default=Path("models/default"),
                        help="bundle, relative to each checkout")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=30, help="turns of each clip")
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per turn")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        serve_timings(args.model)
        return 0
    if args.against is None:
        parser.error("--against is needed: the checkout to compare with")
    with tempfile.TemporaryDirectory() as tmp:
        wavs = []
        for rate, seconds in CLIPS:
            wavs.append(Path(tmp) / f"{rate}-{seconds:g}.wav")
            wavs[-1].write_bytes(clip_wav(rate, seconds))
        ours, theirs = Worker(ROOT, args.model), Worker(args.against.resolve(), args.model)
        try:
            times = side_by_side(ours, theirs, wavs, args.rounds, args.repeats)
        finally:
            ours.close()
            theirs.close()
        faults = [(statistics.median(ours.faults[w]), statistics.median(theirs.faults[w]))
                  for w in wavs]  # fmt: skip
    return 0 if report(times, faults, args.against) else 1


if __name__ == "__main__":
    sys.exit(main())
