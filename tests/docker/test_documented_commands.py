"""The ``docker run`` commands the pages and the Dockerfiles' headers show, read as text."""

from __future__ import annotations

import re
import shlex

from tests.docker.test_compose import PAGES, joined
from tests.helpers import ROOT

DOCKERFILES = sorted((ROOT / "docker").glob("Dockerfile*"))
IMAGE = re.compile(r"^voiceid(:[\w.-]+)?$")


def docker_runs() -> list[tuple[str, list[str]]]:
    """Each ``docker run`` shown, where it is shown and its words (comments' ``#`` dropped)."""
    found = []
    for page in [*PAGES, *DOCKERFILES]:
        text = (
            re.sub(r"(?m)^#\s?", "", page.read_text()) if page in DOCKERFILES else page.read_text()
        )
        for line in joined(text):
            command = line.split("docker run ", 1)[1] if "docker run " in line else ""
            words = shlex.split(command.split("  #")[0].replace("`", " "), comments=True)
            if any(IMAGE.match(w) for w in words):
                found.append((str(page.relative_to(ROOT)), words))
    return found


def serves(words: list[str]) -> bool:
    """Whether the image's default command, ``voiceid serve``, is what it runs."""
    rest = words[next(i for i, w in enumerate(words) if IMAGE.match(w)) + 1 :]
    return rest in ([], ["voiceid", "serve"])


def test_the_pages_show_docker_runs_of_the_server() -> None:
    assert len([words for _, words in docker_runs() if serves(words)]) >= 5


def test_every_server_shown_is_given_a_key_or_told_to_serve_openly() -> None:
    """A server in a container listens on every interface: without either it refuses to start."""
    allowed = ("VOICEID_API_KEY=", "VOICEID_ALLOW_OPEN=1")
    refused = [f"{where}: docker run {' '.join(words)}" for where, words in docker_runs()
               if serves(words) and not any(w.startswith(allowed) for w in words)]  # fmt: skip

    assert refused == []
