"""Writes ``pipeline/confusables.json``, the table behind ``pipeline.names.skeleton``.

The table is Unicode's confusables mapping (UTS #39, section 4) as ICU's ``SpoofChecker`` applies
it, one entry per code point: a character and the NFD of its prototype (Cyrillic A -> Latin A,
the ligature fi -> "fi", a Hangul filler -> ""), for each character that decomposes to itself
and has a prototype other than itself. The service reads the file and never needs ICU; this
script needs PyICU, from the ``unicode`` extra (``pip install -e '.[unicode]'``), and checks, for
every code point, that the table gives the skeleton ICU gives before it writes anything::

    python tools/confusables.py
"""

from __future__ import annotations

import json
import sys
import unicodedata
from pathlib import Path

import icu

OUT = Path(__file__).resolve().parents[1] / "pipeline" / "confusables.json"
SURROGATES = range(0xD800, 0xE000)


def code_points() -> list[str]:
    return [chr(cp) for cp in range(sys.maxunicode + 1) if cp not in SURROGATES]


def prototypes(checker: icu.SpoofChecker) -> dict[str, str]:
    """Each character that decomposes to itself, with its skeleton where that differs."""
    out = {}
    for char in code_points():
        if unicodedata.normalize("NFD", char) != char:
            continue  # never looked up: a skeleton starts from the NFD of the text
        skeleton = checker.getSkeleton(0, char)
        if skeleton != char:
            out[char] = skeleton
    return out


def skeleton(text: str, table: dict[str, str]) -> str:
    """What ``pipeline.names.skeleton`` computes from the table."""
    mapped = "".join(table.get(c, c) for c in unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFD", mapped)


def check(table: dict[str, str], checker: icu.SpoofChecker) -> None:
    wrong = [c for c in code_points() if skeleton(c, table) != checker.getSkeleton(0, c)]
    if wrong:
        shown = ", ".join(f"U+{ord(c):04X}" for c in wrong[:10])
        raise SystemExit(f"{len(wrong)} code points differ from ICU's skeleton: {shown}")


def main() -> None:
    checker = icu.SpoofChecker()
    table = prototypes(checker)
    check(table, checker)
    document = {"icu": icu.ICU_VERSION, "unicode": icu.UNICODE_VERSION, "prototypes": table}
    OUT.write_text(json.dumps(document, indent=0, sort_keys=True) + "\n")
    print(f"wrote {len(table)} prototypes (ICU {icu.ICU_VERSION}, Unicode "
          f"{icu.UNICODE_VERSION}) to {OUT}")  # fmt: skip


if __name__ == "__main__":
    main()
