"""voiceid: who said this clip? Learn speakers from a folder of recordings, then name them.

The public API, importable from the package itself::

    from pathlib import Path

    import voiceid

    report = voiceid.train(Path("recordings"), Path("models/mine"))
    bundle = voiceid.load_bundle("models/mine")
    prediction, clip = voiceid.predict_clip(bundle, Path("hello.wav"))
    print(prediction.speaker, prediction.confidence)

A script calls ``train`` under ``if __name__ == "__main__":``: its worker processes import the
script first. Training imports TensorFlow when it starts fitting; loading a bundle and
predicting never do. The names are imported when first used (PEP 562), so that
``import voiceid`` (and with it ``voiceid serve`` and each of its worker processes) loads none
of the pipeline until asked.
"""

import importlib as _importlib
import typing as _typing
from importlib import metadata as _metadata

if _typing.TYPE_CHECKING:
    from pipeline.bundle import Bundle, load_bundle
    from pipeline.config import FeatureConfig, TrainConfig
    from pipeline.errors import (
        AudioError,
        BundleError,
        DatasetError,
        DecodeError,
        InvalidAudioError,
        ParameterError,
        VoiceIdError,
    )
    from pipeline.evaluate import evaluate_folder
    from pipeline.predict import Prediction, predict_clip
    from pipeline.train import TrainOptions, train

# the module that defines each public name
_EXPORTED_FROM = {
    "pipeline.bundle": ("Bundle", "load_bundle"),
    "pipeline.config": ("FeatureConfig", "TrainConfig"),
    "pipeline.errors": ("AudioError", "BundleError", "DatasetError", "DecodeError",
                        "InvalidAudioError", "ParameterError", "VoiceIdError"),
    "pipeline.evaluate": ("evaluate_folder",),
    "pipeline.predict": ("Prediction", "predict_clip"),
    "pipeline.train": ("TrainOptions", "train"),
}  # fmt: skip
_SOURCES = {name: module for module, names in _EXPORTED_FROM.items() for name in names}

__all__ = [
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

__version__ = _metadata.version("voiceid")


def __getattr__(name: str) -> _typing.Any:
    if name not in _SOURCES:
        raise AttributeError(f"module 'voiceid' has no attribute {name!r}")
    value = getattr(_importlib.import_module(_SOURCES[name]), name)
    globals()[name] = value  # imported once: later lookups find it without this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
