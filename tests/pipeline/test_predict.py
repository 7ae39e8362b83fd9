"""Tests of the one prediction path, on the session's bundle and demo clips."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from pipeline.audio import decode
from pipeline.bundle import Bundle, load_bundle
from pipeline.errors import DecodeError
from pipeline.features import histogram
from pipeline.predict import (
    ADVICE,
    UNKNOWN,
    clip_features,
    clip_histogram,
    clip_quality,
    predict_clip,
    predict_features,
)
from pipeline.quality.measures import clipped_fraction
from tests.signals import encode, harmonics


@pytest.fixture(scope="module")
def bundle(trained_bundle: Path) -> Bundle:
    return load_bundle(trained_bundle)


def test_predict_clip_names_the_speaker_of_a_training_clip(bundle: Bundle, demo_data: Path) -> None:
    path = demo_data / "Steve" / "hello_000.wav"

    prediction, clip = predict_clip(bundle, path)

    assert prediction.best == "Steve"
    assert prediction.speaker == ("Steve" if prediction.confidence >= bundle.threshold else UNKNOWN)
    assert sorted(prediction.scores) == ["David", "Steve"]
    assert prediction.confidence == prediction.scores["Steve"]
    assert clip.sample_rate == bundle.feature_config.sample_rate
    row = histogram(decode(path, sample_rate=16000).samples, bundle.feature_config)
    assert row.shape == (bundle.feature_config.row_width,)
    np.testing.assert_array_equal(prediction.histogram, row[: bundle.feature_config.n_bands])
    assert prediction.hidden.shape == (6,)
    assert np.all((prediction.hidden >= 0) & (prediction.hidden <= 1))


def test_bytes_and_paths_predict_alike(bundle: Bundle, demo_data: Path) -> None:
    path = demo_data / "David" / "hello_003.wav"

    from_path, _ = predict_clip(bundle, path)
    from_bytes, _ = predict_clip(bundle, path.read_bytes())

    assert from_bytes.scores == from_path.scores


def test_a_threshold_above_the_confidence_makes_the_speaker_unknown(
    bundle: Bundle, demo_data: Path
) -> None:
    row = histogram(
        decode(demo_data / "David" / "hello_000.wav", sample_rate=16000).samples,
        bundle.feature_config,
    )

    [known] = predict_features(bundle, row, threshold=0.0)
    [unknown] = predict_features(bundle, row, threshold=1.01)

    assert (known.speaker, known.unknown, known.best) == ("David", False, "David")
    assert (unknown.speaker, unknown.unknown, unknown.best) == (UNKNOWN, True, "David")
    assert unknown.confidence == known.confidence


def test_predict_features_takes_a_batch(bundle: Bundle) -> None:
    with np.load(bundle.path / "train_features.npz") as saved:
        features, labels = saved["features"], saved["labels"]

    predictions = predict_features(bundle, features, threshold=0.0)

    assert [p.best for p in predictions] == [bundle.labels[k] for k in labels]


def test_predict_clip_refuses_what_is_not_audio(
    bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pipeline.audio.shutil.which", lambda name: None)

    with pytest.raises(DecodeError) as error:
        predict_clip(bundle, b"%PDF-1.7 not audio")

    assert str(error.value) == "cannot decode PDF document data: not a supported audio format"


def test_a_refused_clip_of_a_poor_recording_names_its_issue(
    bundle: Bundle, demo_data: Path
) -> None:
    clip = decode(demo_data / "David" / "hello_000.wav", sample_rate=16000)
    row = histogram(clip.samples, bundle.feature_config)
    clean = clip_quality(clip)
    clipped = dataclasses.replace(clean, clipped_fraction=0.2)

    [unsure, poor] = predict_features(
        bundle, np.stack([row, row]), threshold=1.01, qualities=[clean, clipped]
    )

    assert (unsure.reason, unsure.cause, unsure.issues, unsure.quality) == (
        "unsure",
        None,
        (),
        clean,
    )
    assert unsure.advice == ADVICE["unsure"]
    assert poor.reason == "poor_recording"
    assert poor.cause is not None and poor.cause.measure == "clipped_fraction"
    assert poor.advice == poor.cause.advice


def test_a_refusal_with_a_sign_of_a_degraded_recording_blames_the_sign(
    bundle: Bundle, demo_data: Path
) -> None:
    clip = decode(demo_data / "David" / "hello_000.wav", sample_rate=16000)
    row = histogram(clip.samples, bundle.feature_config)
    clean = clip_quality(clip)
    lightly_clipped = dataclasses.replace(clean, clipped_fraction=0.005)  # a sign, not an issue
    noisy = dataclasses.replace(clean, snr_db=5.0, bandwidth_hz=clean.available_hz)

    [clipped, hissing] = predict_features(
        bundle, np.stack([row, row]), threshold=1.01, qualities=[lightly_clipped, noisy]
    )

    assert (clipped.condition, clipped.issues, clipped.reason) == ("clipped", (), "poor_recording")
    assert clipped.cause is not None and clipped.cause == clipped.signs[0]
    assert clipped.cause.measure == "clipped_fraction"
    # A noisy sign picks the references a clip is judged by, but a refusal never blames it.
    assert (hissing.condition, hissing.reason, hissing.cause) == ("noisy", "unsure", None)


def test_predict_clip_measures_the_recording_on_its_source_band(
    bundle: Bundle, demo_data: Path
) -> None:
    prediction, clip = predict_clip(bundle, demo_data / "Steve" / "hello_000.wav")

    assert prediction.quality == clip_quality(clip)
    assert prediction.quality.available_hz == clip.source_rate / 2


def test_one_shared_spectrum_gives_the_histogram_and_the_quality_of_each_alone(
    bundle: Bundle, demo_data: Path
) -> None:
    path = demo_data / "David" / "hello_001.wav"

    row, quality, clip = clip_features(path, bundle.feature_config)

    np.testing.assert_array_equal(row, clip_histogram(path, bundle.feature_config)[0])
    assert quality == clip_quality(clip)


def test_clipping_is_measured_on_the_recording_before_it_is_resampled() -> None:
    """Resampling an 8 kHz recording to the model's 16 kHz rounds its flat tops away: measured
    on the resampled samples, a hard-clipped take would read as unclipped."""
    clipped = np.clip(8 * harmonics(sample_rate=8000), -0.9, 0.9)
    expected = clipped_fraction(np.clip(8 * harmonics(sample_rate=8000), -0.9, 0.9))

    clip = decode(encode(clipped, 8000, subtype="FLOAT"), sample_rate=16_000)

    assert clip.source_clipped_fraction == pytest.approx(expected)
    assert clip_quality(clip).clipped_fraction == round(expected, 5)
    assert expected > 0.3
    assert clipped_fraction(clip.samples) < 0.05  # what the resampled samples alone would say
