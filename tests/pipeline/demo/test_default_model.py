"""The shipped models/default is what `make default-model` builds, and it works."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.bundle import Bundle, load_bundle
from pipeline.demo.default_model import build_default_model
from pipeline.demo.synth import STRANGER, write_demo_data
from pipeline.predict import predict_clip

SHIPPED = Path(__file__).resolve().parents[3] / "models" / "default"


@pytest.fixture(scope="module")
def shipped() -> Bundle:
    return load_bundle(SHIPPED)


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    out = tmp_path_factory.mktemp("rebuilt") / "default"
    build_default_model(out)
    return load_bundle(out)


def test_the_shipped_bundle_describes_the_demo_voices(shipped: Bundle) -> None:
    assert shipped.labels == ("David", "Steve")
    assert shipped.name == "default"
    assert shipped.network.sizes == (60, 6, 2)
    assert shipped.metadata.metrics.val_accuracy == 1.0


@pytest.mark.slow
def test_rebuilding_reproduces_the_shipped_bundle(shipped: Bundle, rebuilt: Bundle) -> None:
    assert rebuilt.labels == shipped.labels
    assert rebuilt.feature_config == shipped.feature_config
    assert rebuilt.threshold == pytest.approx(shipped.threshold, abs=1e-6)
    for ours, theirs in (
        (rebuilt.network.hidden_kernel, shipped.network.hidden_kernel),
        (rebuilt.network.output_kernel, shipped.network.output_kernel),
        (rebuilt.network.mean, shipped.network.mean),
    ):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_fresh_clips_are_named_and_a_stranger_is_unknown(shipped: Bundle, tmp_path: Path) -> None:
    known = write_demo_data(tmp_path / "fresh", clips_per_voice=5, seed=11)
    for voice, paths in known.items():
        assert [predict_clip(shipped, p)[0].best for p in paths] == [voice] * 5
    strangers = write_demo_data(tmp_path / "stranger", clips_per_voice=5, seed=11,
                                voices=[STRANGER])["Stranger"]  # fmt: skip
    assert [predict_clip(shipped, p)[0].speaker for p in strangers] == ["unknown"] * 5
