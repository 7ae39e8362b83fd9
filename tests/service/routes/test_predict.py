"""POST /predict and /predict/batch: answers, explanations, Keras agreement and every error."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from pipeline.audio import decode
from pipeline.bundle import Bundle
from pipeline.features import band_centres, histogram
from service.inference import SHORT_CLIP_BYTES
from tests.helpers import MODEL_DIR, ClientFactory
from tests.signals import SR, encode, harmonics, tone

WAV = {"content-type": "audio/wav"}
KNOWN = ("Steve", "David")
PREDICT_KEYS = {"speaker", "confidence", "scores", "unknown", "threshold", "model", "duration_s",
                "timing_ms", "quality"}  # fmt: skip
QUALITY_KEYS = {"speech_s", "level_dbfs", "clipped_fraction", "snr_db", "bandwidth_hz",
                "available_hz", "low_band_db", "background_low_band_db", "fall_db",
                "companded_levels", "issues"}  # fmt: skip


def post_clip(client: TestClient, clip: bytes, **params: Any) -> dict[str, Any]:
    response = client.post(
        "/predict", files={"file": ("clip.wav", clip, "audio/wav")}, params=params
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def duration_s(clip: bytes) -> float:
    info = sf.info(io.BytesIO(clip))
    return round(info.frames / info.samplerate, 4)


# --- answers -------------------------------------------------------------------------------------


def test_answer_holds_scores_threshold_model_and_duration(
    client: TestClient, steve_wav: bytes, default_bundle: Bundle
) -> None:
    answer = post_clip(client, steve_wav)

    assert set(answer) == PREDICT_KEYS  # no "explain" unless asked for
    assert list(answer["scores"]) == ["David", "Steve"]
    assert sum(answer["scores"].values()) == pytest.approx(1.0)
    assert max(answer["scores"], key=answer["scores"].get) == "Steve"
    assert answer["confidence"] == answer["scores"]["Steve"]
    assert answer["threshold"] == default_bundle.threshold
    assert answer["unknown"] is (answer["confidence"] < default_bundle.threshold)
    assert answer["speaker"] == ("unknown" if answer["unknown"] else "Steve")
    assert answer["model"] == {"name": default_bundle.name, "version": default_bundle.version}
    assert answer["duration_s"] == duration_s(steve_wav)
    assert answer["timing_ms"] > 0


@pytest.mark.parametrize("voice", KNOWN)
def test_each_clip_of_a_known_voice_is_named(
    make_client: ClientFactory, demo_clips: dict[str, list[bytes]], voice: str
) -> None:
    client = make_client(unknown_threshold=0.0)

    speakers = [post_clip(client, clip)["speaker"] for clip in demo_clips[voice]]

    assert speakers == [voice] * 3


@pytest.mark.parametrize("media_type", ["audio/wav", "audio/x-wav", "application/octet-stream"])
def test_raw_body_gets_the_multipart_answer(
    client: TestClient, steve_wav: bytes, media_type: str
) -> None:
    multipart = post_clip(client, steve_wav)

    response = client.post("/predict", content=steve_wav, headers={"content-type": media_type})

    assert response.status_code == 200
    assert response.json()["scores"] == multipart["scores"]


def test_flac_and_stereo_clips_are_read(client: TestClient) -> None:
    mono = tone(seconds=1.0)
    flac = io.BytesIO()
    sf.write(flac, mono, SR, format="FLAC")
    stereo = encode(np.stack([mono, mono], axis=1))

    wav_answer, flac_answer, stereo_answer = (
        post_clip(client, data) for data in (encode(mono), flac.getvalue(), stereo)
    )

    assert stereo_answer["scores"] == wav_answer["scores"]  # the mean of two equal channels
    # The same tone, rounded to 16 bits a little differently by the two encoders.
    assert flac_answer["scores"] == pytest.approx(wav_answer["scores"], abs=1e-3)


def test_a_short_pcm16_wav_is_answered_on_the_event_loop_and_the_rest_on_the_thread(
    client: TestClient,
) -> None:
    short = encode(harmonics(seconds=1.0))
    long = encode(harmonics(seconds=5.0))  # 160,044 bytes: over SHORT_CLIP_BYTES
    flac = encode(harmonics(seconds=1.0), fmt="FLAC")
    compute = client.app.state.compute  # type: ignore[attr-defined]

    answers = [post_clip(client, clip)["speaker"] for clip in (short, long, flac)]

    assert len(answers) == 3
    assert (len(long), SHORT_CLIP_BYTES) == (160_044, 131_072)
    assert (compute.inline, compute.jobs) == (1, 2)


def test_every_clip_is_unknown_when_no_score_can_reach_the_threshold(
    make_client: ClientFactory, demo_clips: dict[str, list[bytes]]
) -> None:
    client = make_client(unknown_threshold=1.0)

    answer = post_clip(client, demo_clips["Steve"][0])

    assert answer["speaker"] == "unknown"
    assert answer["unknown"] is True
    assert answer["threshold"] == 1.0
    assert answer["confidence"] == max(answer["scores"].values())


def test_a_stranger_is_unknown_as_far_even_when_the_score_threshold_is_zero(
    make_client: ClientFactory, demo_clips: dict[str, list[bytes]]
) -> None:
    client = make_client(unknown_threshold=0.0)

    answer = post_clip(client, demo_clips["Stranger"][0], explain="true")

    assert (answer["speaker"], answer["unknown"], answer["unknown_reason"]) == (
        "unknown",
        True,
        "far",
    )
    assert answer["explain"]["distance"] > answer["explain"]["distance_threshold"]


def test_a_known_voice_is_named_with_no_reason_and_a_distance_within_the_threshold(
    client: TestClient, steve_wav: bytes, default_bundle: Bundle
) -> None:
    answer = post_clip(client, steve_wav, explain="true")

    assert (answer["speaker"], answer.get("unknown_reason")) == ("Steve", None)
    assert answer["explain"]["distance_threshold"] == default_bundle.open_set.threshold
    assert 0 <= answer["explain"]["distance"] <= answer["explain"]["distance_threshold"]


def test_the_answer_measures_the_recording(client: TestClient, steve_wav: bytes) -> None:
    quality = post_clip(client, steve_wav)["quality"]

    assert set(quality) == QUALITY_KEYS
    assert quality["issues"] == []
    assert quality["available_hz"] == 8000.0
    assert quality["clipped_fraction"] == 0.0


def test_a_refused_clipped_clip_is_a_poor_recording_naming_the_clipping(
    make_client: ClientFactory, demo_clips: dict[str, list[bytes]]
) -> None:
    client = make_client(unknown_threshold=1.0)  # nothing is named: every clip is refused
    steve = decode(demo_clips["Steve"][0], sample_rate=SR).samples
    clipped = encode(np.clip(8 * steve / np.abs(steve).max(), -1, 1))

    clean, overdriven = post_clip(client, demo_clips["Steve"][0]), post_clip(client, clipped)

    assert (clean["unknown_reason"], clean.get("unknown_cause")) == ("unsure", None)
    assert clean["advice"].startswith("the voice sounds between known voices")
    assert overdriven["unknown_reason"] == "poor_recording"
    cause = overdriven["unknown_cause"]
    assert cause["measure"] == "clipped_fraction"
    assert cause["value"] == overdriven["quality"]["clipped_fraction"] > cause["limit"] == 0.01
    assert overdriven["advice"] == "lower the microphone gain or move back from the microphone"
    assert overdriven["quality"]["issues"][0] == cause


def test_each_batch_result_measures_its_recording(client: TestClient, steve_wav: bytes) -> None:
    response = client.post("/predict/batch", files=[("files", ("a.wav", steve_wav, "audio/wav"))])

    [item] = response.json()["results"]
    assert set(item["result"]["quality"]) == QUALITY_KEYS


# --- explanations and agreement with Keras -------------------------------------------------------


def test_explain_shows_histogram_inputs_and_hidden_activations(
    client: TestClient, steve_wav: bytes, default_bundle: Bundle
) -> None:
    cfg = default_bundle.feature_config
    row = histogram(decode(steve_wav, sample_rate=cfg.sample_rate).samples, cfg)
    expected = row[: cfg.n_bands]  # the band spread after the histogram is the open set's

    explain = post_clip(client, steve_wav, explain="true")["explain"]

    assert len(explain["histogram"]) == 60
    np.testing.assert_allclose(explain["histogram"], expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(
        explain["inputs"], default_bundle.network.standardise(expected), rtol=0, atol=1e-5
    )
    assert len(explain["hidden"]) == 6
    assert all(0.0 <= h <= 1.0 for h in explain["hidden"])
    assert explain["band_centres_hz"] == band_centres(cfg).tolist()


@pytest.fixture(scope="module")
def keras_model() -> keras.Model:
    model: keras.Model = keras.saving.load_model(MODEL_DIR / "model.keras", compile=False)
    return model


def test_scores_and_hidden_activations_match_keras(
    client: TestClient, demo_clips: dict[str, list[bytes]], keras_model: keras.Model
) -> None:
    hidden_layer = keras_model.get_layer("hidden")
    clips = [clip for voice_clips in demo_clips.values() for clip in voice_clips]

    answers = [post_clip(client, clip, explain="true") for clip in clips]

    inputs = np.array([a["explain"]["inputs"] for a in answers], dtype=np.float32)
    scores = np.array([list(a["scores"].values()) for a in answers])
    hidden = np.array([a["explain"]["hidden"] for a in answers])
    np.testing.assert_allclose(scores, keras_model(inputs).numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(hidden, hidden_layer(inputs).numpy(), rtol=0, atol=1e-5)


def test_requests_never_call_keras(
    client: TestClient, steve_wav: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a request called Keras")

    for method in ("__call__", "predict", "predict_on_batch"):
        monkeypatch.setattr(keras.Model, method, refuse)

    assert client.post("/predict", content=steve_wav, headers=WAV).status_code == 200


# --- errors --------------------------------------------------------------------------------------

QUIET = 10 ** (-90 / 20)  # a -90 dBFS peak, below the -80 dBFS silence level


def _nan_clip() -> bytes:
    samples = tone(seconds=1.0)
    samples[100:110] = np.nan
    return encode(samples, subtype="FLOAT")


def _infinite_clip() -> bytes:
    samples = tone(seconds=1.0)
    samples[5] = -np.inf
    return encode(samples, subtype="FLOAT")


INVALID_AUDIO: dict[str, tuple[Callable[[], bytes], str]] = {
    "empty": (lambda: b"", "clip is empty (0 bytes)"),
    "header only": (
        lambda: encode(np.zeros(0, np.float32)),
        "clip has no samples",
    ),
    "digital silence": (
        lambda: encode(np.zeros(SR, np.float32)),
        "clip is silent: peak level -inf dBFS is below -80 dBFS",
    ),
    "-90 dBFS tone": (
        lambda: encode(tone(seconds=1.0, amplitude=QUIET), subtype="FLOAT"),
        "clip is silent: peak level -90.0 dBFS is below -80 dBFS",
    ),
    "50 ms tone": (
        lambda: encode(tone(seconds=0.05)),
        "clip holds no speech: it has 0.06 s of sound within 40 dB of its loudest frame; "
        "at least 0.1 s is needed",
    ),
    "3 s tone": (
        lambda: encode(tone(seconds=3.0)),
        "clip is 3.00 s long; the maximum is 2 s: send a shorter clip, or raise the server's "
        "VOICEID_MAX_CLIP_SECONDS",
    ),
    "one sample over 2 s": (
        lambda: encode(tone(seconds=2.0 + 1 / SR)),
        "clip is 2.0001 s long; the maximum is 2 s: send a shorter clip, or raise the server's "
        "VOICEID_MAX_CLIP_SECONDS",
    ),
    "NaN samples": (_nan_clip, "clip has 10 non-finite samples (NaN or infinity)"),
    "infinite sample": (_infinite_clip, "clip has 1 non-finite samples (NaN or infinity)"),
    "1e30 float samples": (
        lambda: encode(tone(seconds=1.0, amplitude=1e30), subtype="FLOAT"),
        "clip overflows the spectrum: its peak sample 1e+30 is far beyond full scale (1.0)",
    ),
    "stereo, one channel inverted": (
        lambda: encode(np.stack([tone(), -tone()], axis=1), subtype="FLOAT"),
        "clip's 2 channels cancel when mixed to one (the mix is silent): one of them is "
        "inverted; send one channel alone",
    ),
    "a constant": (
        lambda: encode(np.full(SR, 0.3, np.float32), subtype="FLOAT"),
        "clip is offset from zero by +0.300 of full scale, more than its loudest 0.1 s swings "
        "about its own mean (RMS 0.000): a fault of the microphone or converter, or no sound "
        "at all",
    ),
    "ultrasound at 96 kHz": (
        lambda: encode(tone(30_000, sample_rate=96_000), 96_000, subtype="FLOAT"),
        "clip holds almost no sound below 8000 Hz: resampled from 96000 Hz to 16000 Hz it "
        "keeps -63 dB of its energy, under the -30 dB needed",
    ),
}


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_a_float_clip_far_beyond_full_scale_that_the_features_take_is_measured(
    client: TestClient,
) -> None:
    """Its fall to silence overflowed float32: an infinite fall_db made the answer a 500."""
    stops = np.concatenate([harmonics(), np.zeros(SR // 2, np.float32)])

    plain, loud = (client.post("/predict", content=encode(gain * stops, subtype="FLOAT"),
                               headers=WAV) for gain in (1.0, 2.0**40))  # fmt: skip

    assert loud.status_code == 200
    assert loud.json()["quality"]["level_dbfs"] == pytest.approx(
        plain.json()["quality"]["level_dbfs"] + 20 * np.log10(2.0**40), abs=0.02
    )


def test_a_clip_of_the_longest_length_is_answered(make_client: ClientFactory) -> None:
    client = make_client(max_clip_seconds=2.0)

    response = client.post("/predict", content=encode(harmonics(seconds=2.0)), headers=WAV)

    assert response.status_code == 200
    assert response.json()["duration_s"] == 2.0


@pytest.mark.parametrize("case", INVALID_AUDIO)
@pytest.mark.parametrize("how", ["multipart", "raw"])
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the 1e30 clip's
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_invalid_audio_is_422_with_the_pipelines_message(
    make_client: ClientFactory, case: str, how: str
) -> None:
    make_clip, detail = INVALID_AUDIO[case]
    client = make_client(max_clip_seconds=2.0)
    clip = make_clip()

    if how == "multipart":
        response = client.post("/predict", files={"file": ("clip.wav", clip, "audio/wav")})
    else:
        response = client.post("/predict", content=clip, headers=WAV)

    assert response.status_code == 422
    assert response.json() == {"detail": detail}


PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


def test_undecodable_bytes_are_415_naming_the_format(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pipeline.audio.shutil.which", lambda name: None)  # as without ffmpeg

    response = client.post("/predict", content=PNG, headers=WAV)

    assert response.status_code == 415
    assert response.json() == {
        "detail": "cannot decode PNG image data: not a supported audio format"
    }


@pytest.mark.requires_ffmpeg
@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (PNG, "PNG image"),
        (b"%PDF-1.7\n", "PDF document"),
        (b"hello", "text"),
        (b"\x00\x01", "unknown"),
    ],
)
def test_bytes_ffmpeg_cannot_decode_are_415_naming_the_format(
    client: TestClient, data: bytes, kind: str
) -> None:
    response = client.post("/predict", files={"file": ("x.bin", data, "audio/wav")})

    assert response.status_code == 415
    assert response.json() == {"detail": f"cannot decode {kind} data: not a supported audio format"}


@pytest.mark.parametrize(
    ("headers", "shown"),
    [({"content-type": "text/plain"}, "'text/plain'"),
     ({"content-type": "application/json; charset=utf-8"}, "'application/json'"),
     ({}, "'(none)'")],
)  # fmt: skip
def test_other_content_types_are_415(
    client: TestClient, steve_wav: bytes, headers: dict[str, str], shown: str
) -> None:
    response = client.post("/predict", content=steve_wav, headers=headers)

    assert response.status_code == 415
    assert response.json() == {
        "detail": f"unsupported content type {shown}: send multipart/form-data with a 'file' "
        "field, or the clip itself with an audio/* content type"
    }


@pytest.mark.parametrize(
    "parts",
    [{"clip": ("clip.wav", b"RIFF", "audio/wav")},
     {"other": (None, "x"), "other_file": ("a.wav", b"RIFF", "audio/wav")}],
    ids=["misnamed file", "no file field"],
)  # fmt: skip
def test_multipart_without_a_file_field_is_422(client: TestClient, parts: dict[str, Any]) -> None:
    response = client.post("/predict", files=parts)

    assert response.status_code == 422
    assert response.json() == {"detail": "multipart body has no 'file' field holding a file"}


def test_a_clip_sent_as_a_text_field_is_422_saying_so(client: TestClient, steve_wav: bytes) -> None:
    response = client.post("/predict", files={"file": (None, steve_wav)})  # curl -F file=<clip

    assert response.status_code == 422
    assert response.json() == {
        "detail": "multipart body has no 'file' field holding a file: its 'file' part has no "
        "filename parameter, so it is text; send the clip as a file (curl -F file=@clip.wav)"
    }


def test_malformed_multipart_is_400(client: TestClient) -> None:
    no_boundary = client.post(
        "/predict", content=b"--x\r\n", headers={"content-type": "multipart/form-data"}
    )
    bad_body = client.post(
        "/predict", content=b"garbage", headers={"content-type": "multipart/form-data; boundary=x"}
    )

    assert (no_boundary.status_code, no_boundary.json()) == (400, {
        "detail": "content type 'multipart/form-data' has no boundary: multipart/form-data "
        "needs one"})  # fmt: skip
    assert (bad_body.status_code, bad_body.json()) == (
        400, {"detail": "multipart body does not start with its boundary"})  # fmt: skip


def test_explain_must_be_a_boolean(client: TestClient, steve_wav: bytes) -> None:
    response = client.post("/predict", content=steve_wav, headers=WAV, params={"explain": "maybe"})

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "explain"]
    assert error["msg"] == "Input should be a valid boolean, unable to interpret input"


# --- batch ---------------------------------------------------------------------------------------


def batch(*parts: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (name, data, "audio/wav")) for name, data in parts]


def test_batch_answers_each_file_or_says_what_was_wrong_with_it(
    client: TestClient, demo_clips: dict[str, list[bytes]], default_bundle: Bundle
) -> None:
    steve, david = demo_clips["Steve"][0], demo_clips["David"][0]
    files = batch(("steve.wav", steve), ("png.wav", PNG), ("short.wav", encode(tone(seconds=0.05))),
                  ("david.wav", david), ("empty.wav", b""))  # fmt: skip

    response = client.post("/predict/batch", files=files)

    assert response.status_code == 200
    body = response.json()
    assert body["model"] == {"name": default_bundle.name, "version": default_bundle.version}
    results = body["results"]
    assert [(r["file"], r["ok"], r["status"]) for r in results] == [
        ("steve.wav", True, 200), ("png.wav", False, 415), ("short.wav", False, 422),
        ("david.wav", True, 200), ("empty.wav", False, 422),
    ]  # fmt: skip
    assert results[0]["result"]["scores"] == post_clip(client, steve)["scores"]
    assert results[3]["result"]["scores"] == post_clip(client, david)["scores"]
    assert "detail" not in results[0] and "result" not in results[1]
    # The rest of this message depends on whether ffmpeg is installed.
    assert results[1]["detail"].startswith("cannot decode PNG image data: ")
    assert results[2]["detail"] == (
        "clip holds no speech: it has 0.06 s of sound within 40 dB of its loudest frame; "
        "at least 0.1 s is needed"
    )
    assert results[4]["detail"] == "clip is empty (0 bytes)"


def test_each_batch_result_is_the_answer_predict_gives_its_file(
    client: TestClient, demo_clips: dict[str, list[bytes]]
) -> None:
    clips = [*demo_clips["Steve"], *demo_clips["David"], *demo_clips["Stranger"]]

    response = client.post("/predict/batch", files=batch(*[(f"{i}.wav", c) for i, c in
                                                           enumerate(clips)]))  # fmt: skip

    results = response.json()["results"]
    assert [(r["file"], r["ok"], r["status"]) for r in results] == [
        (f"{i}.wav", True, 200) for i in range(len(clips))
    ]
    untimed = [{**r["result"], "timing_ms": None} for r in results]
    assert untimed == [{**post_clip(client, clip), "timing_ms": None} for clip in clips]


def test_batch_says_which_setting_admits_a_longer_clip(
    make_client: ClientFactory, steve_wav: bytes
) -> None:
    client = make_client(max_clip_seconds=2.0)

    response = client.post("/predict/batch", files=batch(("long.wav", encode(tone(seconds=3.0)))))

    assert response.json()["results"][0]["detail"] == (
        "clip is 3.00 s long; the maximum is 2 s: send a shorter clip, or raise the server's "
        "VOICEID_MAX_CLIP_SECONDS"
    )


def test_batch_over_the_file_count_limit_is_413(
    make_client: ClientFactory, steve_wav: bytes
) -> None:
    client = make_client(batch_max_files=3)

    response = client.post("/predict/batch", files=batch(*[("s.wav", steve_wav)] * 4))

    assert response.status_code == 413
    assert response.json() == {"detail": "batch of 4 files is over the limit of 3"}


def test_batch_at_the_file_count_limit_is_answered(
    make_client: ClientFactory, steve_wav: bytes
) -> None:
    client = make_client(batch_max_files=3)

    response = client.post("/predict/batch", files=batch(*[("s.wav", steve_wav)] * 3))

    assert response.status_code == 200
    assert [r["ok"] for r in response.json()["results"]] == [True] * 3


def test_batch_without_files_is_422(client: TestClient) -> None:
    response = client.post("/predict/batch", files={"files": (None, "not a file")})

    assert response.status_code == 422
    assert response.json() == {
        "detail": "multipart body has no 'files' field holding a file: its 'files' part has no "
        "filename parameter, so it is text; send the clip as a file (curl -F files=@clip.wav)"
    }


def test_batch_of_a_raw_body_is_415(client: TestClient, steve_wav: bytes) -> None:
    response = client.post("/predict/batch", content=steve_wav, headers=WAV)

    assert response.status_code == 415
    assert response.json() == {
        "detail": "unsupported content type 'audio/wav': send multipart/form-data with one "
        "'files' field per clip"
    }


def multipart_body(field: str, filename: str, data: bytes, *, closed: bool = True) -> bytes:
    """A body of one part holding ``data`` as file ``filename`` in ``field`` (boundary ``b``),
    without its closing boundary unless ``closed``."""
    head = (f'--b\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            "Content-Type: audio/wav\r\n\r\n").encode()  # fmt: skip
    return head + data + b"\r\n" + (b"--b--\r\n" if closed else b"")


MALFORMED = {
    "no boundary": ("multipart/form-data", True, "content type 'multipart/form-data' has no "
                    "boundary: multipart/form-data needs one"),
    "cut short": ("multipart/form-data; boundary=b", False,
                  "multipart body ends before its closing boundary"),
}  # fmt: skip


@pytest.mark.parametrize("path", ["/predict/batch", "/speakers/Zoë/clips"])
@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_body_of_many_files_is_refused_as_predict_refuses_it(
    client: TestClient, steve_wav: bytes, path: str, case: str
) -> None:
    content_type, closed, detail = MALFORMED[case]
    headers = {"content-type": content_type}
    one_file = multipart_body("file", "a.wav", steve_wav, closed=closed)
    many_files = multipart_body("files", "a.wav", steve_wav, closed=closed)

    one = client.post("/predict", headers=headers, content=one_file)
    many = client.post(path, headers=headers, content=many_files)

    assert (one.status_code, one.json()) == (400, {"detail": detail})
    assert (many.status_code, many.json()) == (400, {"detail": detail})


@pytest.mark.parametrize("path", ["/predict/batch", "/speakers/Zoë/clips"])
@pytest.mark.parametrize(
    ("body", "detail"),
    [(b"garbage", "multipart body does not start with its boundary"),
     (b"x--b\r\n", "multipart body does not start with its boundary"),
     (b"--bjunk\r\n\r\n\r\n--b--", "multipart boundary is not followed by a line break"),
     (b"--b\r\nContent-Disposition: form-data", "multipart body ends inside a part's headers"),
     (b"--b\r\n\r\nRIFF", "multipart body ends before its closing boundary")],
)  # fmt: skip
def test_a_body_that_is_not_multipart_is_refused_in_predicts_words(
    client: TestClient, path: str, body: bytes, detail: str
) -> None:
    headers = {"content-type": "multipart/form-data; boundary=b"}

    one = client.post("/predict", headers=headers, content=body)
    many = client.post(path, headers=headers, content=body)

    assert (one.status_code, one.json()) == (400, {"detail": detail})
    assert (many.status_code, many.json()) == (400, {"detail": detail})


@pytest.mark.parametrize("path", ["/predict/batch", "/speakers/Zoë/clips"])
def test_a_long_file_name_that_predict_takes_is_taken_with_many_files(
    client: TestClient, steve_wav: bytes, path: str
) -> None:
    name = "n" * 10_000 + ".wav"  # a part's headers over 10 KB
    headers = {"content-type": "multipart/form-data; boundary=b"}

    one = client.post("/predict", headers=headers, content=multipart_body("file", name, steve_wav))
    many = client.post(path, headers=headers, content=multipart_body("files", name, steve_wav))

    assert (one.status_code, many.status_code) == (200, 200)
    answer = many.json()
    assert (answer["results"] if "results" in answer else answer["accepted"])[0]["file"] == name
