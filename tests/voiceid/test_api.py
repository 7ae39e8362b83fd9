"""The public API's arguments: paths as str or os.PathLike, clips as bytes or paths, and every
other type or value refused with the project's own error naming it."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

import voiceid
from pipeline.errors import UnreadableClipError
from tests.signals import encode, harmonics

WAV = encode(harmonics(150.0, seconds=1.0))
NOT_A_CLIP = (
    "clip must be a file's bytes (bytes, bytearray, memoryview) or its path (str, os.PathLike), "
    "not {}"
)


def _answer(prediction: voiceid.Prediction) -> tuple[str, float]:
    return prediction.speaker, prediction.confidence


@pytest.mark.parametrize("clip", [WAV, bytearray(WAV), memoryview(WAV)])
def test_a_clip_s_bytes_are_taken_in_any_buffer(
    default_bundle: voiceid.Bundle, clip: object
) -> None:
    prediction, _ = voiceid.predict_clip(default_bundle, clip)  # type: ignore[arg-type]
    assert _answer(prediction) == _answer(voiceid.predict_clip(default_bundle, WAV)[0])


def test_a_clip_path_is_taken_as_str_or_path(
    default_bundle: voiceid.Bundle, tmp_path: Path
) -> None:
    (tmp_path / "a.wav").write_bytes(WAV)
    by_str, _ = voiceid.predict_clip(default_bundle, str(tmp_path / "a.wav"))
    assert _answer(by_str) == _answer(voiceid.predict_clip(default_bundle, tmp_path / "a.wav")[0])


@pytest.mark.parametrize(
    ("clip", "message"),
    [
        (3, NOT_A_CLIP.format("int")),
        (None, NOT_A_CLIP.format("NoneType")),
        (np.zeros(3), NOT_A_CLIP.format("ndarray")),
        (io.BytesIO(WAV), NOT_A_CLIP.format("BytesIO")),
        ("a\0b", "clip='a\\x00b' holds a NUL character, which no path can hold"),
    ],
)
def test_a_clip_of_another_type_is_a_parameter_error(
    default_bundle: voiceid.Bundle, clip: object, message: str
) -> None:
    with pytest.raises(voiceid.ParameterError) as caught:
        voiceid.predict_clip(default_bundle, clip)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_a_clip_path_it_cannot_read_is_an_audio_error(
    default_bundle: voiceid.Bundle, tmp_path: Path
) -> None:
    for path, reason in ((tmp_path / "absent.wav", "No such file or directory"),
                         (tmp_path, "Is a directory")):  # fmt: skip
        with pytest.raises(UnreadableClipError) as caught:
            voiceid.predict_clip(default_bundle, path)
        assert isinstance(caught.value, voiceid.AudioError)
        assert (str(caught.value), caught.value.reason) == (
            f"cannot read {str(path)!r}: {reason}",
            reason,
        )


@pytest.mark.parametrize("threshold", ["0.5", [0.5], float("nan"), 5, -0.1, True])
def test_a_threshold_outside_0_to_1_is_refused(
    default_bundle: voiceid.Bundle, threshold: object
) -> None:
    with pytest.raises(voiceid.ParameterError) as caught:
        voiceid.predict_clip(default_bundle, WAV, threshold=threshold)  # type: ignore[arg-type]
    assert str(caught.value) == f"threshold={threshold!r} must be a number from 0 to 1"


def test_a_bundle_given_as_its_path_is_refused_naming_load_bundle() -> None:
    with pytest.raises(voiceid.ParameterError) as caught:
        voiceid.predict_clip("m1", WAV)  # type: ignore[arg-type]
    assert str(caught.value) == "bundle must be a Bundle (voiceid.load_bundle), not str"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": 123}, "name=123 must be a str"),
        ({"jobs": "2"}, "jobs='2' must be a positive integer"),
        ({"jobs": 0}, "jobs=0 must be a positive integer"),
        ({"train": None}, "train must be a TrainConfig, not NoneType"),
        ({"cache_dir": 3}, "cache_dir=3 must be a path: a str or an os.PathLike"),
    ],
)
def test_train_options_of_another_type_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(voiceid.ParameterError) as caught:
        voiceid.TrainOptions(**kwargs)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_train_options_take_folders_as_str() -> None:
    assert voiceid.TrainOptions(cache_dir="c", test_dir="t").cache_dir == Path("c")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("data", "out", None), "opts must be a TrainOptions, not NoneType"),
        (("data", "out", voiceid.TrainConfig()), "opts must be a TrainOptions, not TrainConfig"),
        ((None, "out"), "data_dir=None must be a path: a str or an os.PathLike"),
    ],
)
def test_train_refuses_arguments_of_another_type(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(voiceid.ParameterError) as caught:
        voiceid.train(*args)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_train_takes_str_paths(tmp_path: Path) -> None:
    # refused for the data, after the paths were taken: no AttributeError on a str
    with pytest.raises(voiceid.DatasetError) as caught:
        voiceid.train(str(tmp_path / "absent"), str(tmp_path / "out"))
    assert str(caught.value) == (
        f"data folder {str(tmp_path / 'absent')!r} does not exist or is not a folder"
    )


@pytest.mark.parametrize("path", [None, 3, b"models/default", ["models/default"]])
def test_a_bundle_path_of_another_type_is_a_parameter_error(path: object) -> None:
    with pytest.raises(voiceid.ParameterError) as caught:
        voiceid.load_bundle(path)  # type: ignore[arg-type]
    assert str(caught.value) == f"path={path!r} must be a path: a str or an os.PathLike"
