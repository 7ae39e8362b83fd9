"""The training images as a user runs them: the CLI in a container, then the server over loopback.

``docker/smoke-test.sh`` builds the images and runs this module with the training images' tags in
``VOICEID_DOCKER_IMAGES`` (space-separated: docker/Dockerfile.train's image first, then the GPU
image, whose TensorFlow must be a CUDA build); test_serving_image.py checks the serving image.
Run by hand:

    VOICEID_DOCKER_IMAGES="voiceid:smoke-train voiceid:smoke-gpu" \
        VOICEID_DOCKER_SERVE_IMAGE=voiceid:smoke .venv/bin/python -m pytest -m docker

Per image, in containers: ``voiceid demo-data``, ``voiceid train`` into a fresh volume, and
``voiceid predict`` on that bundle under an arbitrary uid; then a server on the host network
(127.0.0.1, a free port, an API key) that must answer ``/ready``, score the suite's Steve and
David clips and a WebM/Opus copy made by the image's ffmpeg highest for their speakers, run as a
non-root uid, turn ``healthy``, and reload the shipped bundle only with the key. Containers and
volumes it creates are removed at the end.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from pipeline.demo.synth import VoiceSpec, write_demo_data

pytestmark = pytest.mark.docker

IMAGES = os.environ.get("VOICEID_DOCKER_IMAGES", "").split()
API_KEY = f"smoke-{uuid.uuid4().hex[:12]}"
READY_TIMEOUT_S = 180.0  # ready in seconds; slow CI takes a while
HEALTHY_TIMEOUT_S = 60.0
SHIPPED_IN_IMAGE = "/app/models/default"

if not IMAGES:
    pytest.skip(
        "VOICEID_DOCKER_IMAGES is not set: docker/smoke-test.sh builds the images and runs this",
        allow_module_level=True,
    )


def docker(*args: str, check: bool = True, timeout: float = 600) -> str:
    """``docker ARGS``'s standard output; a failure shows its standard error."""
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(f"docker {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc.stdout.strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Trained:
    image: str
    volume: str  # holds the bundle at /models/smoke
    clips: Path  # the suite's clips (steve.wav, david.wav) and the image's steve.webm


def train_in_volume(
    image: str, volume: str, work: Path, demo_clips: dict[str, list[bytes]]
) -> Path:
    """In containers of ``image``: write the demo voices, make a WebM of a Steve clip, and train
    the bundle "smoke" into the new docker volume ``volume``. Returns the folder of test clips
    (steve.wav, david.wav, steve.webm)."""
    data, clips = work / "data", work / "clips"
    for folder in (data, clips):
        folder.mkdir(mode=0o777)
        folder.chmod(0o777)  # the containers write as uid 10001
    (clips / "steve.wav").write_bytes(demo_clips["Steve"][0])
    (clips / "david.wav").write_bytes(demo_clips["David"][0])
    docker("volume", "create", volume)
    run = ["run", "--rm", "--network", "none"]
    docker(*run, "-v", f"{data}:/data", image, "voiceid", "demo-data", "/data")
    docker(*run, "-v", f"{clips}:/clips", image, "ffmpeg", "-nostdin", "-loglevel", "error",
           "-i", "/clips/steve.wav", "-c:a", "libopus", "/clips/steve.webm")  # fmt: skip
    docker(*run, "-v", f"{data}:/data:ro", "-v", f"{volume}:/models", image,
           "voiceid", "train", "/data", "--out", "/models/smoke")  # fmt: skip
    return clips


@pytest.fixture(scope="module", params=IMAGES)
def trained(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    demo_clips: dict[str, list[bytes]],
) -> Iterator[Trained]:
    """Demo recordings written and a model trained into a new volume, both in containers."""
    image: str = request.param
    volume = f"voiceid-smoke-{uuid.uuid4().hex[:8]}"
    try:
        clips = train_in_volume(image, volume, tmp_path_factory.mktemp("docker"), demo_clips)
        yield Trained(image, volume, clips)
    finally:
        docker("volume", "rm", "-f", volume, check=False)


@dataclass(frozen=True)
class Server:
    container: str
    url: str


@pytest.fixture(scope="module")
def server(trained: Trained) -> Iterator[Server]:
    """The image's default command serving the trained bundle on 127.0.0.1 (host network)."""
    port, name = free_port(), f"voiceid-smoke-{uuid.uuid4().hex[:8]}"
    docker("run", "-d", "--name", name, "--network", "host",
           "-e", "VOICEID_HOST=127.0.0.1", "-e", f"VOICEID_PORT={port}",
           "-e", "VOICEID_MODEL_DIR=/models/smoke", "-e", f"VOICEID_API_KEY={API_KEY}",
           # Reloads load from the models root only (/models, MODEL_DIR's folder, by default);
           # the reload test loads the bundle shipped in the image, under /app.
           "-e", "VOICEID_MODELS_ROOT=/",
           "-v", f"{trained.volume}:/models",
           "--health-interval", "2s", "--health-timeout", "5s",
           "--health-start-period", "120s", "--health-retries", "3", trained.image)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(name, url)
        yield Server(name, url)
    finally:
        docker("rm", "-f", name, check=False)


def _wait_ready(container: str, url: str) -> None:
    deadline, last = time.monotonic() + READY_TIMEOUT_S, "no answer"
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{url}/ready", timeout=5)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text}"
        except httpx.TransportError as exc:
            last = repr(exc)
        if docker("inspect", "-f", "{{.State.Running}}", container) != "true":
            logs = docker("logs", "--tail", "40", container, check=False)
            pytest.fail(f"the server container exited before /ready answered:\n{logs}")
        time.sleep(1)
    pytest.fail(f"/ready did not answer 200 within {READY_TIMEOUT_S:g} s (last: {last})")


# The image


def test_the_image_carries_no_compiler_pip_cache_or_apt_lists(trained: Trained) -> None:
    script = (
        "command -v gcc cc; ls -d /root/.cache/pip $HOME/.cache/pip 2>/dev/null; "
        "ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e ^lock -e ^partial; true"
    )

    assert docker("run", "--rm", "--network", "none", trained.image, "sh", "-c", script) == ""


def test_the_cli_predicts_under_any_uid(trained: Trained) -> None:
    out = docker("run", "--rm", "--network", "none", "--user", "4242:4242",
                 "-v", f"{trained.volume}:/models:ro", "-v", f"{trained.clips}:/clips:ro",
                 trained.image, "voiceid", "predict", "/models/smoke", "/clips/steve.wav",
                 "--json")  # fmt: skip

    [answer] = json.loads(out)
    assert answer["file"] == "/clips/steve.wav"
    assert max(answer["scores"], key=answer["scores"].get) == "Steve"
    assert answer["speaker"] in ("Steve", "unknown")


def test_the_gpu_image_has_a_cuda_build_of_tensorflow(trained: Trained) -> None:
    if trained.image == IMAGES[0]:
        pytest.skip("the CPU train image has tensorflow-cpu")
    code = "import tensorflow as tf; print(tf.test.is_built_with_cuda())"

    out = docker("run", "--rm", "--network", "none", trained.image, "python", "-c", code)

    assert out.splitlines()[-1] == "True"


# The server


def assert_scored_highest(url: str, clip: Path, speaker: str) -> None:
    """POST ``clip`` to the server at ``url``: 200, the top score is ``speaker``'s, and the
    answer is that speaker or "unknown" (a fresh clip may still fall outside the calibrated
    decision, which tests/service covers), from the model named "smoke"."""
    files = {"file": (clip.name, clip.read_bytes())}

    response = httpx.post(f"{url}/predict", files=files, headers={"X-API-Key": API_KEY},
                          timeout=30)  # fmt: skip

    assert response.status_code == 200, response.text
    answer = response.json()
    assert max(answer["scores"], key=answer["scores"].get) == speaker
    assert answer["speaker"] in (speaker, "unknown")
    assert answer["model"]["name"] == "smoke"


@pytest.mark.parametrize(
    ("clip", "speaker"), [("steve.wav", "Steve"), ("david.wav", "David"), ("steve.webm", "Steve")]
)
def test_the_server_scores_each_clip_highest_for_its_speaker(
    server: Server, trained: Trained, clip: str, speaker: str
) -> None:
    assert_scored_highest(server.url, trained.clips / clip, speaker)


def test_the_server_runs_as_a_user_other_than_root(server: Server) -> None:
    # The server is PID 1 (the exec-form CMD): the uid it runs under, not only docker exec's.
    uids = docker("exec", server.container, "sh", "-c", "id -u; stat -c %u /proc/1").split()

    assert len(uids) == 2 and "0" not in uids


def test_the_healthcheck_turns_healthy(server: Server) -> None:
    deadline, status = time.monotonic() + HEALTHY_TIMEOUT_S, ""
    while time.monotonic() < deadline:
        status = docker("inspect", "-f", "{{.State.Health.Status}}", server.container)
        if status in ("healthy", "unhealthy"):
            break
        time.sleep(1)

    assert status == "healthy"


def test_reload_needs_the_key_and_loads_the_shipped_bundle(server: Server) -> None:
    body = {"model_dir": SHIPPED_IN_IMAGE}

    refused = httpx.post(f"{server.url}/admin/reload", json=body, timeout=30)
    loaded = httpx.post(f"{server.url}/admin/reload", json=body,
                        headers={"X-API-Key": API_KEY}, timeout=60)  # fmt: skip

    assert refused.status_code == 401
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["name"] == "default"
    assert httpx.get(f"{server.url}/ready", timeout=10).json()["model"]["name"] == "default"


# Teaching it a voice over HTTP, in the image's /speakers volume

NEW_VOICE = VoiceSpec("Alice", pitch_hz=210.0, formant_scale=1.2, tilt=10.0, breathiness=0.1)
JOB_TIMEOUT_S = 300.0


def test_the_server_learns_a_new_voice_over_http_and_serves_it(
    server: Server, tmp_path: Path
) -> None:
    headers = {"X-API-Key": API_KEY}
    paths = write_demo_data(tmp_path, clips_per_voice=16, seed=5, voices=[NEW_VOICE])["Alice"]
    files = [("files", (p.name, p.read_bytes(), "audio/wav")) for p in paths[:12]]

    stored = httpx.post(f"{server.url}/speakers/Alice/clips", files=files, headers=headers,
                        timeout=60)  # fmt: skip
    job = httpx.post(f"{server.url}/train", headers=headers, timeout=30).json()["job"]
    deadline, status = time.monotonic() + JOB_TIMEOUT_S, {}
    while time.monotonic() < deadline:
        status = httpx.get(f"{server.url}/train/{job}", headers=headers, timeout=10).json()
        if status["state"] in ("done", "failed"):
            break
        time.sleep(0.5)
    named = [
        httpx.post(f"{server.url}/predict", files={"file": (p.name, p.read_bytes())},
                   headers=headers, timeout=30).json()["speaker"]
        for p in paths[12:]
    ]  # fmt: skip

    assert stored.status_code == 200 and len(stored.json()["accepted"]) == 12
    assert status["state"] == "done", status
    assert "Alice" in status["model"]["labels"]
    assert named.count("Alice") >= 3
