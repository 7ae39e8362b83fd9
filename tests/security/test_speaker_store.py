"""Hostile speaker names and clip ids: refused with what is wrong, never a path outside the
store, never a 5xx. Names are sent percent-encoded, as an attacker would, so that no client
normalises them on the way (httpx folds a literal `..` segment into its parent)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pipeline.speakers import clip_id
from tests.helpers import ClientFactory

ALLOWED = "use only letters, digits, spaces, '-', '_' and '.'"
INVISIBLE = "which is invisible: use only visible letters, digits, spaces, '-', '_' and '.'"
BOLD_A = "\U0001d400"  # MATHEMATICAL BOLD CAPITAL A: four bytes of UTF-8
HOSTILE_NAMES = {
    "../x": "speaker name '../x' holds a path separator '/'",
    "a/b": "speaker name 'a/b' holds a path separator '/'",
    "..\\x": "speaker name '..\\\\x' holds a path separator '\\\\'",
    ".hidden": "speaker name '.hidden' starts with '.'",
    "..": "speaker name '..' starts with '.'",
    ".lock": "speaker name '.lock' starts with '.'",
    "x" * 65: f"speaker name {'x' * 65!r} is 65 characters long: at most 64 are allowed",
    "a\x00b": f"speaker name 'a\\x00b' holds '\\x00': {ALLOWED}",
    "": "speaker name is empty: use 1-64 letters, digits, spaces, '-', '_' and '.'",
    BOLD_A * 64: f"speaker name {BOLD_A * 64!r} is 256 bytes long in UTF-8: at most 255 are "
    "allowed (a file name's limit); use fewer or shorter characters",
    "Alice\u3164": f"speaker name 'Alice\u3164' holds U+3164 (HANGUL FILLER), {INVISIBLE}",
    "Alice\u115f": f"speaker name 'Alice\u115f' holds U+115F (HANGUL CHOSEONG FILLER), {INVISIBLE}",
    "\u1160": f"speaker name '\u1160' holds U+1160 (HANGUL JUNGSEONG FILLER), {INVISIBLE}",
    "Bob\uffa0": f"speaker name 'Bob\uffa0' holds U+FFA0 (HALFWIDTH HANGUL FILLER), {INVISIBLE}",
}


# Routes match a path up to a line break: a name with one matches no route at all.
NO_ROUTE = {"detail": "Not Found"}


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "inside" / "speakers"


@pytest.fixture
def enrolled(
    make_client: ClientFactory, store_dir: Path, demo_clips: dict[str, list[bytes]]
) -> TestClient:
    """A client whose store holds one clip of Zoë."""
    client = make_client(data_dir=store_dir)
    files = [("files", ("a.wav", demo_clips["Stranger"][0], "audio/wav"))]
    assert client.post("/speakers/Zoë/clips", files=files).status_code == 200
    return client


def encoded(text: str) -> str:
    """Every byte of ``text`` percent-encoded: dots too, which clients would otherwise fold."""
    return "".join(f"%{byte:02X}" for byte in text.encode())


def _everything_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("name", list(HOSTILE_NAMES), ids=list(range(len(HOSTILE_NAMES))))
def test_a_hostile_name_is_422_on_every_route(
    enrolled: TestClient, store_dir: Path, demo_clips: dict[str, list[bytes]], name: str
) -> None:
    before = _everything_under(store_dir.parents[1])
    path = f"/speakers/{encoded(name)}"
    files = [("files", ("a.wav", demo_clips["Stranger"][1], "audio/wav"))]

    answers = [
        enrolled.post(f"{path}/clips", files=files),
        enrolled.delete(path),
        enrolled.delete(f"{path}/clips/{clip_id(demo_clips['Stranger'][0])}"),
    ]
    if name:  # GET /speakers/ with an empty name is the same path as GET /speakers/
        answers.append(enrolled.get(path))

    for answer in answers:
        assert (answer.status_code, answer.json()) == (422, {"detail": HOSTILE_NAMES[name]})
    assert _everything_under(store_dir.parents[1]) == before


def test_a_name_with_a_line_break_reaches_no_route(enrolled: TestClient, store_dir: Path) -> None:
    before = _everything_under(store_dir.parents[1])

    files = {"files": ("a.wav", b"x")}
    answers = [enrolled.get("/speakers/a%0Ab"), enrolled.delete("/speakers/a%0Ab"),
               enrolled.post("/speakers/a%0Ab/clips", files=files)]  # fmt: skip

    assert [(a.status_code, a.json()) for a in answers] == [(404, NO_ROUTE)] * 3
    assert _everything_under(store_dir.parents[1]) == before


@pytest.mark.parametrize(
    "clip",
    ["..", "...", "../..", "0123456789abcdef", "*", ".lock", "a.wav", "\x00", "x" * 300],
)  # fmt: skip
def test_a_hostile_clip_id_is_404_and_removes_nothing(
    enrolled: TestClient, store_dir: Path, clip: str
) -> None:
    before = _everything_under(store_dir.parents[1])

    answer = enrolled.delete(f"/speakers/Zo%C3%AB/clips/{encoded(clip)}")

    if "/" in clip:  # then the route for a speaker takes it, and the name holds the slash
        assert (answer.status_code, answer.json()) == (
            422, {"detail": f"speaker name 'Zoë/clips/{clip}' holds a path separator '/'"}
        )  # fmt: skip
    else:
        assert (answer.status_code, answer.json()) == (
            404, {"detail": f"speaker 'Zoë' has no clip {clip!r} in the store"}
        )  # fmt: skip
    assert _everything_under(store_dir.parents[1]) == before


def test_a_name_that_is_a_symlink_out_of_the_store_is_no_speaker(
    enrolled: TestClient, store_dir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    (outside / "victim").mkdir(parents=True)
    (outside / "victim" / "0123456789abcdef.wav").write_bytes(b"precious")
    (store_dir / "Link").symlink_to(outside / "victim")

    listed = [s["name"] for s in enrolled.get("/speakers").json()["speakers"]]
    removed = enrolled.delete("/speakers/Link")
    clip = enrolled.delete("/speakers/Link/clips/0123456789abcdef")

    assert "Link" not in listed
    assert (removed.status_code, clip.status_code) == (404, 404)
    assert (outside / "victim" / "0123456789abcdef.wav").read_bytes() == b"precious"
