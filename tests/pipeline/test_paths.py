"""``pipeline.paths``: what stands in the way of a path to be written, and the temporary folder."""

from __future__ import annotations

import errno
import tempfile
from pathlib import Path

import pytest

from pipeline.errors import ParameterError
from pipeline.paths import file_in_the_way, temp_dir


def test_the_nearest_existing_ancestor_that_is_a_file_is_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_bytes(b"")

    assert file_in_the_way(tmp_path / "a" / "f" / "b" / "c") == tmp_path / "a" / "f"
    assert file_in_the_way(tmp_path / "a" / "new" / "c") is None
    assert file_in_the_way(tmp_path / "a" / "f") is None  # the path itself is the caller's


NO_TEMP = "No usable temporary directory found in ['/tmp', '/var/tmp', '/usr/tmp', '/app']"
NO_TEMP_MESSAGE = (
    f"no folder for temporary files can be written ({NO_TEMP}): set TMPDIR to a folder this "
    "user may write in, or, on a read-only root filesystem, mount a tmpfs at /tmp "
    "(docker run --tmpfs /tmp)"
)


def no_temp_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a read-only root filesystem: tempfile finds no folder it may write in."""

    def none_usable() -> str:
        raise FileNotFoundError(errno.ENOENT, NO_TEMP)

    monkeypatch.setattr(tempfile, "gettempdir", none_usable)


def test_the_temporary_folder_is_tempfiles() -> None:
    assert temp_dir() == tempfile.gettempdir()


def test_no_writable_temporary_folder_says_what_to_mount(monkeypatch: pytest.MonkeyPatch) -> None:
    no_temp_dir(monkeypatch)

    with pytest.raises(ParameterError) as error:
        temp_dir()

    assert str(error.value) == NO_TEMP_MESSAGE
