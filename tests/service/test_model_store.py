"""The model store: the load error it keeps, switches its workers cannot share, and its heap
handling (what a load leaves alive is frozen, a reload thaws it)."""

from __future__ import annotations

import asyncio
import errno
import gc
import os
import weakref
from pathlib import Path

import pytest

from pipeline.bundle import Bundle, load_bundle
from pipeline.errors import BundleError
from service.errors import ModelNotSwitchedError
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


def _follow_while_missing(
    tmp_path: Path, bundle_copy: Path, retry_s: float
) -> tuple[list[str], list[str]]:
    """One worker loads ``bundle_copy``; the other follows twice while its folder is away and
    once after it is back. The folders the second served after each follow, and those its
    follows tried to load."""
    active = tmp_path / "active.json"
    first, second = ModelStore(active), ModelStore(active, follow_retry_s=retry_s)
    away = tmp_path / "away"
    served: list[str] = []

    async def main() -> None:
        await first.start(MODEL_DIR)
        await second.start(MODEL_DIR)
        await first.load(bundle_copy)
        bundle_copy.rename(away)
        for _ in range(2):
            await second.follow()
            served.append(second.current.path.name)
        away.rename(bundle_copy)
        await second.follow()
        served.append(second.current.path.name)

    tried: list[str] = []
    real = load_bundle

    def counted(path: Path) -> Bundle:
        tried.append(Path(path).name)
        return real(path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("service.model_store.load_bundle", counted)
        asyncio.run(main())
    return served, tried


def test_a_worker_that_cannot_follow_serves_on_and_follows_when_it_can(
    tmp_path: Path, bundle_copy: Path
) -> None:
    served, tried = _follow_while_missing(tmp_path, bundle_copy, retry_s=0)

    assert served == [MODEL_DIR.name, MODEL_DIR.name, "copy"]
    assert tried == [MODEL_DIR.name, MODEL_DIR.name, "copy", "copy", "copy", "copy"]


def test_a_failed_follow_is_tried_again_only_after_the_retry_interval(
    tmp_path: Path, bundle_copy: Path
) -> None:
    served, tried = _follow_while_missing(tmp_path, bundle_copy, retry_s=3600)

    assert served == [MODEL_DIR.name] * 3  # within the hour, the second worker waits
    assert tried == [MODEL_DIR.name, MODEL_DIR.name, "copy", "copy"]


def _full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes of the active-model file fail as on a full disk."""

    def full(path: Path, record: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr("service.model_store.replace_json", full)


def test_a_switch_the_workers_cannot_share_changes_no_worker_s_model(
    tmp_path: Path, bundle_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker that switched and those that did not would serve different models."""
    active = tmp_path / "active.json"
    first, second = ModelStore(active), ModelStore(active)

    async def main() -> None:
        await first.start(MODEL_DIR)
        await second.start(MODEL_DIR)
        _full_disk(monkeypatch)
        with pytest.raises(ModelNotSwitchedError) as caught:
            await first.load(bundle_copy)
        await second.follow()
        assert str(caught.value) == (
            f"the model was not changed: this server's workers share which model they serve "
            f"through a file in its temporary folder, which cannot be written (No space left "
            f"on device); each serves the model it had ({load_bundle(MODEL_DIR).version})"
        )

    asyncio.run(main())

    assert (first.current.path, second.current.path) == (MODEL_DIR, MODEL_DIR)


def test_the_first_model_serves_though_the_workers_cannot_share_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _full_disk(monkeypatch)
    store = ModelStore(tmp_path / "active.json")

    asyncio.run(store.start(MODEL_DIR))

    assert store.current.path == MODEL_DIR
