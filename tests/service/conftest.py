"""Shared fixtures: demo clips, the shipped bundle, a quickly trained second bundle, clients."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pipeline.bundle import Bundle, load_bundle
from pipeline.config import TrainConfig
from pipeline.demo.synth import STRANGER, write_demo_data
from pipeline.train import TrainOptions, train
from service.app import create_app
from service.settings import Settings
from tests.service.helpers import MODEL_DIR, ClientFactory


@pytest.fixture(autouse=True)
def _no_voiceid_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the test alone, never from a ``VOICEID_*`` variable of the shell."""
    for name in list(os.environ):
        if name.startswith("VOICEID_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def demo_clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[bytes]]:
    """Three WAV clips each of Steve, David (the shipped model's speakers) and Stranger."""
    root = tmp_path_factory.mktemp("clips")
    written = write_demo_data(root / "known", clips_per_voice=3, seed=7)
    written |= write_demo_data(root / "stranger", clips_per_voice=3, seed=7, voices=[STRANGER])
    return {voice: [path.read_bytes() for path in paths] for voice, paths in written.items()}


@pytest.fixture(scope="session")
def steve_wav(demo_clips: dict[str, list[bytes]]) -> bytes:
    return demo_clips["Steve"][0]


@pytest.fixture(scope="session")
def default_bundle() -> Bundle:
    return load_bundle(MODEL_DIR)


@pytest.fixture(scope="session")
def trained_bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second, different bundle with the same speakers, trained in a few seconds."""
    root = tmp_path_factory.mktemp("trained")
    write_demo_data(root / "data", clips_per_voice=5, seed=3)
    opts = TrainOptions(train=TrainConfig(candidates=2, max_epochs=30), jobs=1, name="quick")
    train(root / "data", root / "quick", opts)
    return root / "quick"


@pytest.fixture
def bundle_copy(tmp_path: Path) -> Path:
    """A copy of the shipped bundle, free to break."""
    return Path(shutil.copytree(MODEL_DIR, tmp_path / "copy"))


@pytest.fixture
def make_client() -> Iterator[ClientFactory]:
    """``make_client(**settings)``: a started client of a new app serving the shipped model."""
    with ExitStack() as stack:

        def make(**settings: Any) -> TestClient:
            app = create_app(Settings(**{"model_dir": MODEL_DIR, **settings}))
            return stack.enter_context(TestClient(app))

        yield make


@pytest.fixture
def client(make_client: ClientFactory) -> TestClient:
    return make_client()
