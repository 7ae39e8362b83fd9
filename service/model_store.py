"""The bundle being served, swapped atomically on reload, and why there is none.

Requests take the current bundle once (``store.current``) and finish on it, so a reload never
changes the model under a request in flight. A bundle that fails to load leaves the old one, and
the store keeps the reason, which ``/ready`` gives while no model is loaded.
"""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import numpy as np
from starlette.concurrency import run_in_threadpool
from threadpoolctl import threadpool_limits

from pipeline.bundle import Bundle, load_bundle
from pipeline.errors import BundleError
from pipeline.features import histogram
from pipeline.predict import predict_features
from service.errors import NotReadyError

__all__ = ["NOT_READY", "ModelStore"]

NOT_READY = "no model is loaded yet"


def _load_and_warm_up(path: Path) -> Bundle:
    """Load a bundle and run one clip through it, so the first request does not pay for
    librosa's first-call setup (numba compiling its kernels)."""
    bundle = load_bundle(path)
    cfg = bundle.feature_config
    t = np.arange(cfg.sample_rate // 2) / cfg.sample_rate
    predict_features(bundle, histogram((0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), cfg))
    return bundle


class ModelStore:
    """The one owner of the served bundle and of the last load error."""

    def __init__(self) -> None:
        self._bundle: Bundle | None = None
        self._lock = asyncio.Lock()
        self.load_error: str | None = None  # why the last load failed; None after a success

    @property
    def ready(self) -> bool:
        return self._bundle is not None

    @property
    def current(self) -> Bundle:
        bundle = self._bundle
        if bundle is None:
            raise NotReadyError(NOT_READY)
        return bundle

    def not_ready_reason(self) -> str:
        """What ``/ready`` says while no model is loaded: that, and why, when a load failed."""
        return NOT_READY + (f": {self.load_error}" if self.load_error else "")

    async def load(self, path: Path) -> Bundle:
        """Load ``path`` off the event loop and make it current; raises ``BundleError``."""
        async with self._lock:  # one reload at a time; predictions do not wait for it
            try:
                bundle = await run_in_threadpool(_load_and_warm_up, path)
            except BundleError as exc:
                self.load_error = str(exc)
                raise
            # BLAS threads spin on the histogram's small matrix product, many times slower
            # than one thread, and requests already run in parallel. After loading, in case
            # the load brought in a BLAS of its own.
            threadpool_limits(limits=1, user_api="blas")
            self._bundle, self.load_error = bundle, None
            _settle_heap()
            return bundle


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
