"""GET /speakers on a full store: how long the listing takes, with and without clip lengths
known to the process.

Builds a store of ``--speakers`` x ``--clips`` generated 1 s 16 kHz WAV clips (written as the
store writes them), then times ``GET /speakers`` and ``GET /speakers/{name}`` through the app:
first in a process that has never read the clips (each clip's length comes from its header),
then again once the lengths are known (each clip is only listed and stat'ed). The baseline is
the naive way, measured in the same run: reading every clip's header on every request.

    python -m bench.speakers [--speakers 100] [--clips 20] [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from fastapi.testclient import TestClient

from pipeline.speakers import NewClip, SpeakerStore, StoreLimits, clip_seconds
from service.app import create_app
from service.settings import Settings

SR = 16_000


def build_store(root: Path, speakers: int, clips: int) -> None:
    store = SpeakerStore(root, StoreLimits(max_speakers=speakers, max_clips_per_speaker=clips))
    rng = np.random.default_rng(0)
    for s in range(speakers):
        batch = []
        for _ in range(clips):
            path = root.parent / "clip.wav"
            sf.write(path, rng.uniform(-0.5, 0.5, SR).astype(np.float32), SR, subtype="PCM_16")
            batch.append(NewClip(path.read_bytes(), "wav", 1.0))
        store.add(f"speaker {s:03d}", batch)


def timed_ms(call: Callable[[], Any], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speakers", type=int, default=100)
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "speakers"
        build_store(root, args.speakers, args.clips)
        files = sorted(p for p in root.rglob("*.wav"))
        settings = Settings(data_dir=root, max_speakers=args.speakers)
        with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
            first = timed_ms(lambda: client.get("/speakers"), 1)[0]
            warm = timed_ms(lambda: client.get("/speakers"), args.repeat)
            one = timed_ms(lambda: client.get("/speakers/speaker 000"), args.repeat)
            answer = client.get("/speakers").json()
        naive = timed_ms(lambda: [clip_seconds(p) for p in files], 3)
    listed = sum(s["clips"] for s in answer["speakers"] if s["in_store"])
    print(f"store: {args.speakers} speakers x {args.clips} clips = {len(files)} files "
          f"({listed} listed)")  # fmt: skip
    print(f"GET /speakers, lengths unknown to the process: {first:.1f} ms")
    print(f"GET /speakers, lengths known: median {statistics.median(warm):.1f} ms, "
          f"max {max(warm):.1f} ms over {args.repeat}")  # fmt: skip
    print(f"GET /speakers/{{name}} ({args.clips} clips): median {statistics.median(one):.2f} ms")
    print(f"baseline, every clip's header read per request: median {statistics.median(naive):.1f} "
          f"ms; ratio {statistics.median(naive) / statistics.median(warm):.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
