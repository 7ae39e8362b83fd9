"""Paths as callers give them, checks on a path to be written, made before the work that
produces what goes there, the folder for temporary files, and a small file replaced whole or
not at all."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from pipeline.errors import ParameterError

__all__ = [
    "STALE_TEMPORARY_S",
    "as_path",
    "file_in_the_way",
    "nearest_existing",
    "remove_stale",
    "replace_json",
    "replace_text",
    "temp_dir",
]

STALE_TEMPORARY_S = 3600  # s: a temporary file or folder this old is a killed write's


def as_path(name: str, value: object) -> Path:
    """``value`` (a ``str`` or an ``os.PathLike`` of one) as a :class:`Path`; else
    :class:`ParameterError` naming the argument ``name`` and the value."""
    text = os.fspath(value) if isinstance(value, str | os.PathLike) else None
    if not isinstance(text, str):
        raise ParameterError(f"{name}={value!r} must be a path: a str or an os.PathLike")
    if "\0" in text:
        raise ParameterError(f"{name}={text!r} holds a NUL character, which no path can hold")
    return Path(text)


def file_in_the_way(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` when it is not a folder (so that nothing can be
    written at ``path``), else None."""
    found = nearest_existing(path.absolute().parent)
    return None if found.is_dir() else found


def nearest_existing(path: Path) -> Path:
    """``path`` itself when something is there (a dangling link too), else its nearest parent
    that exists (there is one: a path's last parent is ``/`` or ``.``)."""
    return next(p for p in (path, *path.parents) if os.path.lexists(p))


def temp_dir() -> str:
    """:mod:`tempfile`'s folder (``$TMPDIR``, else ``/tmp`` and the like); :class:`ParameterError`
    saying what to mount when none of them can be written, as on a read-only root filesystem:
    tempfile's own error, raised deep in a library, would not say what to do."""
    try:
        return tempfile.gettempdir()
    except FileNotFoundError as exc:
        raise ParameterError(
            f"no folder for temporary files can be written ({exc.strerror}): set TMPDIR to a "
            "folder this user may write in, or, on a read-only root filesystem, mount a tmpfs "
            "at /tmp (docker run --tmpfs /tmp)"
        ) from None


def replace_json(path: Path, record: object) -> None:
    """Replace the file ``path`` by ``record`` as JSON, as :func:`replace_text` does."""
    replace_text(path, json.dumps(record))


def replace_text(path: Path, text: str) -> None:
    """Replace the file ``path`` by ``text``, in one rename: a reader sees the old file or the
    new, never half of one. A write that fails (a full disk) raises, and leaves the old file as
    it was and no temporary file beside it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def remove_stale(paths: Iterable[Path]) -> None:
    """Remove those of ``paths`` (temporary files or folders of writes) that are older than
    ``STALE_TEMPORARY_S``: what a write killed part way (``kill -9``, no ``finally``) left. A
    link is never followed, and a path that cannot be looked at is left."""
    now = time.time()
    for path in paths:
        try:
            if now - path.lstat().st_mtime <= STALE_TEMPORARY_S:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink()
        except OSError:
            continue
