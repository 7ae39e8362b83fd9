"""Feature-table throughput per core: the Ray engine against the local engine, and driver memory.

Corpus: ``--clips`` short clips (default 20,000; 0.3-1.2 s, 8 kHz 16-bit mono WAV like FSDD's)
from 20 generated "speakers" (harmonic tones with vibrato, a vowel-like spectral tilt and noise,
each speaker its own pitch), one clip in 100 silent so that skipped rows are part of the work.
Generated once, deterministically, under ``--corpus-dir`` and reused; a ``--small`` corpus
(default 5,000) is a subset of it by symlinks.

Each measurement runs in a fresh Python process, so that its memory is its own, with the
default table settings (clean rows and degraded copies, no cache) and ``--fmax 3800``, so both
engines do exactly the extraction work (no header pass):

- ``ray.init(num_cpus=jobs)`` timed on its own (start-up); one Ray run, which also starts the
  worker processes and their imports (cold); then local and Ray runs alternated ``--repeats``
  times (Ray's workers are then warm; each local run starts its own process pool, as every
  ``voiceid features`` run does).

Per-core throughput is clips/s divided by ``--jobs`` (the cores the workers get). The goal is
Ray at >= 70 % of local per core, not counting start-up: the best warm Ray run against the best
local run; exits 1 below it. Driver memory: the driver's peak resident set during one run in a
fresh process (sampled every 20 ms) and its growth over the run, at the small and the full
corpus; it must not grow with the corpus. Prints the machine's load average first: the cores
may be shared.

    python -m bench.ray_engine [--clips 20000] [--small 5000] [--jobs 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

GOAL = 0.70  # Ray's per-core throughput against the local engine's
SPEAKERS = 20
RATE = 8000  # Hz, FSDD's
FMAX = 3800.0  # what training derives for 8 kHz data
DEFAULT_CORPUS = Path(tempfile.gettempdir()) / "voiceid-bench-corpus"


def _clip(rng: np.random.Generator, f0: float, silent: bool) -> np.ndarray:
    seconds = rng.uniform(0.3, 1.2)
    t = np.arange(round(seconds * RATE)) / RATE
    if silent:
        return np.zeros(len(t), dtype=np.int16)
    pitch = f0 * (1 + 0.03 * np.sin(2 * np.pi * rng.uniform(3, 6) * t))  # vibrato
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    tilt = rng.uniform(0.6, 0.9)
    y = sum(tilt**k * np.sin(k * phase) for k in range(1, int(3800 / f0)))
    y = y + rng.normal(0, 0.02 * np.abs(y).max(), len(t))
    fade = np.minimum(1, np.minimum(t, t[-1] - t) / 0.03)
    return (0.5 * 32767 * y * fade / np.abs(y).max()).astype(np.int16)


def make_corpus(root: Path, clips: int) -> Path:
    """``root/speaker-NN/clip-NNNNN.wav``: ``clips`` clips over ``SPEAKERS`` speakers."""
    marker = root / f".complete-{clips}"
    if marker.exists():
        return root
    rng = np.random.default_rng(0)
    for i in range(clips):
        speaker = i % SPEAKERS
        path = root / f"speaker-{speaker:02d}" / f"clip-{i:05d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        samples = _clip(rng, 90 + 8 * speaker, silent=i % 100 == 99)
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes(samples.tobytes())
    marker.touch()
    return root


def subset(corpus: Path, root: Path, clips: int) -> Path:
    """The first ``clips`` clips of ``corpus`` (by index), symlinked under ``root``."""
    marker = root / f".complete-{clips}"
    if marker.exists():
        return root
    for path in sorted(corpus.glob("speaker-*/clip-*.wav")):
        if int(path.stem.split("-")[1]) < clips:
            link = root / path.parent.name / path.name
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(path)
    marker.touch()
    return root


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakRss:
    """The process's largest resident set while the block runs, sampled every 20 ms."""

    def __enter__(self) -> PeakRss:
        self.before = self.peak = _rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())


def _start_ray(jobs: int) -> float:
    """Start a Ray on this machine; the seconds it took."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started = time.perf_counter()
    ray.init(num_cpus=jobs, include_dashboard=False, logging_level=logging.WARNING)
    return time.perf_counter() - started


def _timed_run(engine: str, corpus: str, jobs: int, out: Path) -> dict[str, Any]:
    from pipeline.table import TableOptions, write_feature_table

    opts = TableOptions(engine=engine, jobs=jobs, fmax=FMAX)  # type: ignore[arg-type]
    with PeakRss() as rss:
        started = time.perf_counter()
        summary = write_feature_table(corpus, out, opts)
        seconds = time.perf_counter() - started
    return {"s": seconds, "rss_before": rss.before, "rss_peak": rss.peak,
            "files": summary.files, "skipped": len(summary.skipped)}  # fmt: skip


def child(mode: str, corpus: str, jobs: int, repeats: int) -> dict[str, Any]:
    """One process's measurements (run as ``--child``), printed as JSON.

    ``throughput``: Ray started, then local and Ray runs alternated ``repeats`` times (the load
    of a shared machine drifts; alternating spreads it evenly), plus one Ray run first (cold).
    ``local`` or ``ray``: one run, for the driver's memory.
    """
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "t.parquet"
        if mode == "local":
            return _timed_run("local", corpus, jobs, out)
        result["startup_s"] = _start_ray(jobs)
        if mode == "ray":
            return result | _timed_run("ray", corpus, jobs, out)
        result["cold"] = _timed_run("ray", corpus, jobs, out)
        for engine in ("local", "ray") * repeats:
            result.setdefault(engine, []).append(_timed_run(engine, corpus, jobs, out))
    return result


def measure(mode: str, corpus: Path, jobs: int, repeats: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.ray_engine", "--child", mode, str(corpus),
           "--jobs", str(jobs), "--repeats", str(repeats)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{mode} run failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _line(label: str, clips: int, seconds: float, jobs: int) -> float:
    per_core = clips / seconds / jobs
    print(f"{label:<34} {seconds:7.2f} s {clips / seconds:8.0f} clips/s {per_core:7.0f} /core")
    return per_core


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=20_000)
    parser.add_argument("--small", type=int, default=5_000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--corpus-dir", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "CORPUS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.jobs, args.repeats)))
        return

    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; jobs {args.jobs}")
    started = time.perf_counter()
    full = make_corpus(args.corpus_dir / "full", args.clips)
    small = subset(full, args.corpus_dir / f"first-{args.small}", args.small)
    print(f"corpus: {args.clips} clips in {full} ({time.perf_counter() - started:.1f} s)")

    runs = measure("throughput", full, args.jobs, args.repeats)
    n, skipped = runs["cold"]["files"], runs["cold"]["skipped"]
    print(f"\n{n} clips ({skipped} skipped), {args.jobs} cores, best of {args.repeats} "
          "alternated runs:")  # fmt: skip
    local = _line("local engine", n, min(r["s"] for r in runs["local"]), args.jobs)
    print(f"{'Ray start-up (ray.init)':<34} {runs['startup_s']:7.2f} s")
    cold = _line("Ray engine, first run (cold)", n, runs["cold"]["s"], args.jobs)
    warm = _line("Ray engine, later runs (warm)", n, min(r["s"] for r in runs["ray"]), args.jobs)
    print(f"Ray per core / local per core: warm {warm / local:.0%} (goal >= {GOAL:.0%}), "
          f"cold {cold / local:.0%}")  # fmt: skip

    print("\ndriver memory (one run in a fresh process):")
    for mode in ("local", "ray"):
        for corpus, clips in ((small, args.small), (full, args.clips)):
            r = measure(mode, corpus, args.jobs, 1)
            print(f"{mode:<6} {clips:>6} clips: peak {r['rss_peak']:5.0f} MB, "
                  f"{r['rss_peak'] - r['rss_before']:+4.0f} MB over the run")  # fmt: skip
    if warm / local < GOAL:
        sys.exit(1)


if __name__ == "__main__":
    main()
