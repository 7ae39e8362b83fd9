"""The bundle being served, swapped atomically on reload, and why there is none.

Requests take the current bundle once (``store.current``) and finish on it, so a reload never
changes the model under a request in flight. A bundle that fails to load leaves the old one, and
the store keeps the reason, which ``/ready`` gives while no model is loaded.

With several worker processes, a reload reaches one of them. So that all serve the same model,
the store can share an *active-model file*: each successful load rewrites it (atomically, by
rename), and before each request every worker compares the file's stat with the one it last
followed (one ``stat`` call) and loads what it names when it changed. A worker that cannot load
it (the folder not there yet, or damaged) serves on with its old model and tries again every
``FOLLOW_RETRY_S`` while the file names it.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from threadpoolctl import threadpool_limits

from pipeline.bundle import Bundle, load_bundle
from pipeline.errors import BundleError
from pipeline.paths import replace_json
from service.errors import ForbiddenError, ModelNotSwitchedError, NotReadyError

__all__ = ["NOT_READY", "ModelStore", "inside_root", "without_paths"]

NOT_READY = "no model is loaded yet"
FOLLOW_RETRY_S = 1.0  # a worker that could not follow the active-model file tries again after
log = logging.getLogger("voiceid.service")
_Stamp = tuple[int, int, int]  # inode, size and mtime of the active-model file
WarmUp = Callable[[Bundle], object]


def inside_root(requested: str, root: Path) -> Path:
    """``requested`` as a path, if it lies inside ``root`` once symbolic links are followed.

    Raises :class:`ForbiddenError` otherwise, with the same words whether or not the path
    exists, so that the answer tells nothing of the server's disk outside the root.
    """
    try:
        real, real_root = os.path.realpath(requested), os.path.realpath(root)
    except (OSError, ValueError):  # a path the OS refuses: loading it says why, naming no file
        return Path(requested)
    if os.path.commonpath([real, real_root]) != real_root:
        raise ForbiddenError(
            f"model_dir {requested!r} is outside the models root: bundles load from there only"
        )
    return Path(requested)


def without_paths(message: str, path: Path) -> str:
    """``message`` with ``path`` (as given and resolved) shortened to its folder name."""
    try:
        shown = [str(path.resolve()), str(path)]
    except (OSError, ValueError, RuntimeError):  # a path the OS refuses is shown as given
        shown = [str(path)]
    for text in shown:
        message = message.replace(text, path.name)
    return message


def _stamp(path: Path | str) -> _Stamp | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _write_active(active: Path, bundle: Bundle) -> _Stamp | None:
    """Point ``active`` at ``bundle``: a new file renamed over the old, never half written."""
    replace_json(active, {"path": str(bundle.path), "version": bundle.version})
    return _stamp(active)


def _load_and_warm_up(path: Path, warm_up: WarmUp | None) -> Bundle:
    """Load a bundle and run ``warm_up`` on it, so the first request does not pay for the
    first calls' setup."""
    bundle = load_bundle(path)
    if warm_up is not None:
        warm_up(bundle)
    return bundle


class ModelStore:
    """The one owner of the served bundle and of the last load error. ``warm_up`` runs on
    each bundle loaded before it serves (``service.inference.warm_up``)."""

    def __init__(
        self,
        active_file: Path | None = None,
        warm_up: WarmUp | None = None,
        follow_retry_s: float = FOLLOW_RETRY_S,
    ) -> None:
        self._warm_up = warm_up
        self._bundle: Bundle | None = None
        self._lock = asyncio.Lock()
        self.load_error: str | None = None  # why the last load failed; None after a success
        self._active = active_file  # shared by the workers of one server, when there are several
        self._active_name = str(active_file)
        self._followed: _Stamp | None = None  # the active file's stat when last read or written
        self._follow_retry_s = follow_retry_s
        self._failed: tuple[_Stamp, float] | None = None  # a stamp not followed, and when

    @property
    def ready(self) -> bool:
        return self._bundle is not None

    @property
    def current(self) -> Bundle:
        bundle = self._bundle
        if bundle is None:
            raise NotReadyError(self.not_ready_reason())
        return bundle

    def not_ready_reason(self) -> str:
        """What ``/ready`` says while no model is loaded: that, and why, when a load failed."""
        return NOT_READY + (f": {self.load_error}" if self.load_error else "")

    async def load(self, path: Path, *, first: bool = False) -> Bundle:
        """Load ``path`` off the event loop and make it current, for every worker sharing the
        active-model file; raises ``BundleError``, and :class:`ModelNotSwitchedError` when that
        file cannot be written, the model being the same as before on every worker (the
        ``first`` model serves all the same: no worker serves another yet)."""
        async with self._lock:  # one reload at a time; predictions do not wait for it
            bundle = await self._read(path)
            if self._active is not None:
                try:
                    self._followed = _write_active(self._active, bundle)
                except OSError as exc:
                    self._not_shared(exc, first=first)
            self._install(bundle)
            return bundle

    def _not_shared(self, exc: OSError, *, first: bool) -> None:
        """Say that the active-model file cannot be written: raise, or for the first model,
        log it."""
        had = f" ({self._bundle.version})" if self._bundle is not None else ""
        error = ModelNotSwitchedError(
            "the model was not changed: this server's workers share which model they serve "
            "through a file in its temporary folder, which cannot be written "
            f"({exc.strerror or exc}); each serves the model it had{had}"
        )
        if not first:
            raise error from exc
        log.error("other workers will not follow reloads from this one: %s", exc)

    async def start(self, configured: Path) -> Bundle:
        """The first load: what the active-model file names, when another worker has
        written it, else ``configured``."""
        if self._active is not None and self._active.exists():
            await self.follow()
            if self._bundle is not None:
                return self._bundle
        return await self.load(configured, first=True)

    async def follow(self) -> None:
        """Serve what the active-model file names, if another worker changed it since."""
        # Asked on every request: os.stat on the path as text costs a fraction of Path.stat.
        if self._active is None or _stamp(self._active_name) == self._followed:
            return
        async with self._lock:
            stamp = _stamp(self._active)
            if stamp == self._followed or stamp is None or self._waiting(stamp):
                return
            try:
                path = Path(json.loads(self._active.read_text())["path"])
                await self._swap_in(path)
            except (OSError, ValueError, KeyError, TypeError, BundleError) as exc:
                if self._failed is None or self._failed[0] != stamp:  # said once, tried on
                    log.error("cannot follow the active model (trying again every %g s): %s",
                              self._follow_retry_s, exc)  # fmt: skip
                self._failed = (stamp, time.monotonic())  # the old model serves on meanwhile
                return
            self._followed, self._failed = stamp, None

    def _waiting(self, stamp: _Stamp) -> bool:
        """Whether ``stamp`` failed to load less than ``follow_retry_s`` ago."""
        failed = self._failed
        return (
            failed is not None
            and failed[0] == stamp
            and (time.monotonic() - failed[1] < self._follow_retry_s)
        )

    async def _swap_in(self, path: Path) -> Bundle:
        bundle = await self._read(path)
        self._install(bundle)
        return bundle

    async def _read(self, path: Path) -> Bundle:
        """The bundle at ``path``, loaded and warmed up, not yet served."""
        try:
            return await run_in_threadpool(_load_and_warm_up, path, self._warm_up)
        except BundleError as exc:
            self.load_error = without_paths(str(exc), path)
            raise

    def _install(self, bundle: Bundle) -> None:
        """Serve ``bundle`` from the next request on."""
        # BLAS threads spin on the histogram's small matrix product, many times slower
        # than one thread, and requests already run in parallel. After loading, in case
        # the load brought in a BLAS of its own.
        threadpool_limits(limits=1, user_api="blas")
        self._bundle, self.load_error = bundle, None
        _settle_heap()


def _settle_heap() -> None:
    """Collect what loading left behind, then exempt everything alive from the cyclic GC.

    The imports (librosa, numba, scipy, FastAPI) leave hundreds of thousands of objects, and a
    full collection walks them all with the event loop stopped, every few thousand requests
    under load: a pause that shows in the tail latency (``python -m bench.serve``). Frozen, they
    are never walked again; requests' own garbage is still collected. Unfreezing first lets the
    bundle a reload replaced be collected too.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
