"""Speaker names: the rules a name follows, and which names read the same as each other.

A name is a folder of the speaker store, so it is checked before it touches a path. It is taken
in NFC, so that a client sending "René" decomposed reaches the same speaker as one sending it
composed. Two names that look alike (``Alice`` and the same with a Cyrillic A, ``Kate`` with a
Kelvin sign for its K, ``fiona`` with the ligature fi) would be two speakers a person cannot tell
apart: :func:`lookalike` finds them by their confusable skeletons (Unicode TR39), after NFKC and
case folding.
"""

from __future__ import annotations

import functools
import json
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from pipeline.errors import InvalidNameError

__all__ = [
    "MAX_NAME_BYTES",
    "MAX_NAME_CHARS",
    "NAME_PUNCTUATION",
    "UNKNOWN",
    "check_speaker_name",
    "label_fault",
    "lookalike",
    "lookalike_pair",
    "skeleton",
]

UNKNOWN = "unknown"  # the speaker reported when the open-set decision rejects the clip
MAX_NAME_CHARS = 64
# A name is a file name, and ext4, XFS, Btrfs and tmpfs take at most 255 bytes for one.
MAX_NAME_BYTES = 255
NAME_PUNCTUATION = " -_."  # allowed besides letters and digits
_ALLOWED = "letters, digits, spaces, '-', '_' and '.'"
# Unicode's confusables, as ICU applies them; written by tools/confusables.py.
_CONFUSABLES = Path(__file__).with_name("confusables.json")


def check_speaker_name(name: str) -> str:
    """``name`` in NFC when it is a valid speaker name, else :class:`InvalidNameError` saying why.

    1-64 characters and at most 255 bytes of UTF-8: letters (any script), digits, space, ``-``,
    ``_`` and ``.``, none of them invisible; not starting with ``.`` or a space nor ending with
    a space, so a name is a plain folder name, never a path nor a hidden entry.
    """
    name = unicodedata.normalize("NFC", name)
    if not name:
        raise InvalidNameError(f"speaker name is empty: use 1-{MAX_NAME_CHARS} {_ALLOWED}")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidNameError(
            f"speaker name {name!r} is {len(name)} characters long: at most {MAX_NAME_CHARS} "
            "are allowed"
        )
    # A lone surrogate (a file name's byte that is not UTF-8) is counted here, refused below.
    if (size := len(name.encode(errors="surrogatepass"))) > MAX_NAME_BYTES:
        raise InvalidNameError(
            f"speaker name {name!r} is {size} bytes long in UTF-8: at most {MAX_NAME_BYTES} are "
            "allowed (a file name's limit); use fewer or shorter characters"
        )
    for separator in ("/", "\\"):
        if separator in name:
            raise InvalidNameError(f"speaker name {name!r} holds a path separator {separator!r}")
    for char in name:
        _check_char(name, char)
    if name[0] in ". ":
        raise InvalidNameError(f"speaker name {name!r} starts with {name[0]!r}")
    if name.endswith(" "):
        raise InvalidNameError(f"speaker name {name!r} ends with a space")
    return name


def _check_char(name: str, char: str) -> None:
    if _prototypes().get(char) == "":  # default-ignorable: the Hangul fillers, joiners, ...
        raise InvalidNameError(
            f"speaker name {name!r} holds U+{ord(char):04X} ({unicodedata.name(char, '?')}), "
            f"which is invisible: use only visible {_ALLOWED}"
        )
    if not (char.isalpha() or char.isdecimal() or char in NAME_PUNCTUATION):
        raise InvalidNameError(f"speaker name {name!r} holds {char!r}: use only {_ALLOWED}")


def label_fault(name: str) -> str | None:
    """Why ``name`` cannot be a model's label, or None: the rules of :func:`check_speaker_name`
    that keep an answer readable. A label is printed in every answer, so it is not empty, does
    not read as :data:`UNKNOWN` (the answer for a voice the model does not know) and holds no
    control or invisible character. Other names folders have (apostrophes, a leading dot, 65
    characters) stay labels, as they always trained."""
    if not name:
        return "is empty"
    if name == UNKNOWN or lookalike(name, [UNKNOWN]) is not None:
        return f"reads as {UNKNOWN!r}, the answer for a voice the model does not know"
    for char in name:
        if unicodedata.category(char) in _UNSEEN or _prototypes().get(char) == "":
            described = unicodedata.name(char, "a control character")
            return f"holds U+{ord(char):04X} ({described}), which no answer can show"
    return None


# Control, format, separator-of-lines, private-use and unassigned code points: no answer shows
# them as text (a terminal runs escape sequences, a page draws nothing).
_UNSEEN = frozenset({"Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"})


def skeleton(text: str) -> str:
    """The confusable skeleton of ``text`` (Unicode TR39, section 4): the NFD of the text with
    each character replaced by its prototype; two strings that look alike share it."""
    table = _prototypes()
    mapped = "".join(table.get(c, c) for c in unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFD", mapped)


def lookalike(name: str, others: Iterable[str]) -> str | None:
    """The first of ``others`` that reads the same as ``name`` without being ``name``, if any.

    Names are compared by the skeletons of their NFKC case folds, and by the skeletons of the
    case folds of their skeletons, so that a capital that looks like another script's capital
    (Cyrillic Ka, Latin K) matches whatever the shapes of their small letters.
    """
    keys = _keys(name)
    return next((o for o in others if o != name and keys & _keys(o)), None)


def lookalike_pair(names: Iterable[str]) -> tuple[str, str] | None:
    """The first two different ``names`` that read the same (as :func:`lookalike` compares
    them), in their order, if any: two speakers the service could not tell apart by name."""
    seen: dict[str, str] = {}
    for name in names:
        keys = _keys(name)
        taken = next((seen[k] for k in keys if k in seen and seen[k] != name), None)
        if taken is not None:
            return taken, name
        seen |= {k: name for k in keys if k not in seen}
    return None


@functools.lru_cache(maxsize=4096)  # a store's names, compared on every write
def _keys(name: str) -> frozenset[str]:
    compatible = unicodedata.normalize("NFKC", name)
    return frozenset((skeleton(compatible.casefold()), skeleton(skeleton(compatible).casefold())))


@functools.cache
def _prototypes() -> dict[str, str]:
    table: dict[str, str] = json.loads(_CONFUSABLES.read_text())["prototypes"]
    return table
