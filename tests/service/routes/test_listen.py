"""The /listen WebSocket: one answer per hop, speech or not, and the key from a browser."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from pipeline.bundle import Bundle
from tests.conversations import conversation
from tests.helpers import MODEL_DIR, ClientFactory
from tests.listening import closed_with, pcm, start

HOP_BYTES = 4000 * 2  # 0.25 s of 16 kHz 16-bit samples


@pytest.fixture
def client(make_client: ClientFactory) -> TestClient:
    """A server that takes the tests' recordings as fast as they are sent."""
    return make_client(listen_max_speed=1000, listen_burst_s=100)


def test_ready_gives_the_window_and_hop_in_use_in_whole_feature_frames(
    client: TestClient,
) -> None:
    with client.websocket_connect("/listen") as ws:
        ws.send_text('{"sample_rate": 16000, "window_s": 0.333, "hop_s": 0.013}')
        ready = ws.receive_json()
        ws.send_bytes(pcm(np.zeros(16_000, np.float32)))
        times = [ws.receive_json()["t"] for _ in range(3)]

    assert (ready["window_s"], ready["hop_s"]) == (0.33, 0.01)
    assert np.diff(times).round(6).tolist() == [0.01, 0.01]


def test_the_stream_says_who_speaks_each_hop_and_when_nobody_does(client: TestClient) -> None:
    y, truth = conversation(["Steve", "David"])
    data = pcm(y)

    with client.websocket_connect("/listen") as ws:
        ready = start(ws)
        for i in range(0, len(data), 3200):
            ws.send_bytes(data[i : i + 3200])
        answers = [ws.receive_json() for _ in range(len(data) // HOP_BYTES - 3)]

    assert ready["type"] == "ready" and ready["model"]["name"] == "default"
    assert (ready["sample_rate"], ready["window_s"], ready["hop_s"]) == (16000, 1.0, 0.25)
    assert [a["t"] for a in answers] == [0.5 + 0.25 * i for i in range(len(answers))]
    silent = [a for a in answers if not a["speech"]]
    assert silent and all(set(a) == {"t", "speech"} for a in silent)
    named = {a["speaker"] for a in answers if a["speech"] and not a["unknown"]}
    assert named == {"Steve", "David"}
    spoken = [a for a in answers if a["speech"]]
    assert all({"speaker", "confidence", "unknown"} <= set(a) for a in spoken)
    assert all("histogram" not in a for a in answers)
    assert any(a["speaker"] == "Steve" for a in answers if a["t"] < truth[0][1])


def test_explain_adds_the_histogram(client: TestClient) -> None:
    y, _ = conversation(["David"])

    with client.websocket_connect("/listen") as ws:
        start(ws, explain=True)
        ws.send_bytes(pcm(y[: 2 * 16000]))
        answers = [ws.receive_json() for _ in range(5)]

    assert all(len(a["histogram"]) == 60 for a in answers if a["speech"])
    assert any(a["speech"] for a in answers)


def test_the_client_leaving_frees_its_stream(client: TestClient) -> None:
    with client.websocket_connect("/listen") as ws:
        start(ws)
        assert client.app.state.streams.open == 1  # type: ignore[attr-defined]

    with client.websocket_connect("/listen") as ws:  # closing is seen when the next one starts
        start(ws)
        assert client.app.state.streams.open == 1  # type: ignore[attr-defined]


def test_frames_of_a_few_answers_are_answered_on_the_event_loop_and_longer_work_on_the_thread(
    client: TestClient,
) -> None:
    y, _ = conversation(["Steve", "David"])
    compute = client.app.state.compute  # type: ignore[attr-defined]

    with client.websocket_connect("/listen") as ws:  # 1 s windows, 0.25 s hops
        start(ws)
        for i in range(0, 4 * 16000, 4000):  # 16 frames of a hop each: 13 answers
            ws.send_bytes(pcm(y[i : i + 4000]))
        ws.send_bytes(pcm(y[64000:96000]))  # 2 s: 8 answers, 8 s of audio analysed
        answers = [ws.receive_json() for _ in range(13 + 8)]

    assert [a["t"] for a in answers] == [0.5 + 0.25 * i for i in range(21)]
    assert (compute.inline, compute.jobs) == (16, 1)


@pytest.mark.parametrize(
    ("where", "headers", "subprotocols", "message"),
    [
        ("subprotocol", {}, ["voiceid", "key.sesame"], {}),
        ("header", {"X-API-Key": "sesame"}, [], {}),
        ("first message", {}, [], {"key": "sesame"}),
    ],
)
def test_the_key_may_travel_where_a_browser_can_put_it(
    make_client: ClientFactory,
    where: str,
    headers: dict[str, str],
    subprotocols: list[str],
    message: dict[str, str],
) -> None:
    client = make_client(api_key="sesame")

    with client.websocket_connect("/listen", headers=headers, subprotocols=subprotocols) as ws:
        assert ws.accepted_subprotocol == ("voiceid" if subprotocols else None)
        assert start(ws, **message)["type"] == "ready", where


@pytest.mark.parametrize(
    ("subprotocols", "message", "reason"),
    [
        ([], {}, "missing API key: send it as the key.<KEY> subprotocol or as 'key'"),
        (["voiceid", "key.wrong"], {}, "wrong API key"),
        ([], {"key": "wrong"}, "wrong API key"),
    ],
)
def test_a_missing_or_wrong_key_closes_the_stream_before_any_audio(
    make_client: ClientFactory, subprotocols: list[str], message: dict[str, str], reason: str
) -> None:
    client = make_client(api_key="sesame")

    with client.websocket_connect("/listen", subprotocols=subprotocols) as ws:
        ws.send_text(json.dumps({"sample_rate": 16000} | message))
        assert closed_with(ws) == (1008, reason)


def test_a_server_without_a_model_closes_the_stream_with_4503(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    client = make_client(model_dir=tmp_path / "no-model")

    with client.websocket_connect("/listen") as ws:
        assert closed_with(ws) == (
            4503,
            "no model is loaded yet: model bundle 'no-model' does not exist or is not a folder",
        )


def changed_copy(tmp_path: Path, name: str, **changes: Any) -> Path:
    """A copy of the shipped bundle named ``name``, with ``changes`` to its metadata."""
    bundle = Path(shutil.copytree(MODEL_DIR, tmp_path / name))
    meta = json.loads((bundle / "metadata.json").read_text())
    (bundle / "metadata.json").write_text(json.dumps(meta | {"name": name} | changes))
    return bundle


def test_a_stream_answers_with_the_model_loaded_while_it_runs(
    client: TestClient, tmp_path: Path
) -> None:
    swapped = changed_copy(tmp_path, "swapped", labels=["Steve", "David"])  # names swapped
    data = pcm(conversation(["Steve"], takes=2)[0])

    with client.websocket_connect("/listen") as ws:
        start(ws)
        ws.send_bytes(data[: HOP_BYTES * 4])  # the first window: one answer
        before = ws.receive_json()
        assert client.post("/admin/reload", json={"model_dir": str(swapped)}).status_code == 200
        ws.send_bytes(data[HOP_BYTES * 4 : HOP_BYTES * 5])  # one hop more: the next answer
        after = ws.receive_json()

    assert (before["t"], before["speaker"]) == (0.5, "Steve")
    assert (after["t"], after["speaker"]) == (0.75, "David")


def test_a_model_with_other_features_loaded_while_a_stream_runs_ends_it_with_1012(
    client: TestClient, tmp_path: Path, default_bundle: Bundle
) -> None:
    features = default_bundle.feature_config.to_dict() | {"sample_rate": 8000, "fmax": 3800.0}
    other = changed_copy(tmp_path, "narrow", feature_config=features)

    with client.websocket_connect("/listen") as ws:
        start(ws)
        assert client.post("/admin/reload", json={"model_dir": str(other)}).status_code == 200
        ws.send_bytes(bytes(HOP_BYTES))
        code, reason = closed_with(ws)

    assert code == 1012
    assert reason == (
        f"the model now served, narrow ({default_bundle.version}), has other features than this "
        "stream's: start a new stream"
    )
