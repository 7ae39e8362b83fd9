"""docker/compose.yaml as the documentation tells an operator to use it."""

from __future__ import annotations

import re

from tests.helpers import ROOT

PAGES = [ROOT / "README.md", ROOT / "docker" / "README.md", ROOT / "docker" / "compose.yaml",
         *sorted((ROOT / "docs").glob("*.md"))]  # fmt: skip
# Compose reads VOICEID_DATA as a volume's source: a relative one is relative to docker/.
DATA_SETTING = re.compile(r"VOICEID_DATA=(\S+)")


def test_every_recordings_folder_given_to_compose_is_absolute() -> None:
    relative = [f"{page.relative_to(ROOT)}: VOICEID_DATA={value}"
                for page in PAGES for line in joined(page.read_text()) if "compose" in line
                for value in DATA_SETTING.findall(line)
                if not value.strip("\"'").startswith(("/", "$PWD"))]  # fmt: skip

    assert relative == []


def joined(text: str) -> list[str]:
    """The lines of ``text``, a shell line continued with a backslash joined to the next."""
    return re.sub(r"\\\n\s*", "", text).splitlines()
