"""FastAPI dependencies as ``Annotated`` aliases, so route signatures read like data."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request

from pipeline.paths import nearest_existing
from pipeline.speakers import SpeakerStore
from service.compute import ComputeQueue
from service.errors import StoreUnavailableError
from service.metrics import Metrics
from service.model_store import ModelStore
from service.settings import Settings
from service.training import Trainer

__all__ = ["ComputeDep", "MetricsDep", "SettingsDep", "SpeakersDep", "StoreDep", "TrainerDep"]

log = logging.getLogger("voiceid.service")
_missing_stores: set[Path] = set()  # logged as not folders, until they are folders again


def _app_state(name: str) -> Callable[[Request], Awaitable[Any]]:
    """A dependency that returns ``app.state.<name>``, set once by ``create_app``."""

    async def get(request: Request) -> Any:
        return getattr(request.app.state, name)

    return get


SettingsDep = Annotated[Settings, Depends(_app_state("settings"))]
ComputeDep = Annotated[ComputeQueue, Depends(_app_state("compute"))]


async def _store(request: Request) -> ModelStore:
    """The model store, after it has followed a reload another worker made."""
    store: ModelStore = request.app.state.store
    await store.follow()
    return store


StoreDep = Annotated[ModelStore, Depends(_store)]
MetricsDep = Annotated[Metrics, Depends(_app_state("metrics"))]


def _check_store_folder(path: Path) -> None:
    """:class:`StoreUnavailableError` when the speaker store's folder (or the nearest one above
    it, while it is not made yet) is no longer a folder: start-up checked it (``--data-dir``),
    but the server's files may change while it runs. The client is not told the path."""
    found = nearest_existing(path)
    if found.is_dir():
        _missing_stores.discard(path)
        return
    if path not in _missing_stores:  # once, not on every request while it lasts
        _missing_stores.add(path)
        log.error("the speaker store %s cannot be used: %s is not a folder", path, found)
    raise StoreUnavailableError(
        "the speaker store cannot be used: its folder was replaced by a file since the "
        "server started (the server's log names it); the server's operator must put the "
        "folder back"
    )


async def _speakers(request: Request) -> SpeakerStore:
    """The speaker store, once its folder is seen to be one."""
    speakers: SpeakerStore = request.app.state.speakers
    _check_store_folder(speakers.root)
    return speakers


async def _trainer(request: Request) -> Trainer:
    """The trainer, after the model store has followed a version another worker activated,
    once the speaker store's folder, where jobs and versions live, is seen to be one."""
    await request.app.state.store.follow()
    trainer: Trainer = request.app.state.trainer
    _check_store_folder(trainer.data_dir)
    return trainer


TrainerDep = Annotated[Trainer, Depends(_trainer)]
SpeakersDep = Annotated[SpeakerStore, Depends(_speakers)]  # the speaker store
