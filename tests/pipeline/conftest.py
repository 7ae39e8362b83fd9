"""Shared fixtures: the synthetic demo voices and one small model trained on them per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import TrainConfig
from pipeline.demo.synth import STRANGER, write_demo_data
from pipeline.train import TrainOptions, train

CLIPS_PER_VOICE = 12  # 10 to train on and 2 to validate with, per voice
STRANGER_CLIPS = 6


@pytest.fixture(scope="session")
def tiny_train_config() -> TrainConfig:
    """Enough training for two distinct voices, in about a second."""
    return TrainConfig(candidates=2, max_epochs=100, patience=20, seed=0)


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
def trained_bundle(
    tmp_path_factory: pytest.TempPathFactory,
    demo_data: Path,
    stranger_data: Path,
    tiny_train_config: TrainConfig,
) -> Path:
    """A bundle trained on ``demo_data``; tests that change it must copy it first."""
    out = tmp_path_factory.mktemp("bundle") / "model"
    opts = TrainOptions(train=tiny_train_config, jobs=1, unknown_dir=stranger_data)
    train(demo_data, out, opts)
    return out
