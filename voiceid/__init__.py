"""voiceid: who said this clip? Learn speakers from a folder of recordings, then name them.

The public API, importable from the package itself::

    import voiceid

    report = voiceid.train(Path("recordings"), Path("models/mine"))
    bundle = voiceid.load_bundle("models/mine")
    prediction, clip = voiceid.predict_clip(bundle, Path("hello.wav"))
    print(prediction.speaker, prediction.confidence)

Training imports TensorFlow when it starts fitting; loading a bundle and predicting never do.
"""

from importlib import metadata as _metadata

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
