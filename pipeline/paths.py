"""Checks on a path to be written, made before the work that produces what goes there."""

from __future__ import annotations

from pathlib import Path

__all__ = ["file_in_the_way"]


def file_in_the_way(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` when it is not a folder (so that nothing can be
    written at ``path``), else None."""
    for parent in path.absolute().parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None
