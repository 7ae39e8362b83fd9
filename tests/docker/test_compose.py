"""docker/compose.yaml as the documentation tells an operator to use it.

The first test reads the pages only. The second runs the Compose commands of docker/README.md
as written (with a free port, a folder of demo recordings and volumes of its own) on the images
``docker/smoke-test.sh`` built (``VOICEID_DOCKER_SERVE_IMAGE``, ``voiceid:TAG``, whose training
image is ``voiceid:TAG-train``, the names compose gives them), with ``docker compose`` or, where
that is missing, ``docker-compose`` 1.29; it is marked ``docker``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from pipeline.demo.synth import write_demo_data
from tests.helpers import ROOT, free_port

PAGES = [ROOT / "README.md", ROOT / "docker" / "README.md", ROOT / "docker" / "compose.yaml",
         *sorted((ROOT / "docs").glob("*.md"))]  # fmt: skip
# Compose reads VOICEID_DATA as a volume's source: a relative one is relative to docker/.
DATA_SETTING = re.compile(r"VOICEID_DATA=(\S+)")
SERVE_IMAGE = os.environ.get("VOICEID_DOCKER_SERVE_IMAGE", "")
READY_TIMEOUT_S = 120  # seconds


def test_every_recordings_folder_given_to_compose_is_absolute() -> None:
    relative = [f"{page.relative_to(ROOT)}: VOICEID_DATA={value}"
                for page in PAGES for line in joined(page.read_text()) if "compose" in line
                for value in DATA_SETTING.findall(line)
                if not value.strip("\"'").startswith(("/", "$PWD"))]  # fmt: skip

    assert relative == []


def joined(text: str) -> list[str]:
    """The lines of ``text``, a shell line continued with a backslash joined to the next."""
    return re.sub(r"\\\n\s*", "", text).splitlines()


def readme_compose_commands() -> list[str]:
    """The commands of docker/README.md's Compose block up to the GPU's, continuations joined
    and comments dropped."""
    text = (ROOT / "docker" / "README.md").read_text()
    block = text.split("### Compose", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    lines = [re.sub(r"\s+#.*$", "", line).strip() for line in joined(block)]
    return [line for line in lines if line][: _before_gpu(lines)]


def _before_gpu(lines: list[str]) -> int:
    return next(i for i, line in enumerate([x for x in lines if x]) if "train-gpu" in line)


def compose_program() -> str | None:
    """``docker compose`` (v2) when it is there, else ``docker-compose``, else None."""
    if shutil.which("docker") is None:
        return None
    v2 = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=60)
    if v2.returncode == 0:
        return "docker compose"
    return "docker-compose" if shutil.which("docker-compose") else None


@pytest.mark.docker
def test_the_readmes_compose_commands_train_and_switch_the_api_to_the_new_model(
    tmp_path: Path,
) -> None:
    program, tag = compose_program(), SERVE_IMAGE.partition(":")[2]
    if not (SERVE_IMAGE.startswith("voiceid:") and tag and program):
        pytest.skip("needs VOICEID_DOCKER_SERVE_IMAGE=voiceid:TAG and docker compose")
    port, project = free_port(), f"voiceid-smoke-{uuid.uuid4().hex[:8]}"
    recordings = tmp_path / "recordings"
    write_demo_data(recordings, clips_per_voice=20, seed=3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEID_")}
    env |= {
        "COMPOSE_PROJECT_NAME": project,
        "VOICEID_TAG": tag,
        "VOICEID_HOST_PORT": str(port),
        "VOICEID_MODELS_VOLUME": f"{project}-m",
        "VOICEID_SPEAKERS_VOLUME": f"{project}-s",
    }
    as_here = {"docker compose": program, "$PWD/recordings": str(recordings),
               "127.0.0.1:8000": f"127.0.0.1:{port}"}  # fmt: skip
    try:
        commands = script(readme_compose_commands(), as_here, port)
        done = subprocess.run(["bash", "-ec", commands], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=600)  # fmt: skip
    finally:
        subprocess.run([*program.split(), "-f", "docker/compose.yaml", "down", "-v"],
                       cwd=ROOT, env=env, capture_output=True, timeout=120)  # fmt: skip
    said = f"{done.stdout[-3000:]}{done.stderr[-3000:]}"

    assert done.returncode == 0, said
    # The answers: the reload's, then /ready's once the api is started again on the new model.
    reloaded, restarted = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    assert (reloaded.get("name"), restarted["model"]["name"]) == ("trained", "trained"), said


def script(commands: list[str], as_here: dict[str, str], port: int) -> str:
    """``commands`` with the words of ``as_here`` replaced, each curl run once the api is
    ready, each output ended with a new line; then /ready's answer."""
    ready = f"http://127.0.0.1:{port}/ready"
    wait = (
        f"for i in $(seq {READY_TIMEOUT_S}); do curl -fs {ready} >/dev/null && break; sleep 1; done"
    )
    lines = []
    for command in commands:
        for word, here in as_here.items():
            command = command.replace(word, here)
        lines += [wait, command, "echo"] if command.startswith("curl") else [command, "echo"]
    return "\n".join([*lines, wait, f"curl -s {ready}"])


def compose_services() -> list[str]:
    """The services of docker/compose.yaml, in its order."""
    text = (ROOT / "docker" / "compose.yaml").read_text()
    block = text.split("\nservices:\n", 1)[1].split("\n\n\n", 1)[0]
    block = re.split(r"\n(?=[a-z])", block, maxsplit=1)[0]  # to the next top-level key
    return re.findall(r"(?m)^  ([a-z][\w-]*):$", block)


def test_the_readme_names_the_services_compose_has() -> None:
    readme = (ROOT / "docker" / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `docker/compose.yaml`"))
    named = set(re.findall(r"`([a-z][\w-]*)` \(", row))
    checked = readme.split("Compose was checked", 1)[1]

    assert compose_services() == ["api", "teach", "train", "train-gpu"]
    assert named == set(compose_services())
    assert set(re.findall(r"`([a-z]+-gpu)`", checked)) <= set(compose_services())
