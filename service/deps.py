"""FastAPI dependencies as ``Annotated`` aliases, so route signatures read like data."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request

from pipeline.speakers import SpeakerStore
from service.compute import ComputeQueue
from service.metrics import Metrics
from service.model_store import ModelStore
from service.settings import Settings
from service.training import Trainer

__all__ = ["ComputeDep", "MetricsDep", "SettingsDep", "SpeakersDep", "StoreDep", "TrainerDep"]


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


async def _trainer(request: Request) -> Trainer:
    """The trainer, after the model store has followed a version another worker activated."""
    await request.app.state.store.follow()
    trainer: Trainer = request.app.state.trainer
    return trainer


TrainerDep = Annotated[Trainer, Depends(_trainer)]
SpeakersDep = Annotated[SpeakerStore, Depends(_app_state("speakers"))]  # the speaker store
