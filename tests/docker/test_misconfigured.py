"""The images as an operator gets them wrong, and stops them: each mistake stops the container at
once with exit status 2 and one line in ``docker logs`` that names what is wrong and what to do,
never a traceback (which, under a restart policy, would loop without saying why); ``docker
stop`` ends a command at once.

Runs against the serving image (``VOICEID_DOCKER_SERVE_IMAGE``) and the first training image of
``VOICEID_DOCKER_IMAGES``, as ``docker/smoke-test.sh`` sets them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from importlib import metadata

import pytest

from pipeline.bundle import load_bundle
from tests.docker.test_images import _wait_ready, docker, free_port
from tests.helpers import MODEL_DIR

pytestmark = pytest.mark.docker

SERVE_IMAGE = os.environ.get("VOICEID_DOCKER_SERVE_IMAGE", "")
TRAIN_IMAGE = (os.environ.get("VOICEID_DOCKER_IMAGES", "").split() or [""])[0]
KEY = ("-e", "VOICEID_API_KEY=k")
NO_TEMP = (
    "no folder for temporary files can be written (No usable temporary directory found in "
    "['/tmp', '/var/tmp', '/usr/tmp', '/app']): set TMPDIR to a folder this user may write in, "
    "or, on a read-only root filesystem, mount a tmpfs at /tmp (docker run --tmpfs /tmp)"
)

if not (SERVE_IMAGE and TRAIN_IMAGE):
    pytest.skip("VOICEID_DOCKER_SERVE_IMAGE and VOICEID_DOCKER_IMAGES are not set: "
                "docker/smoke-test.sh sets them", allow_module_level=True)  # fmt: skip


def stopped(*args: str, network: str = "none") -> tuple[int, str]:
    """``docker run ARGS``, which must stop by itself: its exit status and its output."""
    proc = subprocess.run(["docker", "run", "--rm", "--network", network, *args],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    return proc.returncode, proc.stdout + proc.stderr


def logs(container: str) -> list[str]:
    """The lines of ``docker logs``, the container's standard output and error together."""
    done = subprocess.run(["docker", "logs", container], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=60)  # fmt: skip
    return done.stdout.splitlines()


def test_a_read_only_root_without_a_tmpfs_stops_the_server_saying_what_to_mount() -> None:
    assert stopped("--read-only", *KEY, SERVE_IMAGE) == (2, f"voiceid serve: error: {NO_TEMP}\n")


def test_a_read_only_root_without_a_tmpfs_stops_training_saying_what_to_mount() -> None:
    # The demo recordings, written by the image, are enough to reach the feature workers.
    script = "voiceid demo-data /data/voices >/dev/null && voiceid train /data/voices --out /data/m"
    code, out = stopped("--read-only", "--tmpfs", "/data:uid=10001", TRAIN_IMAGE, "sh", "-c",
                        script)  # fmt: skip

    assert (code, out.splitlines()[-1]) == (2, f"voiceid train: error: {NO_TEMP}")
    assert "Traceback" not in out


def test_an_unknown_log_level_is_named() -> None:
    code, out = stopped(*KEY, "-e", "VOICEID_LOG_LEVEL=verbose", SERVE_IMAGE)

    assert code == 2
    assert out == (
        "voiceid serve: error: VOICEID_LOG_LEVEL='verbose': Input should be 'critical', 'error', "
        "'warning', 'info', 'debug' or 'trace'\n"
    )


def test_no_key_stops_it_as_every_other_refusal_does() -> None:
    code, out = stopped(SERVE_IMAGE)

    assert code == 2
    assert out.startswith(
        "voiceid serve: error: refusing to listen on '0.0.0.0' without an API key"
    )


def test_a_port_another_program_holds_is_named() -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]

        code, out = stopped(*KEY, "-e", f"VOICEID_PORT={port}", SERVE_IMAGE, network="host")

    assert code == 2
    assert out == (
        f"voiceid serve: error: cannot listen on '0.0.0.0' port {port}: another program is using "
        "the port: stop it, or serve on another port (--host and --port, or VOICEID_HOST and "
        "VOICEID_PORT)\n"
    )


def test_docker_logs_warn_of_a_misspelt_variable_then_say_what_is_served() -> None:
    name, port = f"voiceid-smoke-{uuid.uuid4().hex[:8]}", free_port()
    misspelt = ("-e", "VOICEID_MODELDIR=/models/mine")
    docker("run", "-d", "--name", name, "--network", "host", *KEY, "-e", f"VOICEID_PORT={port}",
           "-e", "VOICEID_WORKERS=1", *misspelt, SERVE_IMAGE)  # fmt: skip
    try:
        _wait_ready(name, f"http://127.0.0.1:{port}")
        lines = logs(name)
    finally:
        docker("rm", "-f", name, check=False)

    assert lines[:2] == [
        "voiceid serve: warning: VOICEID_MODELDIR is no setting, and is ignored: did you mean "
        "VOICEID_MODEL_DIR?",
        f"INFO:     voiceid {metadata.version('voiceid')}: model /app/models/default, 1 worker "
        f"on http://0.0.0.0:{port}, API key required",
    ]
    assert (
        f"INFO:     serving default ({load_bundle(MODEL_DIR).version}) from /app/models/default, "
        "labels ['David', 'Steve']"
    ) in lines


def test_docker_stop_ends_training_at_once_with_the_status_of_sigterm() -> None:
    """The command is the container's PID 1, which ignores a signal it has no handler for."""
    name = f"voiceid-smoke-{uuid.uuid4().hex[:8]}"
    script = ("voiceid demo-data /tmp/voices >/dev/null && exec voiceid train /tmp/voices "
              "--out /tmp/m --epochs 100000 --patience 100000 --no-cache")  # fmt: skip
    docker("run", "-d", "--name", name, "--network", "none", TRAIN_IMAGE, "sh", "-c", script)
    try:
        time.sleep(15)  # into the training
        started = time.monotonic()
        docker("stop", "--time", "30", name)
        took = time.monotonic() - started
        code = docker("inspect", "-f", "{{.State.ExitCode}}", name)
        last = logs(name)[-1]
    finally:
        docker("rm", "-f", name, check=False)

    assert (code, took < 20) == ("143", True)
    assert last == "voiceid train: stopped (SIGTERM)"
