"""Teaching a live server a new voice: how long until it names it, how well, and what a swap
costs the requests around it.

Each scenario starts ``voiceid serve --model models/default --workers 2`` on an empty speaker
store, posts 12 clips of a new voice to ``/speakers/{name}/clips`` and ``POST /train``, then
posts 8 fresh clips of that voice to ``/predict/batch`` every 0.1 s until one is named: the time
from ``POST /train`` to that answer is the figure (TensorFlow's start-up included). Then: how many
of the 8 fresh clips are named, how many of 20 clips of voices it was not taught are named as it
(strangers: the demo's stranger, four other espeak-ng voices, or the five other FSDD speakers,
four clips each, saying the same words), how many of 20 fresh clips each of Steve and David,
and, once the first version is activated again, how many of the 8 are still named, and how many
unknown (rollback).

New voices: a synthetic one (pipeline.demo.synth), an espeak-ng voice saying "hello" at varied
speeds and pitches, and each real FSDD speaker in turn (8 kHz recordings, takes 5-16 taught and
20-27 fresh): first all saying "zero", then each take a different digit, so each set holds most of
the ten words (skipped without the shared data). Then a bounded load test: 4 clients post a Steve
clip back to back while a new version trains, goes live and is rolled back; every answer must be
a 200. Last, 100 synthetic speakers x 20 clips are posted and trained, first with no features
cached, then again with one more speaker added, when only that speaker's clips are decoded.

    python -m bench.enrol [--skip-large] [--speakers 100] [--clips 20]
"""

from __future__ import annotations

import argparse
import io
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

from bench.common import DATA_ROOT
from pipeline.demo.synth import STRANGER, VOICES, VoiceSpec, synthesize_hello

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "default"
SR = 16_000
TEACH, FRESH, KNOWN, STRANGERS = 12, 8, 20, 20
ALICE = VoiceSpec("Alice", pitch_hz=210.0, formant_scale=1.2, tilt=10.0, breathiness=0.1)
ESPEAK_VOICE = "en+f4"
ESPEAK_STRANGERS = ("en+m3", "en+f2", "en-us+m1", "en+f3")  # 5 clips each
LOAD_CLIENTS = 4


def wav_bytes(y: np.ndarray, sr: int = SR) -> bytes:
    out = io.BytesIO()
    sf.write(out, y, sr, format="WAV", subtype="PCM_16")
    return out.getvalue()


def synthetic(voice: VoiceSpec, n: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [wav_bytes(synthesize_hello(voice, rng)) for _ in range(n)]


def espeak(n: int, offset: int, tmp: Path, voice: str = ESPEAK_VOICE) -> list[bytes]:
    clips = []
    for k in range(offset, offset + n):
        out = tmp / f"espeak-{voice}-{k}.wav"
        speed, pitch = 140 + 7 * (k % 9), 35 + 3 * (k % 11)
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch),
                        "-w", str(out), "hello"], check=True, capture_output=True)  # fmt: skip
        clips.append(out.read_bytes())
    return clips


def fsdd_speakers() -> list[str]:
    folder = DATA_ROOT / "fsdd"
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def fsdd(speaker: str, takes: range, digit: int | None = None) -> list[bytes]:
    """Take ``t`` of ``digit`` for each take, or of digit ``t % 10``: one word a clip, the same
    in teaching and in the fresh clips (as everyone says "Hello" on the page), or all ten."""
    folder = DATA_ROOT / "fsdd" / speaker
    return [(folder / f"{t % 10 if digit is None else digit}_{speaker}_{t}.wav").read_bytes()
            for t in takes]  # fmt: skip


@contextmanager
def server(data_dir: Path, log: Path) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "voiceid", "serve", "--model", str(MODEL), "--port",
               str(port), "--workers", "2", "--data-dir", str(data_dir)]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            raise SystemExit(f"server not ready:\n{log.read_text()}")
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def post_clips(client: httpx.Client, name: str, clips: list[bytes]) -> None:
    for start in range(0, len(clips), 20):
        files = [("files", (f"{start + i}.wav", c, "audio/wav"))
                 for i, c in enumerate(clips[start : start + 20])]  # fmt: skip
        answer = client.post(f"/speakers/{name}/clips", files=files)
        if answer.status_code != 200 or answer.json()["refused"]:
            raise SystemExit(f"enrolling {name}: {answer.status_code} {answer.text[:300]}")


def names(client: httpx.Client, clips: list[bytes]) -> list[str]:
    files = [("files", (f"{i}.wav", c, "audio/wav")) for i, c in enumerate(clips)]
    items = client.post("/predict/batch", files=files).json()["results"]
    return [item["result"]["speaker"] if item["ok"] else "error" for item in items]


def wait_done(client: httpx.Client, job: str, timeout: float = 600) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status: dict[str, object] = client.get(f"/train/{job}").json()
        if status["state"] in ("done", "failed"):
            return status
        time.sleep(0.1)
    raise SystemExit(f"job {job} not finished after {timeout} s")


def teach_and_time(client: httpx.Client, name: str, fresh: list[bytes]) -> tuple[float, float]:
    """Seconds from POST /train to the first fresh clip named ``name``, and to the job's done."""
    started = time.monotonic()
    job = client.post("/train").json()["job"]
    named_at = None
    while named_at is None and time.monotonic() - started < 120:
        if name in names(client, fresh):
            named_at = time.monotonic() - started
        else:
            time.sleep(0.1)
    status = wait_done(client, job)
    if status["state"] != "done":
        raise SystemExit(f"training failed: {status['detail']}")
    return named_at if named_at is not None else float("nan"), time.monotonic() - started


def scenario(
    label: str, name: str, teach: list[bytes], fresh: list[bytes], strangers: list[bytes], tmp: Path
) -> None:
    known = {v: synthetic(VOICES[v], KNOWN, seed=9) for v in ("Steve", "David")}
    # a store of its own: the same speaker taught "zero" before must not lend it those takes
    store = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=tmp))
    with (
        server(store, store.with_suffix(".log")) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        post_clips(client, name, teach)
        named_s, done_s = teach_and_time(client, name, fresh)
        after = names(client, fresh).count(name)
        intruders = names(client, strangers).count(name)
        kept = {v: names(client, clips).count(v) for v, clips in known.items()}
        first = client.get("/models").json()["versions"][0]["version"]
        client.post(f"/models/{first}/activate").raise_for_status()
        rolled_back = names(client, fresh)
    print(
        f"{label:>28} | {named_s:8.2f} | {done_s:7.2f} | {after}/{FRESH}   "
        f"| {intruders:>2}/{len(strangers)}     "
        f"| {kept['Steve']}/{KNOWN} {kept['David']}/{KNOWN} | {rolled_back.count(name)}/{FRESH} "
        f"named, {rolled_back.count('unknown')}/{FRESH} unknown"
    )


def load_during_swap(tmp: Path) -> None:
    teach, fresh = synthetic(ALICE, TEACH, seed=5), synthetic(ALICE, FRESH, seed=9)
    steve = synthetic(VOICES["Steve"], 1, seed=9)[0]
    statuses: Counter[str] = Counter()
    stop = threading.Event()

    def load(url: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as c:
            while not stop.is_set():
                try:
                    r = c.post("/predict", files={"file": ("s.wav", steve, "audio/wav")})
                    statuses[str(r.status_code)] += 1
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1

    with (
        server(tmp / "load-store", tmp / "load.log") as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        post_clips(client, "Alice", teach)
        threads = [threading.Thread(target=load, args=(url,)) for _ in range(LOAD_CLIENTS)]
        for t in threads:
            t.start()
        started = time.monotonic()
        named_s, _ = teach_and_time(client, "Alice", fresh)
        first = client.get("/models").json()["versions"][0]["version"]
        client.post(f"/models/{first}/activate").raise_for_status()
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join()
        took = time.monotonic() - started
    total = sum(statuses.values())
    failed = total - statuses["200"]
    print(f"{LOAD_CLIENTS} clients posting Steve for {took:.1f} s across training, the swap and "
          f"the rollback: {total} requests, {failed} not 200 {dict(statuses)}; Alice named "
          f"{named_s:.2f} s after POST /train under this load")  # fmt: skip


def random_voices(n: int) -> list[VoiceSpec]:
    rng = np.random.default_rng(42)
    return [
        VoiceSpec(
            f"v{i:03d}",
            pitch_hz=float(rng.uniform(80, 300)),
            formant_scale=float(rng.uniform(0.8, 1.3)),
            tilt=float(rng.uniform(2, 25)),
            breathiness=float(rng.uniform(0.02, 0.4)),
        )
        for i in range(n)
    ]


def large(tmp: Path, speakers: int, clips: int) -> None:
    voices = random_voices(speakers + 1)
    with (
        server(tmp / "large-store", tmp / "large.log") as url,
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        started = time.monotonic()
        for k, voice in enumerate(voices[:speakers]):
            post_clips(client, voice.name, synthetic(voice, clips, seed=k))
        posted = time.monotonic() - started
        timings = []
        for extra in (False, True):
            if extra:
                post_clips(client, voices[-1].name, synthetic(voices[-1], TEACH, seed=1000))
            t0 = time.monotonic()
            status = wait_done(client, client.post("/train").json()["job"])
            if status["state"] != "done":
                raise SystemExit(f"training failed: {status['detail']}")
            timings.append(time.monotonic() - t0)
        sample = voices[: min(20, speakers)]
        right = sum(
            names(client, synthetic(v, 2, seed=5000 + k)).count(v.name)
            for k, v in enumerate(sample)
        )  # fmt: skip
    print(f"{speakers} speakers x {clips} clips posted in {posted:.1f} s; POST /train to done: "
          f"{timings[0]:.1f} s with no features cached, {timings[1]:.1f} s with them cached and "
          f"one more speaker of {TEACH} clips; {right}/{2 * len(sample)} fresh clips of "
          f"{len(sample)} of the speakers named right")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-large", action="store_true", help="skip 100 speakers x 20 clips")
    parser.add_argument("--speakers", type=int, default=100)
    parser.add_argument("--clips", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        print(f"{'new voice':>28} | named, s | done, s | fresh | strangers | Steve David | "
              "after rollback")  # fmt: skip
        scenario("synthetic (demo synth)", "Alice", synthetic(ALICE, TEACH, 5),
                 synthetic(ALICE, FRESH, 9), synthetic(STRANGER, STRANGERS, 13), tmp)  # fmt: skip
        if shutil.which("espeak-ng"):
            others = [c for v in ESPEAK_STRANGERS
                      for c in espeak(STRANGERS // len(ESPEAK_STRANGERS), 0, tmp, v)]  # fmt: skip
            scenario(f"espeak-ng {ESPEAK_VOICE}", "Espeak", espeak(TEACH, 0, tmp),
                     espeak(FRESH, TEACH, tmp), others, tmp)  # fmt: skip
        speakers = fsdd_speakers()  # the shared FSDD has takes 5-49
        for digit, words in ((0, "'zero'"), (None, "digits")):
            for speaker in speakers:
                teach = fsdd(speaker, range(5, 5 + TEACH), digit)
                fresh = fsdd(speaker, range(20, 20 + FRESH), digit)
                others = [c for o in speakers if o != speaker
                          for c in fsdd(o, range(42, 42 + STRANGERS // 5), digit)]  # fmt: skip
                scenario(f"FSDD {speaker}, {words}", speaker.title(), teach, fresh, others, tmp)
        load_during_swap(tmp)
        if not args.skip_large:
            large(tmp, args.speakers, args.clips)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
