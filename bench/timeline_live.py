"""The live half of ``bench.timeline``: a 2-worker server on loopback, streams in real time.

Each stream sends 16 kHz 16-bit PCM in frames of one hop (0.25 s) at real-time pace, so every
answer after the first window is completed by exactly one frame: its latency is from that
frame's sending to the answer's arrival. The streams are spread over 4 client processes;
/predict is measured alone and beside 100 streams, one request at a time from 4 clients.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import time
import tracemalloc
import urllib.error
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
from threadpoolctl import threadpool_limits

from pipeline.audio import decode
from pipeline.bundle import load_bundle
from pipeline.timeline.config import TimelineConfig
from pipeline.timeline.stream import Listener

__all__ = ["live"]

SR = 16_000
HOP = 4000  # samples of one hop at 16 kHz: one frame
STREAMS = (1, 20, 100)
WORKERS = 2
PREDICT_CLIENTS = 4
HOP_BUDGET_MS = 5.0  # goal: server compute per hop
P99_GOAL_MS = 50.0  # goal: hop latency at 100 streams
STREAM_BYTES_GOAL = 1 << 20  # goal: memory per stream
ROOT = Path(__file__).resolve().parents[1]


def _speech(test_dir: Path, seconds: float) -> np.ndarray:
    """``seconds`` of FSDD digits back to back, at 16 kHz."""
    clips = [decode(p, sample_rate=SR).samples for p in sorted(test_dir.rglob("*.wav"))[::7]]
    y = np.concatenate(clips)
    return np.tile(y, int(np.ceil(seconds * SR / len(y))))[: int(seconds * SR)]


def _pcm(y: np.ndarray) -> bytes:
    return (np.clip(y, -1, 32767 / 32768) * 32768).astype("<i2").tobytes()


def hop_cost(model: Path, y: np.ndarray) -> tuple[float, float]:
    """Mean ms of compute per answer, and p99 ms per frame, of one stream at 48 kHz in 85 ms
    frames, as a browser sends (resampling included), on one BLAS thread as a server runs."""
    import soxr

    bundle = load_bundle(model)
    y48 = soxr.resample(y, SR, 48_000).astype(np.float32)
    listener, costs, answers = Listener(bundle, 48_000, TimelineConfig()), [], 0
    with threadpool_limits(1):
        for i in range(0, len(y48), 4096):
            started = time.perf_counter()
            answers += len(listener.push(y48[i : i + 4096]))
            costs.append((time.perf_counter() - started) * 1000)
    return sum(costs) / answers, float(np.percentile(costs, 99))


def stream_memory(model: Path, y: np.ndarray, minutes: float = 10.0) -> tuple[float, list[float]]:
    """Bytes Python holds per stream (100 streams primed with a window each), and one stream's
    held bytes after each minute of ``minutes`` of audio pushed faster than real time (in
    process: the server's pace limit would stop it, by design)."""
    bundle = load_bundle(model)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    listeners = [Listener(bundle, 48_000, TimelineConfig()) for _ in range(100)]
    for listener in listeners:
        listener.push(np.zeros(48_000, np.float32))
    per_stream = (tracemalloc.get_traced_memory()[0] - base) / len(listeners)
    del listeners
    one = Listener(bundle, SR, TimelineConfig())
    held = []
    for _ in range(int(minutes)):
        for i in range(0, 60 * SR, HOP):
            one.push(y[i % len(y) : i % len(y) + HOP])
        held.append(float(tracemalloc.get_traced_memory()[0] - base))
    tracemalloc.stop()
    return per_stream, held


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_server(model: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "VOICEID_LISTEN_MAX_STREAMS": "200", "VOICEID_LOG_LEVEL": "warning"}
    command = [sys.executable, "-m", "voiceid", "serve", "--model", str(model), "--port",
               str(port), "--workers", str(WORKERS)]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2):
                return process
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.5)
    process.kill()
    raise SystemExit("the server did not start")


def _workers(server: subprocess.Popen[bytes]) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(server.pid)], capture_output=True,
                         text=True, check=False).stdout  # fmt: skip
    return [int(pid) for pid in out.split()]


def _worker_rss(server: subprocess.Popen[bytes]) -> int:
    """Bytes resident in the server's worker processes (its children)."""
    return sum(int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
               for pid in _workers(server))  # fmt: skip


def _worker_cpu_s(server: subprocess.Popen[bytes]) -> float:
    """CPU seconds (user and system) the server's workers have used."""
    ticks = 0
    for pid in _workers(server):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime and stime
    return ticks / os.sysconf("SC_CLK_TCK")


async def _stream(url: str, pcm: bytes, seconds: float, latencies: list[float]) -> None:
    import websockets

    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"sample_rate": SR}))
        json.loads(await ws.recv())
        sent: list[float] = []

        async def receive() -> None:
            answered = 0
            async for _ in ws:
                # Answer k is completed by frame k + 3: the first needs a whole window (4 hops).
                latencies.append(time.perf_counter() - sent[answered + 3])
                answered += 1

        reader = asyncio.create_task(receive())
        started = time.perf_counter()
        for k in range(int(seconds * SR / HOP)):
            await asyncio.sleep(max(0.0, started + k * HOP / SR - time.perf_counter()))
            sent.append(time.perf_counter())
            offset = (k * HOP * 2) % (len(pcm) - HOP * 2)
            await ws.send(pcm[offset : offset + HOP * 2])
        await asyncio.sleep(0.5)
        reader.cancel()


async def _predict_loop(url: str, clip: bytes, until: float, latencies: list[float]) -> None:
    import httpx

    async with httpx.AsyncClient(timeout=30) as client:
        while time.perf_counter() < until:
            started = time.perf_counter()
            response = await client.post(url, content=clip, headers={"content-type": "audio/wav"})
            response.raise_for_status()
            latencies.append(time.perf_counter() - started)


CLIENT_PROCESSES = 4  # the streams are spread over these, so one client loop is no bottleneck


async def _streams(port: int, pcm: bytes, streams: int, seconds: float) -> list[float]:
    hops: list[float] = []
    url = f"ws://127.0.0.1:{port}/listen"
    await asyncio.gather(*[_stream(url, pcm, seconds, hops) for _ in range(streams)])
    return hops


def _client_process(port: int, pcm: bytes, streams: int, seconds: float) -> list[float]:
    return asyncio.run(_streams(port, pcm, streams, seconds))


async def _predictions(port: int, clip: bytes, seconds: float) -> list[float]:
    latencies: list[float] = []
    url, until = f"http://127.0.0.1:{port}/predict", time.perf_counter() + seconds
    await asyncio.gather(*[_predict_loop(url, clip, until, latencies)
                           for _ in range(PREDICT_CLIENTS)])  # fmt: skip
    return latencies


def _run(port: int, pcm: bytes, clip: bytes, streams: int, seconds: float,
         predict: bool) -> tuple[list[float], list[float]]:  # fmt: skip
    """Hop latencies of ``streams`` streams spread over client processes, and /predict's
    latencies meanwhile when ``predict``."""
    shares = [len(part) for part in np.array_split(range(streams), CLIENT_PROCESSES) if len(part)]
    with ProcessPoolExecutor(len(shares) or 1) as pool:
        futures = [pool.submit(_client_process, port, pcm, n, seconds) for n in shares]
        predictions = asyncio.run(_predictions(port, clip, seconds)) if predict else []
        hops = [latency for future in futures for latency in future.result()]
    return hops, predictions


def _ms(values: list[float], q: float) -> float:
    return float(np.percentile(values, q) * 1000) if values else float("nan")


def _clip(y: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, y[:SR], SR, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _served(model: Path, y: np.ndarray, seconds: float) -> bool:
    port, pcm, clip = _free_port(), _pcm(y), _clip(y)
    server = _start_server(model, port)
    met = True
    try:
        _, alone = _run(port, pcm, clip, 0, min(seconds, 10.0), True)
        print(f"/predict alone: p50 {_ms(alone, 50):.1f} ms, p99 {_ms(alone, 99):.1f} ms "
              f"({len(alone)} requests, {PREDICT_CLIENTS} clients)")  # fmt: skip
        for n in STREAMS:
            before, cpu = _worker_rss(server), _worker_cpu_s(server)
            hops, beside = _run(port, pcm, clip, n, seconds, n == STREAMS[-1])
            grown = (_worker_rss(server) - before) / n
            cpu = _worker_cpu_s(server) - cpu
            print(f"{n} streams: hop latency p50 {_ms(hops, 50):.1f} ms, p99 "
                  f"{_ms(hops, 99):.1f} ms ({len(hops)} answers); workers' CPU "
                  f"{cpu / seconds * 100:.0f}% of a core ({cpu * 1000 / max(len(hops), 1):.2f} ms "
                  f"per answer{', /predict included' if n == STREAMS[-1] else ''}); worker RSS "
                  f"{grown / 1024:+.0f} KiB per stream")  # fmt: skip
            if n == STREAMS[-1]:
                met &= _ms(hops, 99) <= P99_GOAL_MS
                print(f"/predict beside {n} streams: p50 {_ms(beside, 50):.1f} ms, p99 "
                      f"{_ms(beside, 99):.1f} ms ({len(beside)} requests); ratio of p99s "
                      f"{_ms(beside, 99) / _ms(alone, 99):.2f}")  # fmt: skip
        met &= _timeline_request(port, y)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return met


def _timeline_request(port: int, y: np.ndarray) -> bool:
    ten = np.tile(y, int(np.ceil(600 * SR / len(y))))[: 600 * SR]
    buffer = io.BytesIO()
    sf.write(buffer, ten, SR, format="WAV", subtype="PCM_16")
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/timeline", data=buffer.getvalue(),
        headers={"content-type": "audio/wav"},
    )  # fmt: skip
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        body = json.load(response)
    took = time.perf_counter() - started
    print(f"/timeline on 10 min (16 kHz WAV, {len(buffer.getvalue()) / 1e6:.0f} MB): {took:.2f} s "
          f"over HTTP, {body['timing_ms'] / 1000:.2f} s of server compute; "
          f"{len(body['segments'])} segments (goal <= 2 s)")  # fmt: skip
    return took <= 2.0


def live(model: Path, test_dir: Path, seconds: float) -> bool:
    """Print the live path's figures; whether they meet the goals."""
    y = _speech(test_dir, 120.0)
    mean, p99 = hop_cost(model, y)
    print(f"compute per answer (48 kHz in, 85 ms frames, in process): mean {mean:.2f} ms; p99 "
          f"per frame {p99:.2f} ms (goal <= {HOP_BUDGET_MS:g} ms per hop)")  # fmt: skip
    per_stream, held = stream_memory(model, y)
    print(f"memory per stream: {per_stream / 1024:.0f} KiB held by Python (goal <= 1 MiB); one "
          f"stream over 10 min of audio (in process, faster than real time): "
          f"{', '.join(f'{h / 1024:.0f}' for h in held)} KiB after each minute")  # fmt: skip
    met = mean <= HOP_BUDGET_MS and per_stream <= STREAM_BYTES_GOAL
    return _served(model, y, seconds) and met
