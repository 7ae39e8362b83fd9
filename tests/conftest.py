"""Fixtures shared by the whole suite: the synthetic voices, bundles, and clients of the app.

Markers (registered in pyproject.toml): ``slow`` and ``integration``, ``browser`` and ``docker``
tests are left out of the quick run (see the README); ``requires_ffmpeg`` tests are skipped,
with the reason, where the ffmpeg binary is missing.
"""

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
from tests.helpers import LOOPBACK_URL, MODEL_DIR, ClientFactory, LoopbackClient

CLIPS_PER_VOICE = 12  # 10 to train on and 2 to validate with, per voice
STRANGER_CLIPS = 6


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if shutil.which("ffmpeg") is not None:
        return
    skip = pytest.mark.skip(reason="ffmpeg is not installed (M4A, WebM/Opus and damaged files)")
    for item in items:
        if item.get_closest_marker("requires_ffmpeg"):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _no_heap_freeze(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Apps started by tests skip the model store's full collection and heap freeze: in a
    process that has imported TensorFlow it costs more than the rest of an app's start, and the
    suite starts over a hundred. Tests of it are marked ``heap_freeze``."""
    if request.node.get_closest_marker("heap_freeze") is None:
        monkeypatch.setattr("service.model_store._settle_heap", lambda: None)


@pytest.fixture(autouse=True)
def _no_voiceid_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the test alone, never from a ``VOICEID_*`` variable of the shell."""
    for name in list(os.environ):
        if name.startswith("VOICEID_"):
            monkeypatch.delenv(name)


# The synthetic voices


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<dir>/Steve`` and ``<dir>/David``, 12 clips each, 16 kHz."""
    out = tmp_path_factory.mktemp("demo")
    write_demo_data(out, clips_per_voice=CLIPS_PER_VOICE, seed=0)
    return out


@pytest.fixture(scope="session")
def stranger_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<dir>/Stranger``: 6 clips of a speaker the models never see."""
    out = tmp_path_factory.mktemp("stranger")
    write_demo_data(out, clips_per_voice=STRANGER_CLIPS, seed=0, voices=[STRANGER])
    return out


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


# Bundles


@pytest.fixture(scope="session")
def tiny_train_config() -> TrainConfig:
    """Enough training for two distinct voices, in about a second."""
    return TrainConfig(candidates=2, max_epochs=100, patience=20, seed=0)


@pytest.fixture(scope="session")
def trained_bundle(
    tmp_path_factory: pytest.TempPathFactory,
    demo_data: Path,
    stranger_data: Path,
    tiny_train_config: TrainConfig,
) -> Path:
    """A bundle trained on ``demo_data``, other than the shipped one; tests that change it must
    copy it first."""
    out = tmp_path_factory.mktemp("bundle") / "model"
    opts = TrainOptions(train=tiny_train_config, jobs=1, unknown_dir=stranger_data)
    train(demo_data, out, opts)
    return out


@pytest.fixture(scope="session")
def default_bundle() -> Bundle:
    return load_bundle(MODEL_DIR)


@pytest.fixture
def bundle_copy(tmp_path: Path) -> Path:
    """A copy of the shipped bundle, free to break."""
    return Path(shutil.copytree(MODEL_DIR, tmp_path / "copy"))


# Clients of the app


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[ClientFactory]:
    """``make_client(**settings)``: a started client of a new app serving the shipped model,
    with an empty speaker store of its own, as a loopback client of a loopback server (the
    connection's local address is the URL's host), which takes writes without a key."""
    with ExitStack() as stack:

        def make(**settings: Any) -> TestClient:
            # Reloads come from temporary folders anywhere; tests/security checks the root.
            defaults = {"model_dir": MODEL_DIR, "models_root": Path("/"),
                        "data_dir": tmp_path / "speakers"}  # fmt: skip
            app = create_app(Settings(**(defaults | settings)))
            return stack.enter_context(LoopbackClient(app, base_url=LOOPBACK_URL))

        yield make


@pytest.fixture
def client(make_client: ClientFactory) -> TestClient:
    return make_client()
