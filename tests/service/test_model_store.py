"""The model store's heap handling: what a load leaves alive is frozen, a reload thaws it."""

from __future__ import annotations

import asyncio
import gc
import weakref

from service.model_store import ModelStore
from tests.helpers import MODEL_DIR


class _Cycle:
    """An object only the cyclic collector can free: it refers to itself."""

    def __init__(self) -> None:
        self.me = self


def test_a_load_freezes_what_is_alive_and_a_reload_frees_what_died_since() -> None:
    store = ModelStore()
    garbage_to_be = _Cycle()
    ref = weakref.ref(garbage_to_be)

    asyncio.run(store.load(MODEL_DIR))
    frozen = gc.get_freeze_count()
    del garbage_to_be
    gc.collect()
    survived_collection = ref() is not None
    asyncio.run(store.load(MODEL_DIR))

    assert frozen > 100_000  # all the imports' objects: kept out of every later collection
    assert survived_collection  # frozen objects are not walked, even when unreachable
    assert ref() is None  # the reload thawed, collected and froze again
    assert store.current.path == MODEL_DIR
