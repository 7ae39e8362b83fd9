"""The warm-up each worker runs before it serves: the whole /predict path on a synthetic clip."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from pipeline.audio import decode
from pipeline.bundle import Bundle
from pipeline.errors import InvalidAudioError
from service.inference import answer_clip, synthetic_clip, warm_up
from service.metrics import Metrics
from service.settings import Settings
from tests.helpers import MODEL_DIR, ClientFactory


def test_the_synthetic_clip_is_a_16_bit_wav_of_its_length() -> None:
    clip = decode(synthetic_clip(8000, 0.5), sample_rate=8000)

    assert (clip.source_rate, clip.channels, len(clip.samples)) == (8000, 1, 4000)


def test_the_shipped_model_answers_the_synthetic_clip(default_bundle: Bundle) -> None:
    settings = Settings(model_dir=MODEL_DIR)
    metrics = Metrics()

    answer = answer_clip(default_bundle, synthetic_clip(16000, 1.0), settings, metrics)

    assert answer.duration_s == 1.0
    assert answer.quality is not None  # measured: the warm-up runs the quality measures too


def test_the_app_warms_up_before_it_takes_requests(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    warmed: list[tuple[Bundle, Settings]] = []

    def recording(bundle: Bundle, settings: Settings) -> None:
        warmed.append((bundle, settings))

    monkeypatch.setattr("service.app.warm_up", recording)

    client = make_client()  # started: its lifespan has run

    assert client.get("/ready").status_code == 200
    app: Any = client.app
    assert warmed == [(app.state.store.current, app.state.settings)]


def test_the_warm_up_is_not_counted(make_client: ClientFactory) -> None:
    page = make_client().get("/metrics").text

    assert "voiceid_predictions_total{" not in page
    assert "voiceid_unknown_total 0.0" in page


def test_a_clip_the_warm_up_cannot_answer_keeps_no_model_out(
    default_bundle: Bundle, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise InvalidAudioError("clip is silent")

    monkeypatch.setattr("service.inference.answer_clip", refuse)

    with caplog.at_level(logging.WARNING, logger="voiceid.service"):
        warm_up(default_bundle, Settings(model_dir=MODEL_DIR))

    assert caplog.messages == [
        "warm-up clip not answered (the first request pays for its setup): clip is silent"
    ]
