"""The MkDocs hook (``hooks:`` in mkdocs.yml): a page's ``<!-- generated: NAME -->`` line becomes
the reference that :data:`GENERATORS` makes from the code, at every build. A quoted note right
under the marker (``> ...`` lines), which tells a reader of the Markdown file where the
reference is, goes with it."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

# MkDocs loads this file by path; the repository root makes docsgen, voiceid and service
# importable however `mkdocs` was started.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from docsgen.openapi import api_schema, render_api  # noqa: E402
from docsgen.reference import render_cli, render_settings  # noqa: E402

__all__ = ["GENERATORS", "expand", "on_page_markdown"]

GENERATORS: dict[str, Callable[[], str]] = {
    "api": lambda: render_api(api_schema()),
    "cli": render_cli,
    "settings": render_settings,
}
MARKER = re.compile(r"^<!-- generated: (\w+) -->$(?:\n> .*$)*", re.MULTILINE)


def expand(markdown: str) -> str:
    """``markdown`` with each marker replaced by its generator's Markdown; an unknown name is
    an error that lists the known ones."""

    def generated(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise KeyError(f"no generator {name!r}; known: {', '.join(GENERATORS)}")
        return GENERATORS[name]()

    return MARKER.sub(generated, markdown)


def on_page_markdown(markdown: str, **_: Any) -> str:
    return expand(markdown)
