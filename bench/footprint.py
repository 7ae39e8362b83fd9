"""What a serving worker costs: time from process start to /ready, and each worker's memory.

Starts ``voiceid serve --workers N`` on loopback, polls /ready every 10 ms from the moment the
process is started, reads the CPU time its processes used to get there (which, unlike the wall
time, a busy machine does not inflate), sends ``--requests`` clips per worker over 8 keep-alive
connections, then reads each worker's resident memory and which libraries of the training stack
it has mapped (none should be: serving imports neither librosa, numba, TensorFlow nor
matplotlib).

    python -m bench.footprint [--workers 2] [--requests 200] [--voiceid PATH] [--cwd DIR]

``--voiceid`` and ``--cwd`` run another checkout's command (e.g. main's, for a before/after).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.serve import free_port, one_second_clip, rss_mb

ROOT = Path(__file__).resolve().parents[1]
CONNECTIONS = 8
TRAINING_LIBRARIES = ("numba", "llvmlite", "tensorflow", "matplotlib", "librosa")


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


def mapped_training_libraries(pid: int) -> list[str]:
    lines = Path(f"/proc/{pid}/maps").read_text().splitlines()
    paths = {line.split()[-1] for line in lines}
    return sorted({lib for p in paths for lib in TRAINING_LIBRARIES if f"/{lib}" in p})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--requests", type=int, default=200, help="clips per worker")
    parser.add_argument("--voiceid", default=str(Path(sys.executable).with_name("voiceid")))
    parser.add_argument("--cwd", type=Path, default=ROOT, help="where models/default is")
    args = parser.parse_args()
    port = free_port()
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
                status = Path(f"/proc/{pid}/status").read_text()
                rss = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]
                print(f"worker {pid}: RSS {rss:.1f} MB, training stack mapped: {libs or 'none'}")
            print(f"all processes (the parent included): {rss_mb(proc.pid):.1f} MB")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
