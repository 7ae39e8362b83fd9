"""What a serving worker costs: time from process start to /ready, and each worker's memory.

Starts ``voiceid serve --workers N`` on loopback, polls /ready every 10 ms from the moment the
process is started, reads the CPU time its processes used to get there (which, unlike the wall
time, a busy machine does not inflate), sends ``--requests`` clips per worker over 8 keep-alive
connections, then reads each worker's resident memory and which libraries of the training stack
it has mapped (none should be: serving imports neither librosa, numba, TensorFlow nor
matplotlib). Last it posts a batch of ``--batch-mb`` MB of WAV files (48 kHz voiced buzzes of
at most 5 MB, under the per-clip limits), one of them to ``/predict`` and then all as one
``/predict/batch``, and reads how far the answering worker's peak resident memory rose above
its memory just before each: the batch's rise beyond the one clip's is what holding its body
costs, about 1x the body.

    python -m bench.footprint [--workers 2] [--requests 200] [--batch-mb 45] [--voiceid PATH]
                              [--cwd DIR] [--port N]

``--voiceid`` and ``--cwd`` run another checkout's command (e.g. main's, for a before/after);
``voiceid`` imports the code on ``PYTHONPATH`` if one is set.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.serve import free_port, one_second_clip, rss_mb
from service.inference import synthetic_clip
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
CONNECTIONS = 8
TRAINING_LIBRARIES = ("numba", "llvmlite", "tensorflow", "matplotlib", "librosa")
BATCH_RATE = 48_000  # Hz, of the batch's 16-bit mono clips
BATCH_CLIP_BYTES = 5_000_000  # at most, per clip: under both per-clip limits by default


def wait_ready(url: str, proc: subprocess.Popen[bytes], started: float) -> float:
    """Seconds from ``started`` to the first /ready 200."""
    while time.monotonic() - started < 120:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.01)
    raise SystemExit("server not ready after 120 s")


def wait_workers(log: Path, workers: int, started: float) -> tuple[float, list[int]]:
    """Seconds from ``started`` until every worker has logged its start-up, and their pids."""
    while time.monotonic() - started < 120:
        text = log.read_text(errors="replace")
        if text.count("Application startup complete.") >= workers:
            pids = [int(p) for p in re.findall(r"Started server process \[(\d+)\]", text)]
            return time.monotonic() - started, pids
        time.sleep(0.01)
    raise SystemExit(f"not all {workers} workers started:\n{log.read_text()}")


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the processes ``pids`` have used so far: their start-up's cost,
    which unlike its wall time does not grow with other work on a busy machine."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def send(url: str, clip: bytes, n: int) -> int:
    ok = 0
    with httpx.Client(timeout=30) as client:
        for _ in range(n):
            files = {"file": ("clip.wav", clip, "audio/wav")}
            ok += client.post(f"{url}/predict", files=files).status_code == 200
    return ok


def batch_of(megabytes: float) -> list[tuple[str, bytes]]:
    """WAV files of ``megabytes`` MB in all, each at most ``BATCH_CLIP_BYTES``."""
    total = round(megabytes * 1e6)
    count = -(-total // BATCH_CLIP_BYTES)
    seconds = total / count / (2 * BATCH_RATE)
    defaults = Settings()
    if seconds > defaults.max_clip_seconds or count > defaults.batch_max_files:
        raise SystemExit(f"a batch of {megabytes:g} MB does not fit the default limits")
    clip = synthetic_clip(BATCH_RATE, seconds)
    return [(f"clip{i}.wav", clip) for i in range(count)]


def peak_rise_mb(pids: list[int], post: Callable[[], httpx.Response]) -> float:
    """How far the highest resident memory of any of ``pids`` rose during ``post()`` above
    that process's memory just before, in MB; the one that answered is the one that rose."""
    before = {pid: _memory_kb(pid, "VmRSS") for pid in pids}
    for pid in pids:  # "5" resets the peak (VmHWM) to the current resident memory
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    response = post()
    if not response.is_success or not all(r["ok"] for r in response.json().get("results", [])):
        raise SystemExit(f"not answered: {response.status_code} {response.text[:500]}")
    return max(_memory_kb(pid, "VmHWM") - before[pid] for pid in pids) * 1024 / 1e6


def _memory_kb(pid: int, field: str) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]


def batch_peaks(url: str, pids: list[int], megabytes: float) -> None:
    """Post one of the batch's clips to /predict, then the batch of ``megabytes`` MB, and print
    how far the workers' peak memory rose for each: the batch's rise beyond the one clip's is
    what holding the batch costs, about 1x its body."""
    parts = [("files", file) for file in batch_of(megabytes)]
    body_mb = len(httpx.Request("POST", url, files=parts).read()) / 1e6
    with httpx.Client(base_url=url, timeout=600) as client:
        clip = peak_rise_mb(pids, lambda: client.post("/predict", files={"file": parts[0][1]}))
        batch = peak_rise_mb(pids, lambda: client.post("/predict/batch", files=parts))
    print(f"peak memory above the worker's before: {clip:.1f} MB for one "
          f"{len(parts[0][1][1]) / 1e6:.1f} MB clip on /predict, {batch:.1f} MB for a batch of "
          f"{len(parts)} of them ({body_mb:.1f} MB): {batch - clip:.1f} MB more, "
          f"{(batch - clip) / body_mb:.2f}x the batch's body")  # fmt: skip


def mapped_training_libraries(pid: int) -> list[str]:
    lines = Path(f"/proc/{pid}/maps").read_text().splitlines()
    paths = {line.split()[-1] for line in lines}
    return sorted({lib for p in paths for lib in TRAINING_LIBRARIES if f"/{lib}" in p})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--requests", type=int, default=200, help="clips per worker")
    parser.add_argument("--batch-mb", type=float, default=45.0,
                        help="size of the /predict/batch body sent last (0: none)")  # fmt: skip
    parser.add_argument("--voiceid", default=str(Path(sys.executable).with_name("voiceid")))
    parser.add_argument("--cwd", type=Path, default=ROOT, help="where models/default is")
    parser.add_argument("--port", type=int, default=0, help="to serve on (0: any free one)")
    args = parser.parse_args()
    port = args.port or free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [args.voiceid, "serve", "--model", "models/default", "--port", str(port),
           "--workers", str(args.workers)]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        with log.open("wb") as out:
            started = time.monotonic()
            proc = subprocess.Popen(cmd, cwd=args.cwd, stdout=out, stderr=subprocess.STDOUT)
        try:
            first_ready = wait_ready(url, proc, started)
            all_ready, pids = wait_workers(log, args.workers, started)
            start_cpu = cpu_seconds([proc.pid, *pids])
            clip = one_second_clip()
            total = args.requests * args.workers
            with ThreadPoolExecutor(CONNECTIONS) as pool:
                ok = sum(pool.map(send, [url] * CONNECTIONS, [clip] * CONNECTIONS,
                                  [total // CONNECTIONS] * CONNECTIONS))  # fmt: skip
            print(f"{args.voiceid} serve --workers {args.workers}")
            print(f"start to first /ready 200: {first_ready:.2f} s; "
                  f"to every worker started: {all_ready:.2f} s; "
                  f"CPU time used by then: {start_cpu:.2f} s")  # fmt: skip
            print(f"answered {ok} of {total // CONNECTIONS * CONNECTIONS} clips")
            for pid in pids:
                libs = mapped_training_libraries(pid)
                rss = _memory_kb(pid, "VmRSS") / 1024
                print(f"worker {pid}: RSS {rss:.1f} MB, training stack mapped: {libs or 'none'}")
            every = sum(rss_mb(pid) for pid in [proc.pid, *pids])
            print(f"all processes (the parent included): {every:.1f} MB")
            if args.batch_mb > 0:
                batch_peaks(url, pids, args.batch_mb)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
