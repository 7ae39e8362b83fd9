"""Hostile clients against real uvicorn servers: timings, memory, and every worker's model."""

from __future__ import annotations

import concurrent.futures
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import httpx
import pytest

from pipeline.demo.synth import STRANGER, write_demo_data
from tests.helpers import MODEL_DIR
from tests.security import hostile
from tests.service.test_main import LIMIT, Server, running, voiceid_command

pytestmark = pytest.mark.slow

KEY = "k3y"
WAV = {"content-type": "audio/wav"}


def _rss_mb(server: Server) -> float:
    """Resident memory of the server's processes (the parent and any workers), MB."""
    pids = [server.process.pid]
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def test_a_reload_reaches_both_workers(tmp_path: Path, trained_bundle: Path) -> None:
    root = tmp_path / "models"
    shutil.copytree(MODEL_DIR, root / "default")
    shutil.copytree(trained_bundle, root / "trained")
    env = {"VOICEID_MODELS_ROOT": str(root), "VOICEID_MODEL_DIR": str(root / "default")}
    command = [*voiceid_command(), "serve", "--workers", "2"]
    with running(command, tmp_path, workers=2, env=env) as server:
        reload = httpx.post(f"{server.url}/admin/reload", json={"model_dir": str(root / "trained")})
        versions = [httpx.get(f"{server.url}/model").json()["version"] for _ in range(100)]

    assert reload.status_code == 200
    expected = reload.json()["version"]
    print(f"\n{versions.count(expected)}/100 GET /model agree after the reload")
    assert versions == [expected] * 100


def test_two_workers_enrolling_at_once_keep_the_clips_limit(tmp_path: Path) -> None:
    clips = write_demo_data(tmp_path / "voice", clips_per_voice=8, seed=3, voices=[STRANGER])
    store = tmp_path / "store"
    command = [*voiceid_command(), "serve", "--workers", "2", "--data-dir", str(store)]
    env = {"VOICEID_MAX_CLIPS_PER_SPEAKER": "5"}

    def enrol(path: Path) -> int:
        files = {"files": (path.name, path.read_bytes(), "audio/wav")}
        return httpx.post(f"{server.url}/speakers/Zoë/clips", files=files, timeout=30).status_code

    with running(command, tmp_path, workers=2, env=env) as server:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            statuses = sorted(pool.map(enrol, clips["Stranger"]))
        listed = httpx.get(f"{server.url}/speakers/Zoë").json()

    assert statuses == [200] * 5 + [409] * 3
    assert len(listed["clips"]) == 5
    assert len([p for p in (store / "Zoë").iterdir() if not p.name.startswith(".")]) == 5


def _post_raw(server: Server, path: str, size: int, headers: str = "") -> tuple[str, float]:
    """Send a ``size``-byte body as fast as the server takes it, reading the answer meanwhile;
    the status line and the seconds it took."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: audio/wav\r\n{headers}"
    sock.sendall(f"{head}Content-Length: {size}\r\n\r\n".encode())
    chunk = bytes(1 << 20)

    def send() -> None:
        try:
            for _ in range(size // len(chunk)):
                sock.sendall(chunk)
        except OSError:
            pass  # the server answered and closed

    started = time.perf_counter()
    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    answer = sock.recv(4096).decode(errors="replace").split("\r\n")[0]
    took = time.perf_counter() - started
    sock.close()
    sender.join(5)
    return answer, took


def test_a_300_mb_unauthenticated_body_is_cheap_and_quick(tmp_path: Path) -> None:
    command = [*voiceid_command(), "serve"]
    with running(command, tmp_path, env={"VOICEID_API_KEY": KEY}) as server:
        before = _rss_mb(server)
        answers = {
            path: _post_raw(server, path, 300 << 20)
            for path in ("/admin/reload", "/predict", "/model", "/health")
        }
        grown = _rss_mb(server) - before

    for path, (status, took) in answers.items():
        print(f"\n{path}: {status!r} in {took:.3f} s")
        assert status.split()[1] in ("401", "413", "405")
        assert took <= 1.0
    print(f"RSS growth {grown:+.1f} MB")
    assert grown <= 20


def test_python_urllib_reads_the_413_of_an_over_limit_upload(tmp_path: Path) -> None:
    command = [*voiceid_command(), "serve"]
    with running(command, tmp_path) as server:
        request = urllib.request.Request(
            f"{server.url}/predict", data=bytes(3 * LIMIT), headers=WAV, method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)

    assert caught.value.code == 413
    assert caught.value.read() == (
        b'{"detail":"upload of 300000 bytes is over the limit of 100000 bytes"}'
    )


def test_hostile_uploads_are_quick_and_good_requests_keep_their_latency(
    tmp_path: Path, steve_wav: bytes
) -> None:
    uploads = {
        "riff junk": hostile.riff_junk(),
        "float near max": hostile.float_wav_near_max(),
        "flac bomb": hostile.flac_bomb(),
        "hls playlist": hostile.hls_playlist("/etc/passwd"),
        "ffconcat": b"ffconcat version 1.0\nfile '/etc/passwd'\n",
    }
    command = [*voiceid_command(), "serve"]
    # One client for all threads: a client per request would time its own TLS set-up.
    with running(command, tmp_path) as server, httpx.Client(timeout=30) as client:
        url = f"{server.url}/predict"
        before = _rss_mb(server)

        def post(data: bytes) -> tuple[int, float]:
            started = time.perf_counter()
            status = client.post(url, content=data, headers=WAV).status_code
            return status, time.perf_counter() - started

        post(steve_wav)  # the first request of a fresh process pays for lazy set-up
        # and the first upload that needs ffmpeg starts the compute thread and pays for reading
        # ffmpeg's libraries from disk: seconds on a machine whose page cache let them go
        post(hostile.riff_junk())
        alone = {name: post(data) for name, data in uploads.items()}
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            bombs = [pool.submit(post, hostile.flac_bomb()) for _ in range(2)]
            good = sorted(t for _, t in pool.map(post, [steve_wav] * 20))
            bomb_statuses = [b.result()[0] for b in bombs]
        grown = _rss_mb(server) - before

    for name, (status, took) in alone.items():
        print(f"\n{name}: {status} in {took * 1000:.1f} ms")
        assert 400 <= status < 500 and took <= 2.0
    print(f"p99 of 20 good requests beside 2 bombs: {good[-1] * 1000:.1f} ms; RSS {grown:+.1f} MB")
    assert bomb_statuses == [422, 422]
    assert good[-1] <= 1.0
    assert grown <= 200
