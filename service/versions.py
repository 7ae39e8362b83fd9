"""The model versions a server can serve: the configured bundle and those its jobs trained.

Trained versions live in ``<data_dir>/.versions/<UTC time>-<job>/``, so their folder names sort
oldest first; a version's id is its bundle's version (the network's checksum, 12 hex digits).
Which one is active survives a restart (``active.json``) as long as the server is configured
with the same model the versions were trained from.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.bundle import Bundle, load_bundle, read_metadata_json
from pipeline.errors import BundleError
from pipeline.paths import replace_json
from service.errors import NotFoundError
from service.model_store import without_paths

__all__ = ["VERSION_ID", "Versions"]

log = logging.getLogger("voiceid.service")
VERSION_ID = re.compile(r"[0-9a-f]{12}")
ACTIVE_FILE = "active.json"
_Files = tuple[tuple[str, int, int, int], ...]  # a folder's entries: name, inode, size, mtime


def _summary(path: Path) -> dict[str, Any] | None:
    """What ``GET /models`` says of the bundle at ``path``, or None when it is not one."""
    try:
        meta = read_metadata_json(path)
        return {
            "version": str(meta["network_sha256"])[:12],
            "name": str(meta["name"]),
            "created": str(meta["created"]),
            "labels": list(meta["labels"]),
            "metrics": dict(meta["metrics"]),
        }
    except (BundleError, KeyError, TypeError, ValueError):
        return None


def _files(path: Path) -> _Files | None:
    """What changes when any file of the folder ``path`` changes; None when it cannot be read."""
    try:
        with os.scandir(path) as entries:
            stats = [(e.name, e.stat(follow_symlinks=True)) for e in entries]
    except OSError:
        return None
    return tuple(sorted((name, st.st_ino, st.st_size, st.st_mtime_ns) for name, st in stats))


@dataclass
class Versions:
    """The configured bundle and the trained ones under ``root``."""

    configured: Path
    root: Path

    def __post_init__(self) -> None:
        # Bundles load by their resolved path: compare like with like.
        # (realpath: a path the OS refuses, a symbolic link loop, stays as given.)
        self.configured = Path(os.path.realpath(self.configured))
        self.root = Path(os.path.realpath(self.root))
        self._checked: dict[Path, tuple[_Files | None, str | None]] = {}

    def configured_name(self) -> str:
        summary = _summary(self.configured)
        return summary["name"] if summary is not None else self.configured.name

    def new_folder(self, job: str) -> Path:
        """Where job ``job`` writes its version (the bundle writer creates it atomically)."""
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{job}"

    def folder_of(self, job: str) -> Path | None:
        """The version job ``job`` wrote (see ``new_folder``), or None when it wrote none."""
        found = sorted(self.root.glob(f"*-{job}")) if self.root.is_dir() else []
        return next((p for p in found if p.is_dir() and not p.name.startswith(".")), None)

    def _trained(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def _all(self) -> list[tuple[Path, dict[str, Any]]]:
        found = []
        for path, source in [(self.configured, "configured")] + [
            (p, "trained") for p in self._trained()
        ]:
            summary = _summary(path)
            if summary is not None:
                found.append((path, summary | {"source": source}))
        return found

    def problem(self, path: Path) -> str | None:
        """Why the bundle at ``path`` does not load, as activating it would answer, or None.
        Loaded once for each state of its files: a listing costs a ``stat`` a file after that."""
        files = _files(path)
        checked = self._checked.get(path)
        if checked is not None and checked[0] == files:
            return checked[1]
        try:
            load_bundle(path)
            problem = None
        except BundleError as exc:
            problem = without_paths(str(exc), path)
        self._checked[path] = (files, problem)
        return problem

    def entries(self, active: Bundle | None) -> list[dict[str, Any]]:
        """Every version, oldest first (the configured one first), each marked active or not."""
        current = active.version if active is not None else None
        return [entry | {"active": entry["version"] == current, "problem": self.problem(path)}
                for path, entry in self._all()]  # fmt: skip

    def entry_of(self, path: Path, active: Bundle | None) -> dict[str, Any]:
        for found, entry in self._all():
            if found == path:
                served = active is not None and entry["version"] == active.version
                return entry | {"active": served, "problem": self.problem(path)}
        raise NotFoundError(f"no model version at {path.name!r}")

    def find(self, version: str) -> Path:
        """The folder of ``version``; :class:`NotFoundError` when no version has that id."""
        if VERSION_ID.fullmatch(version):
            for path, entry in self._all():
                if entry["version"] == version:
                    return path
        raise NotFoundError(f"no model version {version!r}: GET /models lists them")

    def keep_new(self, out: Path) -> Path:
        """``out``, a version just written, or the older version with the same network (a job
        that learnt nothing new), in which case ``out`` is removed."""
        new = _summary(out)
        if new is None:
            raise BundleError(f"the training process wrote no bundle at {out.name!r}")
        for path, entry in self._all():
            if path != out and entry["version"] == new["version"]:
                shutil.rmtree(out, ignore_errors=True)
                return path
        return out

    def remember_active(self, bundle: Bundle) -> None:
        """Record ``bundle`` as the active version, for the next start of the server. Where
        the store refuses (read-only, full), the version is served all the same, and the log
        says that a restart will not serve it."""
        configured = _summary(self.configured)
        if configured is None:
            return
        record = {"path": str(bundle.path), "version": bundle.version,
                  "configured": configured["version"]}  # fmt: skip
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            replace_json(self.root / ACTIVE_FILE, record)
        except OSError as exc:
            log.warning("version %s is served, but a restarted server will not serve it: the "
                        "choice cannot be written to the speaker store (%s)", bundle.version,
                        exc.strerror or exc)  # fmt: skip

    def remembered(self) -> Path | None:
        """The version active when the server last ran, if it was trained from the model the
        server is configured with now; else None (serve the configured one)."""
        try:
            record = json.loads((self.root / ACTIVE_FILE).read_text())
            version, configured_was = str(record["version"]), str(record["configured"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        configured = _summary(self.configured)
        if configured is None or configured["version"] != configured_was:
            return None
        try:
            return self.find(version)
        except NotFoundError:
            return None
