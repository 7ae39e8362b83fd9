"""The Dockerfiles as text: what the classic builder builds, and the layers the images share.

No docker daemon needed: these read the files.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import ROOT

DOCKER = ROOT / "docker"


def instructions(path: Path) -> list[str]:
    """The file's instructions, each on one line: continuations joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", "", path.read_text())
    lines = (line.strip() for line in joined.splitlines())
    return [" ".join(line.split()) for line in lines if line and not line.startswith("#")]


def stages(lines: list[str]) -> list[tuple[str, list[str]]]:
    """Each stage's name (its position when it has none) and instructions, FROM first."""
    found: list[tuple[str, list[str]]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            named = re.search(r"\s+AS\s+(\S+)$", line, re.IGNORECASE)
            found.append((named.group(1) if named else str(len(found)), [line]))
        elif found:
            found[-1][1].append(line)
    return found


def built_on(stage: list[str], names: set[str]) -> set[str]:
    """The stages of ``names`` that ``stage`` starts from or copies from."""
    base = {stage[0].split()[1]}
    copied = {m for line in stage for m in re.findall(r"--from=(\S+)", line)}
    return (base | copied) & names


def test_the_serving_image_needs_every_stage_the_classic_builder_builds_for_it() -> None:
    # The classic builder builds every stage up to the target, in file order, and the default
    # target is the last stage: any stage it does not build on is built for nothing.
    found = stages(instructions(DOCKER / "Dockerfile"))
    names = {name for name, _ in found}
    needed, todo = set(), [found[-1][0]]
    while todo:
        name = todo.pop()
        needed.add(name)
        todo += built_on(dict(found)[name], names) - needed

    assert found[-1][0] == "serve"
    assert [name for name, _ in found if name not in needed] == []


def test_the_training_image_starts_with_the_serving_images_base_layers() -> None:
    serving, training = (
        instructions(DOCKER / "Dockerfile"),
        instructions(DOCKER / "Dockerfile.train"),
    )
    base = dict(stages(serving))["base"]

    assert serving[0] == training[0]  # ARG BASE_IMAGE=...
    assert (base[0], training[1]) == ("FROM ${BASE_IMAGE} AS base", "FROM ${BASE_IMAGE}")
    assert training[2 : 1 + len(base)] == base[1:]
    assert "RUN sh /usr/local/lib/voiceid/image-steps.sh deps train" in training


def test_the_gpu_image_starts_with_the_serving_images_base_layers() -> None:
    serving, gpu = instructions(DOCKER / "Dockerfile"), instructions(DOCKER / "Dockerfile.gpu")
    base = dict(stages(serving))["base"]

    assert gpu[1] == "FROM ${BASE_IMAGE}"
    assert gpu[2 : 1 + len(base)] == base[1:]
    assert "RUN sh /usr/local/lib/voiceid/image-steps.sh deps gpu" in gpu


def settled(lines: list[str]) -> dict[str, set[str]]:
    """What a container of the image starts with: its volumes and its VOICEID_* settings."""
    volumes = {v for line in lines if line.startswith("VOLUME ") for v in line.split()[1:]}
    env = {pair for line in lines if line.startswith("ENV ") for pair in line.split()[1:]}
    return {"volumes": volumes, "settings": {p for p in env if p.startswith("VOICEID_")}}


def test_the_gpu_image_serves_with_the_volumes_and_settings_of_the_training_image() -> None:
    """It serves too: taught voices must land in its /speakers volume, not a home folder."""
    training, gpu = (instructions(DOCKER / name) for name in ("Dockerfile.train", "Dockerfile.gpu"))

    assert settled(gpu) == settled(training)
    assert settled(training)["volumes"] == {"/models", "/speakers"}
