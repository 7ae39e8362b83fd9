"""Speaker names: the rules, NFC, invisible letters, the byte limit, and names that read the
same as others (every example of issue 19, written with escapes so that each is unmistakable)."""

from __future__ import annotations

import unicodedata

import pytest

from pipeline.errors import InvalidNameError
from pipeline.names import (
    MAX_NAME_BYTES,
    check_speaker_name,
    label_fault,
    lookalike,
    lookalike_pair,
    skeleton,
)

ALLOWED = "letters, digits, spaces, '-', '_' and '.'"
BOLD_A = "\U0001d400"  # MATHEMATICAL BOLD CAPITAL A: four bytes of UTF-8
KOREAN = "\ud55c\uad6d"  # two Hangul syllables, NFC


@pytest.mark.parametrize("name", ["Alice", "Zoë", "Jean-Luc ONeil", "a.b_c 2", "李雷", "x" * 64,
                                  "7", BOLD_A * 63, KOREAN])  # fmt: skip
def test_a_valid_name_in_nfc_is_returned_as_it_is(name: str) -> None:
    assert check_speaker_name(name) == name


@pytest.mark.parametrize(
    ("sent", "taken"),
    [("Rene\u0301", "Ren\u00e9"), (unicodedata.normalize("NFD", KOREAN), KOREAN),
     ("\u212bsa", "\u00c5sa")],
    ids=["Rene + combining acute", "Korean NFD", "Angstrom sign"],
)  # fmt: skip
def test_a_name_is_taken_in_nfc(sent: str, taken: str) -> None:
    assert check_speaker_name(sent) == taken


@pytest.mark.parametrize(
    ("name", "message"),
    [("", f"speaker name is empty: use 1-64 {ALLOWED}"),
     ("x" * 65, f"speaker name {'x' * 65!r} is 65 characters long: at most 64 are allowed"),
     (BOLD_A * 64, f"speaker name {BOLD_A * 64!r} is 256 bytes long in UTF-8: at most 255 are "
                   "allowed (a file name's limit); use fewer or shorter characters"),
     ("../x", "speaker name '../x' holds a path separator '/'"),
     ("a\\b", "speaker name 'a\\\\b' holds a path separator '\\\\'"),
     (".hidden", "speaker name '.hidden' starts with '.'"),
     ("..", "speaker name '..' starts with '.'"),
     (" a", "speaker name ' a' starts with ' '"),
     ("a ", "speaker name 'a ' ends with a space"),
     ("a\x00b", f"speaker name 'a\\x00b' holds '\\x00': use only {ALLOWED}"),
     ("a\tb", f"speaker name 'a\\tb' holds '\\t': use only {ALLOWED}"),
     ("a:b", f"speaker name 'a:b' holds ':': use only {ALLOWED}"),
     ("Ab\udcffc", f"speaker name 'Ab\\udcffc' holds '\\udcff': use only {ALLOWED}"),
     ("Alice\u3164", "speaker name 'Alice\u3164' holds U+3164 (HANGUL FILLER), which is "
                     f"invisible: use only visible {ALLOWED}"),
     ("Alice\u115f", "speaker name 'Alice\u115f' holds U+115F (HANGUL CHOSEONG FILLER), which is "
                     f"invisible: use only visible {ALLOWED}"),
     ("\u1160Bob", "speaker name '\u1160Bob' holds U+1160 (HANGUL JUNGSEONG FILLER), which is "
                   f"invisible: use only visible {ALLOWED}"),
     ("Bob\uffa0", "speaker name 'Bob\uffa0' holds U+FFA0 (HALFWIDTH HANGUL FILLER), which is "
                   f"invisible: use only visible {ALLOWED}"),
     ("Al\u200bice", "speaker name 'Al\\u200bice' holds U+200B (ZERO WIDTH SPACE), which is "
                     f"invisible: use only visible {ALLOWED}")],
    ids=["empty", "65 chars", "256 bytes", "parent", "backslash", "hidden", "dot dot",
         "leading space", "trailing space", "NUL", "tab", "colon", "not UTF-8", "Hangul filler",
         "choseong filler", "jungseong filler", "halfwidth filler", "zero width space"],
)  # fmt: skip
def test_a_bad_name_is_refused_with_what_is_wrong(name: str, message: str) -> None:
    with pytest.raises(InvalidNameError) as caught:
        check_speaker_name(name)

    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)  # a ParameterError, like every bad option


def test_the_byte_limit_is_a_file_name_s() -> None:
    assert MAX_NAME_BYTES == 255
    assert check_speaker_name("\u00e9" * 64) == "\u00e9" * 64  # 128 bytes: any 64 of 2 bytes fit


# --- names that read the same -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "existing"),
    [("alice", "Alice"),
     ("\u0410lice", "Alice"),  # Cyrillic capital A
     ("\uff21lice", "Alice"),  # fullwidth A
     (f"{BOLD_A}lice", "Alice"),
     ("\u212aate", "Kate"),  # Kelvin sign
     ("\u041aate", "Kate"),  # Cyrillic capital Ka, whose small letter is no k
     ("\u212bsa", "\u00c5sa"),  # Angstrom sign
     ("\ufb01ona", "fiona"),  # the ligature fi
     ("Dav\u0456d", "David"),  # Cyrillic small Byelorussian-Ukrainian i
     ("Ian", "ian"), ("Bill", "BiII")],
    ids=["case", "Cyrillic A", "fullwidth A", "bold A", "Kelvin sign", "Cyrillic Ka",
         "Angstrom sign", "ligature fi", "Cyrillic i", "I and i", "I and l"],
)  # fmt: skip
def test_names_that_read_the_same_are_lookalikes(name: str, existing: str) -> None:
    assert lookalike(name, ["Bob", existing]) == existing
    assert lookalike(existing, [name]) == name


@pytest.mark.parametrize(
    ("name", "others"),
    [("Alice", ["Alice"]), ("Alice", ["Alicia", "Bob", "Malice"]), ("Zoe", ["Zoë"]),
     ("\u043aate", ["kate"])],  # Cyrillic small ka reads as a kra, not a k
    ids=["itself", "others", "accent", "Cyrillic small ka"],
)  # fmt: skip
def test_names_that_read_differently_are_not(name: str, others: list[str]) -> None:
    assert lookalike(name, others) is None


def test_the_first_two_names_that_read_the_same_are_a_pair() -> None:
    assert lookalike_pair(["Bob", "George", "Zoe", "george", "GEORGE"]) == ("George", "george")
    assert lookalike_pair(["Bob", "Kate", "\u212aate"]) == ("Kate", "\u212aate")
    assert lookalike_pair(["Alice", "Alicia", "Zoe", "Zoë", "Alice"]) is None


def test_a_skeleton_maps_each_character_to_its_prototype() -> None:
    assert skeleton("\u0410\u212a\ufb01") == "AKfi"
    assert skeleton("\u3164") == ""  # invisible: nothing
    assert skeleton("Ren\u00e9") == "Rene\u0301"  # in NFD


@pytest.mark.parametrize(
    ("name", "fault"),
    [
        ("", "is empty"),
        ("unknown", "reads as 'unknown', the answer for a voice the model does not know"),
        ("UNKNOWN", "reads as 'unknown', the answer for a voice the model does not know"),
        ("red\x1b[31mX", "holds U+001B (a control character), which no answer can show"),
        ("Al\u200bice", "holds U+200B (ZERO WIDTH SPACE), which no answer can show"),
    ],
)
def test_label_fault_names_what_no_answer_could_give(name: str, fault: str) -> None:
    assert label_fault(name) == fault


@pytest.mark.parametrize("name", ["O'Brien", "Mr. Smith", ".hidden-ish", "José", "李雷", "a" * 70])
def test_names_folders_trained_with_stay_labels(name: str) -> None:
    assert label_fault(name) is None
