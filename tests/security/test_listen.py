"""Hostile /listen streams: each is closed with its code and a reason naming the setting, and
the worker stays free to serve the next stream."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.conversations import conversation
from tests.helpers import ClientFactory
from tests.listening import closed_with, pcm, start

SECOND = pcm(conversation(["Steve"], takes=1)[0][:16000])  # 1 s of 16 kHz speech


def still_serves(client: TestClient, *, audio: bool = True) -> None:
    """No stream is left open, and a fresh one is ready and (with ``audio``, when the limits
    under test let it send a second at once) gets its answers."""
    assert client.app.state.streams.open == 0  # type: ignore[attr-defined]
    with client.websocket_connect("/listen") as ws:
        assert start(ws)["type"] == "ready"
        if audio:
            ws.send_bytes(SECOND)
            assert ws.receive_json()["t"] == 0.5


@pytest.mark.parametrize(
    ("first", "reason"),
    [
        ("hello", "bad first message: it is not JSON"),
        (b"\x00\x01", "the first message must be JSON text, not binary"),
        ("[]", "bad first message: message: Input should be a valid dictionary or instance of"),
        ("{}", "bad first message: sample_rate: Field required"),
        ('{"sample_rate": 16000, "volume": 11}', "bad first message: volume: Extra inputs are"),
        ('{"sample_rate": "fast"}', "bad first message: sample_rate: Input should be a valid"),
        ('{"sample_rate": true}', "bad first message: sample_rate: Input should be a number, not"),
        (
            '{"sample_rate": 16000, "hop_s": false}',
            "bad first message: hop_s: Input should be a number, not true or false",
        ),
        (
            '{"sample_rate": 16000, "explain": "yes"}',
            "bad first message: explain: Input should be a valid boolean",
        ),
        ('{"sample_rate": 4000}', "bad first message: sample_rate=4000 must be from 8000 to"),
        ('{"sample_rate": 1e12}', "bad first message: sample_rate=1000000000000 must be from"),
        ('{"sample_rate": 16000, "hop_s": 0}', "bad first message: hop_s=0.0 must be positive"),
        ('{"sample_rate": 16000, "window_s": 60}', "bad first message: window_s=60.0 must be"),
        (
            "[" * 50_000 + "]" * 50_000,
            "bad first message: it is nested too deep: send one flat JSON object",
        ),
    ],
)
def test_a_wrong_first_message_is_4400_saying_what_is_wrong(
    client: TestClient, first: str | bytes, reason: str
) -> None:
    with client.websocket_connect("/listen") as ws:
        if isinstance(first, bytes):
            ws.send_bytes(first)
        else:
            ws.send_text(first)
        code, said = closed_with(ws)

    assert code == 4400 and said.startswith(reason), said
    still_serves(client)


def test_a_hop_shorter_than_a_feature_frame_is_4400_naming_the_range(client: TestClient) -> None:
    with client.websocket_connect("/listen") as ws:
        ws.send_text('{"sample_rate": 8000, "hop_s": 1e-9}')
        code, reason = closed_with(ws)

    assert (code, reason) == (4400, "bad first message: hop_s=1e-09 is shorter than one feature "
                              "frame: it must be from 0.01 s to window_s=1.0")  # fmt: skip
    still_serves(client)


@pytest.mark.parametrize("size", [1, 3, 4001])
def test_a_frame_of_an_odd_size_is_1007(client: TestClient, size: int) -> None:
    with client.websocket_connect("/listen") as ws:
        start(ws)
        ws.send_bytes(SECOND[:size])
        code, reason = closed_with(ws)

    assert (code, reason) == (1007, f"a frame of {size} bytes is not whole 16-bit samples (an "
                              "even count is needed)")  # fmt: skip
    still_serves(client)


def test_text_after_the_first_message_is_1007(client: TestClient) -> None:
    with client.websocket_connect("/listen") as ws:
        start(ws)
        ws.send_text('{"sample_rate": 8000}')
        code, reason = closed_with(ws)

    assert (code, reason) == (1007, "after the first message, send binary PCM frames only")
    still_serves(client)


def test_a_frame_over_the_limit_is_1009_naming_the_setting(make_client: ClientFactory) -> None:
    client = make_client(listen_max_frame_bytes=1024)

    with client.websocket_connect("/listen") as ws:
        start(ws)
        ws.send_bytes(SECOND[:2048])
        code, reason = closed_with(ws)

    assert (code, reason) == (
        1009,
        "frame of 2048 bytes is over VOICEID_LISTEN_MAX_FRAME_BYTES=1024",
    )
    still_serves(client, audio=False)


@pytest.mark.parametrize("sends_start", [False, True])
def test_a_stream_that_never_sends_audio_is_closed_when_idle(
    make_client: ClientFactory, sends_start: bool
) -> None:
    client = make_client(listen_idle_s=0.3)

    with client.websocket_connect("/listen") as ws:
        if sends_start:
            start(ws)
        code, reason = closed_with(ws)

    what = "audio" if sends_start else "first message"
    assert (code, reason) == (4408, f"no {what} for 0.3 s (VOICEID_LISTEN_IDLE_S)")
    still_serves(client)


def test_audio_faster_than_real_time_is_4429(make_client: ClientFactory) -> None:
    client = make_client(listen_max_speed=1.0, listen_burst_s=0.5)

    with client.websocket_connect("/listen") as ws:
        start(ws)
        for _ in range(6):  # one frame of the largest size (2.048 s) may be ahead, not 3 s
            ws.send_bytes(SECOND)
        code, reason = closed_with(ws)

    assert code == 4429
    assert re.fullmatch(r"[3-6]\.0 s of audio in \d\.\d s: faster than "
                        r"VOICEID_LISTEN_MAX_SPEED=1x real time", reason), reason  # fmt: skip
    still_serves(client, audio=False)


@pytest.mark.parametrize("sample_rate", [8000, 16000])
def test_one_frame_of_the_largest_size_is_no_burst_too_many(
    client: TestClient, sample_rate: int
) -> None:
    y = conversation(["Steve"], takes=2, sample_rate=sample_rate)[0]
    frame = pcm(y)[: client.app.state.settings.listen_max_frame_bytes]  # type: ignore[attr-defined]
    seconds = len(frame) / 2 / sample_rate  # over VOICEID_LISTEN_BURST_S's 2 s

    with client.websocket_connect("/listen") as ws:
        start(ws, sample_rate=sample_rate)
        ws.send_bytes(frame)
        answers = [ws.receive_json() for _ in range(int((seconds - 1) / 0.25) + 1)]

    assert seconds > 2
    assert answers[-1]["t"] == 0.5 + 0.25 * (len(answers) - 1)
    still_serves(client)


def test_a_flood_of_frames_is_4429(make_client: ClientFactory) -> None:
    client = make_client(listen_max_frames_per_s=20)

    with client.websocket_connect("/listen") as ws:
        start(ws)
        for _ in range(100):  # 2 bytes each: little audio, many messages
            ws.send_bytes(b"\0\0")
        code, reason = closed_with(ws)

    assert code == 4429
    assert reason.endswith("s: over VOICEID_LISTEN_MAX_FRAMES_PER_S=20")
    still_serves(client)


def test_a_stream_over_its_length_is_4413(make_client: ClientFactory) -> None:
    client = make_client(listen_max_seconds=0.5, listen_burst_s=5)

    with client.websocket_connect("/listen") as ws:
        start(ws)
        ws.send_bytes(SECOND)
        code, reason = closed_with(ws)

    assert (code, reason) == (4413, "stream reached VOICEID_LISTEN_MAX_SECONDS=0.5 s")


def test_more_streams_than_the_limit_are_1013_and_the_first_goes_on(
    make_client: ClientFactory,
) -> None:
    client = make_client(listen_max_streams=2)

    with client.websocket_connect("/listen") as first, client.websocket_connect("/listen") as ws:
        start(first)
        start(ws)
        with client.websocket_connect("/listen") as third:
            code, reason = closed_with(third)
        first.send_bytes(SECOND)
        answer: dict[str, Any] = first.receive_json()

    assert code == 1013
    assert reason == "2 streams are open, the most this worker takes " \
        "(VOICEID_LISTEN_MAX_STREAMS); try again later"  # fmt: skip
    assert answer["t"] == 0.5
    deadline = time.monotonic() + 10
    while client.app.state.streams.open and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.05)
    still_serves(client)


def test_a_long_run_of_noise_and_clipping_is_answered_without_error(
    make_client: ClientFactory,
) -> None:
    client = make_client(listen_burst_s=10)
    rng = np.random.default_rng(0)
    loud = np.clip(rng.standard_normal(3 * 16000) * 4, -1, 1)

    with client.websocket_connect("/listen") as ws:
        start(ws, explain=True)
        data = pcm(loud) + bytes(2 * 16000)
        for i in range(0, len(data), 8000):
            ws.send_bytes(data[i : i + 8000])
        answers = [ws.receive_json() for _ in range(13)]

    assert [a["t"] for a in answers] == [0.5 + 0.25 * i for i in range(13)]
    assert json.dumps(answers)  # all finite, all JSON
