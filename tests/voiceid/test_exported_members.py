"""The package's front door exports exactly its public API, and importing it stays light."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from types import ModuleType

import pytest

import voiceid
from pipeline import bundle, evaluate, predict, train
from tests.helpers import ROOT

PUBLIC_API = [
    "AudioError",
    "Bundle",
    "BundleError",
    "DatasetError",
    "DecodeError",
    "FeatureConfig",
    "InvalidAudioError",
    "ParameterError",
    "Prediction",
    "TrainConfig",
    "TrainOptions",
    "VoiceIdError",
    "__version__",
    "evaluate_folder",
    "load_bundle",
    "predict_clip",
    "train",
]


def test_all_names_every_public_member_and_nothing_else() -> None:
    for name in dir(voiceid):  # the names are imported on first use: use each
        getattr(voiceid, name)
    members = [
        name
        for name, value in vars(voiceid).items()
        if (not name.startswith("_") or name == "__version__") and not isinstance(value, ModuleType)
    ]

    assert voiceid.__all__ == PUBLIC_API
    assert sorted(members) == sorted(PUBLIC_API) == dir(voiceid)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module 'voiceid' has no attribute 'nothing'"):
        voiceid.nothing  # noqa: B018


def test_the_version_comes_from_the_package_metadata() -> None:
    assert voiceid.__version__ == metadata.version("voiceid")


def test_the_exports_are_the_pipelines_own_objects() -> None:
    assert voiceid.load_bundle is bundle.load_bundle
    assert voiceid.predict_clip is predict.predict_clip
    assert voiceid.evaluate_folder is evaluate.evaluate_folder
    assert voiceid.train is train.train


def test_importing_the_package_loads_neither_tensorflow_nor_the_service() -> None:
    code = (
        "import sys, voiceid; "
        "print(sorted({'tensorflow', 'keras', 'service', 'pipeline.train'} & set(sys.modules)))"
    )

    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout

    assert out.strip() == "[]"
