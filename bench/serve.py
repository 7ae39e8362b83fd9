"""Serving speed: this server against a naive FastAPI + librosa.load + model.predict server.

Both serve the same bundle under uvicorn on loopback; wrk (Debian package ``wrk``) sends the same
1 s 16 kHz clip as multipart at concurrency 1, 8 and 32. Prints requests/s, p50 and p99 for both
and their ratios, then this server's RSS before and after 10,000 requests.

    python -m bench.serve [--model models/default] [--duration 5] [--workers 1]
"""

from __future__ import annotations

import argparse
import io
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline.demo.synth import VOICES, synthesize_hello

ROOT = Path(__file__).resolve().parents[1]
CONCURRENCY = (1, 8, 32)
RSS_REQUESTS = 10_000
BOUNDARY = "voiceidbenchboundary"
LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "multipart/form-data; boundary={boundary}"
local f = io.open("{body}", "rb")
wrk.body = f:read("*all")
f:close()
"""


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


def one_second_clip(sample_rate: int = 16_000) -> bytes:
    """A 1.000 s 16 kHz 16-bit WAV of Steve saying "Hello", padded with silence."""
    y = synthesize_hello(VOICES["Steve"], np.random.default_rng(123), sample_rate)[:sample_rate]
    y = np.pad(y, (0, sample_rate - len(y)))
    buf = io.BytesIO()
    sf.write(buf, y, sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def multipart(clip: bytes) -> bytes:
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"clip.wav\"\r\nContent-Type: audio/wav\r\n\r\n").encode()  # fmt: skip
    return head + clip + f"\r\n--{BOUNDARY}--\r\n".encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(app: str, port: int, model: Path, workers: int) -> subprocess.Popen[bytes]:
    env = os.environ | {"VOICEID_MODEL_DIR": str(model), "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers), "--log-level", "warning", "--no-access-log"]  # fmt: skip
    if app.endswith("app_from_env"):
        cmd.append("--factory")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/docs", timeout=1)
            return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"{app} did not start on port {port}")


def wrk(url: str, script: Path, connections: int, seconds: float) -> Run:
    out = subprocess.run(
        ["wrk", "-t", str(min(connections, 2)), "-c", str(connections),
         "-d", f"{math.ceil(seconds)}s",
         "--latency", "--timeout", "10s", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip

    def latency(pct: str) -> float:
        match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if match is None:
            raise SystemExit(f"cannot read the {pct}% latency from wrk:\n{out}")
        return float(match.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[match.group(2)]

    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return Run(rps, latency("50"), latency("99"), requests, int(errors.group(1)) if errors else 0)


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children (the uvicorn workers), MB."""
    pids = [pid, *map(int, subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                           text=True).stdout.split())]  # fmt: skip
    total = 0
    for p in pids:
        status = Path(f"/proc/{p}/status").read_text()
        total += int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]
    return total / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "default")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers, both servers")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/serve.py needs wrk: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        body, script = Path(tmp) / "body", Path(tmp) / "post.lua"
        body.write_bytes(multipart(one_second_clip()))
        script.write_text(LUA.format(boundary=BOUNDARY, body=body))
        results: dict[str, dict[int, Run]] = {}
        servers = {"voiceid": "service.main:app_from_env", "naive": "bench.naive_server:app"}
        for name, app in servers.items():
            port = free_port()
            proc = start(app, port, args.model.resolve(), args.workers)
            url = f"http://127.0.0.1:{port}/predict"
            try:
                wrk(url, script, 8, 1)  # warm-up
                results[name] = {}
                for c in CONCURRENCY:
                    results[name][c] = run = wrk(url, script, c, args.duration)
                    print(f"{name} c={c}: {run.rps:.1f} req/s, p50 {run.p50_ms:.2f} ms, "
                          f"p99 {run.p99_ms:.2f} ms", flush=True)  # fmt: skip
                if name == "voiceid":
                    rss = measure_rss(proc.pid, url, script, results[name][8].rps)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    report(results, rss, args.workers)
    return 0


def measure_rss(pid: int, url: str, script: Path, rps: float) -> tuple[float, float, int]:
    before = rss_mb(pid)
    seconds = max(2.0, 1.15 * RSS_REQUESTS / rps)
    run = wrk(url, script, 8, seconds)
    return before, rss_mb(pid), run.requests


def report(results: dict[str, dict[int, Run]], rss: tuple[float, float, int], workers: int) -> None:
    print(f"1 s 16 kHz WAV as multipart, uvicorn with {workers} worker(s) each, wrk on loopback")
    cols = f"{'req/s':>9} {'p50 ms':>7} {'p99 ms':>7}"
    print(f"{'conc':>4} | voiceid {cols} | naive {cols} | {'x req/s':>7} {'x p50':>6}")
    for c in CONCURRENCY:
        ours, naive = results["voiceid"][c], results["naive"][c]
        print(f"{c:>4} | voiceid {ours.rps:>9.1f} {ours.p50_ms:>7.2f} {ours.p99_ms:>7.2f} | "
              f"naive {naive.rps:>9.1f} {naive.p50_ms:>7.2f} {naive.p99_ms:>7.2f} | "
              f"{ours.rps / naive.rps:>7.1f} {naive.p50_ms / ours.p50_ms:>6.1f}")  # fmt: skip
        for name, run in (("voiceid", ours), ("naive", naive)):
            if run.errors:
                print(f"     {name}: {run.errors} non-2xx responses of {run.requests}")
    before, after, n = rss
    print(f"voiceid RSS: {before:.1f} MB before, {after:.1f} MB after {n} requests "
          f"(growth {after - before:+.1f} MB)")  # fmt: skip
    ours8, naive8 = results["voiceid"][8], results["naive"][8]
    print(f"goals: x{ours8.rps / naive8.rps:.1f} throughput at 8 (>= 20), "
          f"p50 {results['voiceid'][1].p50_ms:.2f} ms at 1 (<= 5), "
          f"p99 {results['voiceid'][32].p99_ms:.2f} ms at 32 (<= 25), "
          f"RSS growth {after - before:+.1f} MB (< 20)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
