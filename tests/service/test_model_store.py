"""The model store: the load error it keeps, and its heap handling (what a load leaves alive is
frozen, a reload thaws it)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from pathlib import Path

import pytest

from pipeline.bundle import Bundle
from pipeline.errors import BundleError
from service.model_store import ModelStore
from tests.helpers import MODEL_DIR


class _Cycle:
    """An object only the cyclic collector can free: it refers to itself."""

    def __init__(self) -> None:
        self.me = self


@pytest.mark.heap_freeze
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


def test_the_store_keeps_why_a_load_failed_until_one_succeeds(tmp_path: Path) -> None:
    store = ModelStore()
    missing = tmp_path / "missing"

    with pytest.raises(BundleError):
        asyncio.run(store.load(missing))
    failed = (store.ready, store.not_ready_reason())
    asyncio.run(store.load(MODEL_DIR))

    assert failed == (
        False,
        "no model is loaded yet: model bundle 'missing' does not exist or is not a folder",
    )
    assert (store.ready, store.load_error) == (True, None)


def test_a_failed_reload_keeps_the_model_and_records_the_reason(tmp_path: Path) -> None:
    store = ModelStore()
    asyncio.run(store.load(MODEL_DIR))

    with pytest.raises(BundleError):
        asyncio.run(store.load(tmp_path))

    assert store.current.path == MODEL_DIR
    assert store.load_error == f"'{tmp_path.name}' is not a model bundle: metadata.json is missing"


def test_each_bundle_is_warmed_up_before_it_serves(bundle_copy: Path) -> None:
    warmed: list[tuple[str, bool]] = []
    store: ModelStore

    def warm_up(bundle: Bundle) -> None:
        warmed.append((bundle.version, store.ready and store.current is bundle))

    store = ModelStore(warm_up=warm_up)

    async def main() -> tuple[str, str]:
        first = await store.start(MODEL_DIR)
        second = await store.load(bundle_copy)
        return first.version, second.version

    first, second = asyncio.run(main())

    assert warmed == [(first, False), (second, False)]  # neither served before its warm-up
