"""``pipeline.paths``: what stands in the way of a path to be written."""

from __future__ import annotations

from pathlib import Path

from pipeline.paths import file_in_the_way


def test_the_nearest_existing_ancestor_that_is_a_file_is_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_bytes(b"")

    assert file_in_the_way(tmp_path / "a" / "f" / "b" / "c") == tmp_path / "a" / "f"
    assert file_in_the_way(tmp_path / "a" / "new" / "c") is None
    assert file_in_the_way(tmp_path / "a" / "f") is None  # the path itself is the caller's
