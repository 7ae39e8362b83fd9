"""The bundle being served, swapped atomically on reload.

Requests take the current bundle once (``store.current``) and finish on it, so a reload never
changes the model under a request in flight. A bundle that fails to load leaves the old one.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from threadpoolctl import threadpool_limits

from pipeline.bundle import Bundle, load_bundle
from service.errors import NotReadyError

__all__ = ["ModelStore"]


class ModelStore:
    def __init__(self) -> None:
        self._bundle: Bundle | None = None
        self._lock = asyncio.Lock()

    @property
    def ready(self) -> bool:
        return self._bundle is not None

    @property
    def current(self) -> Bundle:
        bundle = self._bundle
        if bundle is None:
            raise NotReadyError("no model is loaded yet")
        return bundle

    async def load(self, path: Path) -> Bundle:
        """Load ``path`` off the event loop and make it current; raises ``BundleError``."""
        async with self._lock:  # one reload at a time; predictions do not wait for it
            bundle = await run_in_threadpool(load_bundle, path)
            # After loading: TensorFlow brings BLAS and OpenMP pools of its own. Their threads
            # spin on the histogram's small matrix product, 10-20x slower than one thread, and
            # requests already run in parallel.
            threadpool_limits(limits=1, user_api="blas")
            self._bundle = bundle
            return bundle
