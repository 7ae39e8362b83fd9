"""Tests of the frozen configs: defaults, validation messages and the dict round trip."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import pytest

from pipeline.config import (
    MAX_HIDDEN,
    FeatureConfig,
    TrainConfig,
    default_fmax,
    derived_feature_config,
    hidden_units,
)
from pipeline.errors import ParameterError


@pytest.mark.parametrize(
    ("rate", "fmax"), [(8000, 3800.0), (16000, 7600.0), (44100, 7600.0), (11025, 5236.875)]
)
def test_default_fmax_stays_below_the_lowest_nyquist(rate: int, fmax: float) -> None:
    assert default_fmax(rate) == fmax


def test_default_fmax_rejects_a_rate_of_zero() -> None:
    with pytest.raises(ParameterError) as error:
        default_fmax(0)

    assert str(error.value) == "lowest_source_rate=0 must be a positive rate"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"n_bands": 0}, "n_bands=0 must be a positive integer"),
        ({"sample_rate": 0}, "sample_rate=0 must be a positive integer"),
        ({"n_fft": True}, "n_fft=True must be a positive integer"),
        ({"hop_length": 1.5}, "hop_length=1.5 must be a positive integer"),
        ({"fmax": 9000.0}, "fmax=9000.0 must not exceed the Nyquist frequency 8000.0 Hz"),
        ({"fmax": math.inf}, "fmax=inf must be a positive number"),
        ({"fmin": -1.0}, "fmin=-1.0 must be >= 0 and below fmax=3800.0"),
        ({"fmin": 4000.0}, "fmin=4000.0 must be >= 0 and below fmax=3800.0"),
        ({"top_db": 0}, "top_db=0 must be a positive number"),
        ({"min_speech_s": -0.1}, "min_speech_s=-0.1 must be a positive number"),
        ({"sound_db": 0}, "sound_db=0 must be a positive number"),
        ({"noise_percentile": 50}, "noise_percentile=50 must be >= 0 and below 50"),
        ({"noise_percentile": -1.0}, "noise_percentile=-1.0 must be >= 0 and below 50"),
        (
            {"band_spread": (80.0, 100.0)},
            "band_spread=(80.0, 100.0) must be a tuple of percentiles, each between 0 and 100",
        ),
        (
            {"band_spread": [80.0]},
            "band_spread=[80.0] must be a tuple of percentiles, each between 0 and 100",
        ),
        (
            {"band_spread": (True,)},
            "band_spread=(True,) must be a tuple of percentiles, each between 0 and 100",
        ),
        ({"cepstra": 1}, "cepstra=1 must be 0 (none) or a whole number from 2 to n_bands - 1 = 59"),
        (
            {"cepstra": 60},
            "cepstra=60 must be 0 (none) or a whole number from 2 to n_bands - 1 = 59",
        ),
        (
            {"cepstra": True},
            "cepstra=True must be 0 (none) or a whole number from 2 to n_bands - 1 = 59",
        ),
        ({"cepstral_floor_db": 0}, "cepstral_floor_db=0 must be a positive number"),
        ({"cepstral_frames": 0}, "cepstral_frames=0 must be a positive integer"),
        (
            {"sample_rate": 8000, "fmax": 4100.0},
            "fmax=4100.0 must not exceed the Nyquist frequency 4000.0 Hz",
        ),
        ({"sample_rate": 7000}, "sample_rate=7000 must be from 8000 to 192000 Hz"),
        ({"sample_rate": 10**12}, "sample_rate=1000000000000 must be from 8000 to 192000 Hz"),
        ({"n_fft": 1}, "n_fft=1 must be from 32 to 16384 samples"),
        ({"n_fft": 10**9}, "n_fft=1000000000 must be from 32 to 16384 samples"),
        ({"hop_length": 10**9}, "hop_length=1000000000 must be at most n_fft=512 samples"),
    ],
)
def test_feature_config_rejects_bad_values(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ParameterError) as error:
        FeatureConfig(**fields)

    assert str(error.value) == message


def test_feature_config_round_trips_through_a_dict() -> None:
    cfg = FeatureConfig(fmax=7600.0, n_bands=40)

    assert FeatureConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.to_dict()["n_bands"] == 40


def test_the_band_spread_round_trips_through_json_and_widens_the_row() -> None:
    cfg = FeatureConfig(n_bands=40, band_spread=(80.0, 20.0))

    assert cfg.to_dict()["band_spread"] == [80.0, 20.0]  # as JSON has it
    assert FeatureConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert (cfg.row_width, FeatureConfig(n_bands=40).row_width) == (120, 40)


def test_a_config_saved_before_the_band_spread_has_none() -> None:
    saved = FeatureConfig().to_dict()
    del saved["band_spread"]

    assert FeatureConfig.from_dict(saved).band_spread == ()


def test_the_cepstra_widen_the_row_by_one_number_a_pair() -> None:
    cfg = FeatureConfig(band_spread=(80.0, 20.0), cepstra=12)

    assert (cfg.cepstral_columns, cfg.row_width) == (66, 246)
    assert FeatureConfig.from_dict(cfg.to_dict()) == cfg
    assert FeatureConfig(cepstra=2).row_width == 61


def test_a_config_saved_before_the_cepstra_has_none() -> None:
    saved = FeatureConfig(band_spread=(80.0, 20.0)).to_dict()
    del saved["cepstra"], saved["cepstral_floor_db"], saved["cepstral_frames"]

    assert FeatureConfig.from_dict(saved) == FeatureConfig(band_spread=(80.0, 20.0))
    assert FeatureConfig.from_dict(saved).row_width == 180


def test_training_measures_each_bands_spread_and_the_cepstra() -> None:
    assert derived_feature_config(8000, None) == FeatureConfig(
        fmax=3800.0, band_spread=(80, 20), cepstra=12
    )
    assert derived_feature_config(None, None) == FeatureConfig(band_spread=(80.0, 20.0), cepstra=12)
    assert derived_feature_config(None, 5000.0).band_spread == (80.0, 20.0)


def test_feature_config_refuses_unknown_keys() -> None:
    with pytest.raises(ParameterError) as error:
        FeatureConfig.from_dict({"n_bands": 60, "window": "hann", "bands": 3})

    assert str(error.value) == "unknown feature config keys: bands, window"


def test_feature_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        FeatureConfig().n_bands = 30  # type: ignore[misc]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"candidates": 0}, "candidates=0 must be a whole number from 1 to 64"),
        ({"candidates": 10**9}, "candidates=1000000000 must be a whole number from 1 to 64"),
        ({"augment_copies": 0}, "augment_copies=0 must be a whole number from 1 to 32"),
        ({"augment_copies": 33}, "augment_copies=33 must be a whole number from 1 to 32"),
        ({"crops": -1}, "crops=-1 must be an integer >= 0"),
        ({"max_epochs": False}, "max_epochs=False must be a positive integer"),
        ({"learning_rate": 0.0}, "learning_rate=0.0 must be a positive number"),
        ({"val_fraction": 1.0}, "val_fraction=1.0 must be between 0 and 1"),
        ({"unknown_quantile": 1.0}, "unknown_quantile=1.0 must be in [0, 1)"),
        ({"matched_quantile": -0.1}, "matched_quantile=-0.1 must be in [0, 1)"),
        ({"open_set_hidden_weight": -1.0}, "open_set_hidden_weight=-1.0 must be >= 0"),
        ({"open_set_spread_weight": -1.0}, "open_set_spread_weight=-1.0 must be >= 0"),
        ({"open_set_hidden_weight": 1e308}, "open_set_hidden_weight=1e+308 must be at most 1000"),
        (
            {"open_set_noise_allowance": float("inf")},
            "open_set_noise_allowance=inf must be >= 0",
        ),
        ({"l2": float("nan")}, "l2=nan must be >= 0"),
        ({"loss": "hinge"}, "loss='hinge' must be 'crossentropy' or 'mse'"),
        ({"device": "tpu"}, "device='tpu' must be 'auto', 'cpu' or 'gpu'"),
        ({"seed": -1}, "seed=-1 must be a whole number from 0 to 4294967295"),
        ({"seed": 2**32}, "seed=4294967296 must be a whole number from 0 to 4294967295"),
    ],
)
def test_train_config_rejects_bad_values(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ParameterError) as error:
        TrainConfig(**fields)

    assert str(error.value) == message


def test_a_clips_extra_rows_are_its_degraded_copies_then_its_crops() -> None:
    assert TrainConfig().copies_per_clip == 4 + 2
    assert TrainConfig(augment=False).copies_per_clip == 2
    assert TrainConfig(crops=0, augment_copies=3).copies_per_clip == 3


# The hidden width

HIDDEN_CHOICE = "leave it out (None) to choose the width from the speaker count"


@pytest.mark.parametrize("hidden", [0, -3, MAX_HIDDEN + 1, True, 6.0, "auto", "12"])
def test_a_bad_hidden_width_is_refused_naming_it(hidden: object) -> None:
    with pytest.raises(ParameterError) as error:
        TrainConfig(hidden=hidden)  # type: ignore[arg-type]

    assert str(error.value) == (
        f"hidden={hidden!r} must be a whole number from 1 to {MAX_HIDDEN}; {HIDDEN_CHOICE}"
    )


@pytest.mark.parametrize(
    ("speakers", "width"),
    [(2, 6), (6, 6), (7, 11), (8, 12), (12, 18), (15, 23), (16, 24), (100, 150), (5000, 1024)],
)
def test_the_width_follows_the_speaker_count_past_six(speakers: int, width: int) -> None:
    assert hidden_units(speakers) == width
    assert TrainConfig().hidden_for(speakers) == width


def test_a_pinned_width_is_kept_whatever_the_speaker_count() -> None:
    assert TrainConfig().hidden is None
    assert [TrainConfig(hidden=4).hidden_for(n) for n in (2, 16, 100)] == [4, 4, 4]
