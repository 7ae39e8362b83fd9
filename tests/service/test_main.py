"""The service as it runs: uvicorn processes answering over loopback, then stopping cleanly."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from pipeline.bundle import load_bundle
from tests.helpers import MODEL_DIR, free_port, process_running

pytestmark = pytest.mark.slow

LIMIT = 100_000  # bytes, the servers' /predict limit
STARTUP_TIMEOUT_S = 90.0  # a worker is ready in about a second; slow CI takes a while
# Shared libraries of the training stack: none may be mapped into a serving worker.
TRAINING_LIBRARIES = ("numba", "llvmlite", "tensorflow", "matplotlib", "librosa")
ROOT = MODEL_DIR.parents[1]


class Server:
    """A server process started by ``running``, its port and the file its output goes to."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process = process
        self.port = port
        self.log = log
        self.url = f"http://127.0.0.1:{port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until_ready(self, workers: int) -> None:
        """Until every worker has started and /ready answers 200."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"server exited with {self.process.returncode}:\n{self.output()}")
            started = self.output().count("Application startup complete.")
            if started >= workers and self._is_ready():
                return
            time.sleep(0.2)
        pytest.fail(f"server not ready after {STARTUP_TIMEOUT_S:g} s:\n{self.output()}")

    def _is_ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"server ignored SIGTERM:\n{self.output()}")


@contextmanager
def running(
    command: list[str], tmp_path: Path, *, workers: int = 1, env: dict[str, str] | None = None,
    port: int | None = None,
) -> Iterator[Server]:  # fmt: skip
    """Start ``command`` (which must serve on the port it is given, ``port`` or a free one, with
    ``env`` over the test settings) and wait for /ready."""
    port = free_port() if port is None else port
    extra = env or {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEID_")}
    env |= {"VOICEID_MODEL_DIR": str(MODEL_DIR), "VOICEID_MAX_UPLOAD_BYTES": str(LIMIT),
            "VOICEID_DATA_DIR": str(tmp_path / "speakers"),
            "TF_CPP_MIN_LOG_LEVEL": "2"} | extra  # fmt: skip
    log = tmp_path / f"server-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = Server(process, port, log)
    try:
        server.wait_until_ready(workers)
        yield server
    finally:
        if process.poll() is None:
            server.stop()


def assert_stopped_cleanly(server: Server, returncode: int, workers: int) -> None:
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it to exit as killed by it.
    assert returncode in (0, -signal.SIGTERM), server.output()
    assert server.output().count("Application shutdown complete.") == workers
    assert server.output().count("Finished server process") == workers


@pytest.fixture(scope="module")
def uvicorn_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One uvicorn process for the module; it must stop cleanly when the module is done."""
    command = [sys.executable, "-m", "uvicorn", "service.main:app_from_env", "--factory"]
    with running(command, tmp_path_factory.mktemp("uvicorn")) as server:
        yield server
        returncode = server.stop()
    assert_stopped_cleanly(server, returncode, workers=1)


def post_partially(server: Server, headers: dict[str, str], chunks: list[bytes]) -> tuple[int, str]:
    """Send the request line, ``headers`` and ``chunks`` of the body, but never the rest."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.putrequest("POST", "/predict")
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        for chunk in chunks:
            conn.send(chunk)
        response = conn.getresponse()
        return response.status, json.loads(response.read())["detail"]
    finally:
        conn.close()


def test_uvicorn_answers_a_clip_over_loopback(uvicorn_server: Server, steve_wav: bytes) -> None:
    files = {"file": ("steve.wav", steve_wav, "audio/wav")}

    response = httpx.post(f"{uvicorn_server.url}/predict", files=files, timeout=30)

    assert response.status_code == 200
    assert set(response.json()["scores"]) == {"David", "Steve"}
    assert response.json()["model"]["name"] == "default"


def test_bad_input_does_not_take_the_server_down(uvicorn_server: Server) -> None:
    url = uvicorn_server.url
    wav = {"content-type": "audio/wav"}

    junk = httpx.post(f"{url}/predict", content=b"RIFF\0\0\0\0WAVEjunk", headers=wav)
    empty = httpx.post(f"{url}/predict", content=b"", headers=wav)
    huge = httpx.post(f"{url}/predict", content=bytes(LIMIT + 1), headers=wav)

    assert (junk.status_code, empty.status_code, huge.status_code) == (415, 422, 413)
    assert httpx.get(f"{url}/health").status_code == 200


def test_declared_oversize_upload_is_refused_before_the_body_is_sent(
    uvicorn_server: Server,
) -> None:
    headers = {"Content-Type": "audio/wav", "Content-Length": "1000000000"}

    status, detail = post_partially(uvicorn_server, headers, chunks=[])

    assert status == 413
    assert detail == "upload of 1000000000 bytes is over the limit of 100000 bytes"


def test_chunked_oversize_upload_is_refused_while_it_streams(uvicorn_server: Server) -> None:
    headers = {"Content-Type": "audio/wav", "Transfer-Encoding": "chunked"}
    chunk = b"%x\r\n%s\r\n" % (10_000, bytes(10_000))

    status, detail = post_partially(uvicorn_server, headers, chunks=[chunk] * 11)  # no last chunk

    assert status == 413
    match = re.fullmatch(
        r"upload is over the limit of 100000 bytes \(stopped reading at (\d+) bytes\)", detail
    )
    assert match is not None and 100_000 < int(match[1]) <= 110_000


def voiceid_command() -> list[str]:
    script = Path(sys.executable).with_name("voiceid")
    return [str(script)] if script.exists() else [sys.executable, "-m", "voiceid"]


def worker_pids(server: Server) -> set[int]:
    return {int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", server.output())}


def training_libraries_mapped(pid: int) -> list[str]:
    """The training stack's files among those process ``pid`` has mapped (its /proc maps)."""
    paths = {line.split()[-1] for line in Path(f"/proc/{pid}/maps").read_text().splitlines()}
    return sorted(p for p in paths for lib in TRAINING_LIBRARIES if f"/{lib}" in p)


def test_voiceid_serve_with_two_workers(tmp_path: Path, steve_wav: bytes) -> None:
    command = [*voiceid_command(), "serve", "--model", str(MODEL_DIR), "--workers", "2"]
    with running(command, tmp_path, workers=2) as server:
        with httpx.Client(timeout=30) as client:  # answers in one write, on one connection
            answers = [
                client.post(f"{server.url}/predict", content=steve_wav,
                            headers={"content-type": "audio/wav"})
                for _ in range(6)
            ]  # fmt: skip
        # A WebSocket takes the connection from the HTTP protocol (service.protocol).
        with connect(f"ws://127.0.0.1:{server.port}/listen", open_timeout=30) as ws:
            ws.send(json.dumps({"sample_rate": 16000}))
            ready = json.loads(ws.recv(timeout=30))
            offered = ws.request.headers["Sec-WebSocket-Extensions"] if ws.request else ""
            accepted = ws.response.headers.get("Sec-WebSocket-Extensions") if ws.response else ""
        mapped = {pid: training_libraries_mapped(pid) for pid in worker_pids(server)}
        returncode = server.stop()

    assert [a.status_code for a in answers] == [200] * 6
    assert {a.json()["speaker"] for a in answers} == {"Steve"}
    assert ready["type"] == "ready"
    # PCM hardly compresses: inflating each frame cost 8 % of a stream's CPU, and a zlib state.
    assert offered.startswith("permessage-deflate") and accepted is None
    assert len(mapped) == 2
    assert mapped == {pid: [] for pid in mapped}
    assert_stopped_cleanly(server, returncode, workers=2)


def test_workers_stop_with_a_server_killed_by_sigkill_so_that_it_can_start_again(
    tmp_path: Path,
) -> None:
    """uvicorn's workers outlive their supervisor: killed with SIGKILL, it leaves them serving
    the port unsupervised, and the restarted server cannot listen on it."""
    command = [*voiceid_command(), "serve", "--model", str(MODEL_DIR), "--workers", "2"]
    with running(command, tmp_path, workers=2) as killed:
        workers = worker_pids(killed)
        killed.process.kill()
        killed.process.wait()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline and any(map(process_running, workers)):
            time.sleep(0.1)
        left = sorted(filter(process_running, workers))
        for pid in left:  # the test's own clean-up
            os.kill(pid, signal.SIGKILL)

    assert (len(workers), left) == (2, [])
    with running(command, tmp_path, workers=2, port=killed.port) as again:  # the port is free
        assert httpx.get(f"{again.url}/ready", timeout=10).status_code == 200


def test_voiceid_serve_refuses_a_big_listen_frame_naming_the_setting(tmp_path: Path) -> None:
    """uvicorn must not refuse a frame the app would refuse itself: its reason names no setting."""
    command = [*voiceid_command(), "serve", "--model", str(MODEL_DIR), "--workers", "1"]
    env = {"VOICEID_LISTEN_MAX_FRAME_BYTES": "1024"}
    with running(command, tmp_path, env=env) as server:
        closed = [_listen_frame_closed(server, size) for size in (2048, 4 * 1024 + 2)]

    assert closed == [
        (1009, "frame of 2048 bytes is over VOICEID_LISTEN_MAX_FRAME_BYTES=1024"),
        # uvicorn's, from the frame's header, unread: memory stays bounded
        (1009, "frame with 4098 bytes exceeds limit of 4096 bytes"),
    ]


def _listen_frame_closed(server: Server, size: int) -> tuple[int, str]:
    """The close code and reason of a /listen stream sending one frame of ``size`` bytes."""
    with connect(f"ws://127.0.0.1:{server.port}/listen", open_timeout=30) as ws:
        ws.send(json.dumps({"sample_rate": 16000}))
        assert json.loads(ws.recv(timeout=30))["type"] == "ready"
        ws.send(bytes(size))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=30)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


def test_voiceid_serve_says_first_what_it_serves_and_where(tmp_path: Path) -> None:
    """In ``docker logs``, the first line names the version, model, address and key; each
    worker then says which model it loaded (the service's own lines went nowhere below
    WARNING, as nothing configured its loggers)."""
    bundle = load_bundle(MODEL_DIR)
    command = [*voiceid_command(), "serve", "--model", str(MODEL_DIR), "--workers", "1"]
    with running(command, tmp_path, env={"VOICEID_API_KEY": "k"}) as server:
        server.stop()
    lines = server.output().splitlines()

    assert lines[0] == (
        f"INFO:     voiceid {metadata.version('voiceid')}: model {MODEL_DIR}, 1 worker on "
        f"http://127.0.0.1:{server.port}, API key required"
    )
    assert (
        f"INFO:     serving default ({bundle.version}) from {MODEL_DIR}, labels ['David', 'Steve']"
    ) in lines
