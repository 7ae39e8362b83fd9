"""POST /timeline: who spoke when, its limits and its key."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conversations import conversation
from tests.helpers import ClientFactory
from tests.signals import encode

WAV = {"content-type": "audio/wav"}


def post_recording(client: TestClient, data: bytes, **headers: str) -> Any:
    return client.post("/timeline", content=data, headers=WAV | headers)


def test_a_conversation_comes_back_as_turns_with_speaking_time(client: TestClient) -> None:
    y, truth = conversation(["Steve", "David"])

    response = client.post("/timeline", files={"file": ("talk.wav", encode(y), "audio/wav")})

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"segments", "totals", "duration_s", "window_s", "hop_s", "model",
                         "timing_ms"}  # fmt: skip
    assert (body["window_s"], body["hop_s"]) == (1.0, 0.25)
    assert body["duration_s"] == round(len(y) / 16000, 3)
    named = [(s["speaker"], s["start"] < truth[0][1]) for s in body["segments"] if not s["unknown"]]
    assert ("Steve", True) in named and ("David", False) in named
    assert all(s == ("Steve", True) or s == ("David", False) for s in named)
    assert set(body["totals"]) <= {"Steve", "David", "unknown"}
    assert [s["start"] for s in body["segments"]] == sorted(s["start"] for s in body["segments"])


def test_a_recording_over_the_limit_is_422_naming_it(make_client: ClientFactory) -> None:
    client = make_client(timeline_max_seconds=2.0)
    y, _ = conversation(["Steve", "David"])

    response = post_recording(client, encode(y))

    assert response.status_code == 422
    assert response.json()["detail"] == (
        f"clip is {len(y) / 16000:.2f} s long; the maximum is 2 s: send a shorter clip, or "
        "raise the server's VOICEID_TIMELINE_MAX_SECONDS"
    )


def test_a_body_over_the_byte_limit_is_413(make_client: ClientFactory) -> None:
    client = make_client(timeline_max_bytes=2048)

    response = post_recording(client, b"\0" * 4096)

    assert response.status_code == 413
    assert response.json()["detail"] == "upload of 4096 bytes is over the limit of 2048 bytes"


def test_a_silent_recording_is_422(client: TestClient) -> None:
    response = post_recording(client, encode([0.0] * 16000))

    assert response.status_code == 422
    assert response.json()["detail"].startswith("clip is silent")


def test_the_key_is_needed_when_one_is_set(make_client: ClientFactory) -> None:
    client = make_client(api_key="sesame")
    y, _ = conversation(["Steve"], takes=1)

    assert post_recording(client, encode(y)).status_code == 401
    assert post_recording(client, encode(y), **{"X-API-Key": "sesame"}).status_code == 200
