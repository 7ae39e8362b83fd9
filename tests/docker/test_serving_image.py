"""The serving image (docker/Dockerfile's default target) as a user runs it.

It must hold none of the training stack and say which extra ``voiceid train`` needs; serve a
bundle trained by the train image (a volume, as compose's ``api`` and ``train`` share one),
score the suite's clips highest for their speakers, refuse a WebM with the reason when it has
no ffmpeg; run as a non-root uid, turn ``healthy``, and start one worker per CPU its
container may use. ``docker/smoke-test.sh`` runs it with ``VOICEID_DOCKER_SERVE_IMAGE`` and the
train image first in ``VOICEID_DOCKER_IMAGES``.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.docker.test_images import (
    API_KEY,
    IMAGES,
    _wait_ready,
    assert_scored_highest,
    docker,
    free_port,
    train_in_volume,
)

pytestmark = pytest.mark.docker

SERVE_IMAGE = os.environ.get("VOICEID_DOCKER_SERVE_IMAGE", "")
TRAINING_STACK = ("tensorflow", "keras", "matplotlib", "librosa", "numba", "llvmlite")

if not SERVE_IMAGE:
    pytest.skip("VOICEID_DOCKER_SERVE_IMAGE is not set: docker/smoke-test.sh sets it",
                allow_module_level=True)  # fmt: skip


def in_container(*args: str, check: bool = True) -> str:
    return docker("run", "--rm", "--network", "none", *args, check=check)


@dataclass(frozen=True)
class Served:
    container: str
    url: str
    clips: Path


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, demo_clips: dict[str, list[bytes]]
) -> Iterator[Served]:
    """A bundle trained by the train image in a volume, served by the serving image on
    127.0.0.1 in a container limited to 1.5 CPUs."""
    volume, name = (f"voiceid-smoke-{uuid.uuid4().hex[:8]}" for _ in range(2))
    port = free_port()
    try:
        clips = train_in_volume(IMAGES[0], volume, tmp_path_factory.mktemp("serving"), demo_clips)
        docker("run", "-d", "--name", name, "--network", "host", "--cpus", "1.5",
               "-e", "VOICEID_HOST=127.0.0.1", "-e", f"VOICEID_PORT={port}",
               "-e", "VOICEID_MODEL_DIR=/models/smoke", "-e", f"VOICEID_API_KEY={API_KEY}",
               "-v", f"{volume}:/models", "--health-interval", "2s",
               "--health-start-period", "120s", SERVE_IMAGE)  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        _wait_ready(name, url)
        yield Served(name, url, clips)
    finally:
        docker("rm", "-f", name, check=False)
        docker("volume", "rm", "-f", volume, check=False)


# The image


def test_the_serving_image_holds_none_of_the_training_stack() -> None:
    code = (
        "import importlib.util as u; "
        f"print([m for m in {TRAINING_STACK!r} if u.find_spec(m) is not None])"
    )

    assert in_container(SERVE_IMAGE, "python", "-c", code) == "[]"


def test_voiceid_train_in_the_serving_image_names_the_extra_to_install() -> None:
    proc_out = docker("run", "--rm", "--network", "none", SERVE_IMAGE, "sh", "-c",
                      "voiceid train /tmp --out /tmp/m; echo exit=$?", check=False)  # fmt: skip
    logs = docker("run", "--rm", "--network", "none", SERVE_IMAGE, "sh", "-c",
                  "voiceid train /tmp --out /tmp/m 2>&1 || true")  # fmt: skip

    assert proc_out.endswith("exit=2")
    assert "voiceid train needs the training extra, which is not installed" in logs
    assert "pip install 'voiceid[train]'" in logs


def test_the_serving_image_carries_no_compiler_pip_cache_or_apt_lists() -> None:
    script = (
        "command -v gcc cc; ls -d /root/.cache/pip $HOME/.cache/pip 2>/dev/null; "
        "ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e ^lock -e ^partial; true"
    )

    assert in_container(SERVE_IMAGE, "sh", "-c", script) == ""


@pytest.mark.parametrize(
    ("limit", "expected"),
    [(("--cpus", "1.5"), "2"), (("--cpus", "1"), "1"), (("--cpuset-cpus", "0"), "1"),
     (("--cpus", "2", "--memory", "160m"), "1"), (("--cpus", "2", "--memory", "512m"), "2")],
)  # fmt: skip
def test_workers_auto_counts_the_cpus_the_container_may_use(
    limit: tuple[str, ...], expected: str
) -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs a host with at least 2 CPUs")
    code = "from service.settings import Settings; print(Settings().worker_count())"

    assert in_container(*limit, SERVE_IMAGE, "python", "-c", code) == expected


# The server


@pytest.mark.parametrize(("clip", "speaker"), [("steve.wav", "Steve"), ("david.wav", "David")])
def test_it_serves_a_bundle_the_train_image_wrote(served: Served, clip: str, speaker: str) -> None:
    assert_scored_highest(served.url, served.clips / clip, speaker)


def test_a_webm_needs_ffmpeg_which_the_serving_image_may_lack(served: Served) -> None:
    has_ffmpeg = docker("exec", served.container, "sh", "-c", "command -v ffmpeg || true") != ""
    files = {"file": ("steve.webm", (served.clips / "steve.webm").read_bytes())}

    response = httpx.post(f"{served.url}/predict", files=files,
                          headers={"X-API-Key": API_KEY}, timeout=30)  # fmt: skip

    if has_ffmpeg:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 415
        assert "ffmpeg is not installed" in response.json()["detail"]


def test_it_starts_a_worker_per_cpu_of_its_limit_as_a_user_other_than_root(
    served: Served,
) -> None:
    uids = docker("exec", served.container, "sh", "-c", "id -u; stat -c %u /proc/1").split()
    logs = subprocess.run(["docker", "logs", served.container], capture_output=True,
                          text=True, check=True)  # fmt: skip

    assert len(uids) == 2 and "0" not in uids
    started = set(re.findall(r"Started server process \[(\d+)\]", logs.stdout + logs.stderr))
    assert len(started) == 2  # --cpus 1.5 on a host of at least 2


def test_metrics_and_the_page_answer(served: Served) -> None:
    metrics = httpx.get(f"{served.url}/metrics", headers={"X-API-Key": API_KEY}, timeout=10)
    page = httpx.get(f"{served.url}/", timeout=10)

    assert metrics.status_code == 200 and "voiceid" in metrics.text
    assert page.status_code == 200 and "<html" in page.text.lower()


def test_the_healthcheck_turns_healthy(served: Served) -> None:
    deadline, status = time.monotonic() + 60, ""
    while time.monotonic() < deadline:
        status = docker("inspect", "-f", "{{.State.Health.Status}}", served.container)
        if status in ("healthy", "unhealthy"):
            break
        time.sleep(1)

    assert status == "healthy"


def test_the_serving_image_takes_voices_but_says_it_cannot_train(served: Served) -> None:
    headers = {"X-API-Key": API_KEY}
    clip = (served.clips / "steve.wav").read_bytes()

    stored = httpx.post(f"{served.url}/speakers/Sam/clips", headers=headers, timeout=30,
                        files=[("files", ("s.wav", clip, "audio/wav"))])  # fmt: skip
    train = httpx.post(f"{served.url}/train", headers=headers, timeout=30)

    assert stored.status_code == 200 and len(stored.json()["accepted"]) == 1
    assert train.status_code == 503
    assert train.json()["detail"].startswith(
        "this server cannot train: tensorflow is not installed. Install the train extra"
    )
