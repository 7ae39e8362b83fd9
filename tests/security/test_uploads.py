"""Hostile uploads to the app: each a 4xx that says what was wrong, never a 5xx."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.compute import ComputeQueue
from service.errors import OverloadedError, status_for
from service.settings import Settings
from tests.helpers import LOOPBACK_URL, MODEL_DIR, ClientFactory, async_client
from tests.security import hostile
from tests.signals import encode, harmonics

WAV = {"content-type": "audio/wav"}
HOSTILE = {
    "riff junk": (hostile.riff_junk(), 415),
    "riff oversized chunk": (hostile.riff_oversized_chunk(), 415),
    "float near max": (hostile.float_wav_near_max(), 422),
    "flac bomb": (hostile.flac_bomb(), 422),
    "hls playlist": (hostile.hls_playlist("/etc/passwd"), 415),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_each_hostile_upload_is_a_quick_4xx(client: TestClient, name: str) -> None:
    data, status = HOSTILE[name]

    started = time.perf_counter()
    response = client.post("/predict", content=data, headers=WAV)

    assert time.perf_counter() - started < 2.0
    assert response.status_code == status
    assert response.json()["detail"]


def test_hostile_files_in_a_batch_fail_alone(client: TestClient, steve_wav: bytes) -> None:
    files = [("files", (name, data, "audio/wav")) for name, (data, _) in HOSTILE.items()]
    files.append(("files", ("steve.wav", steve_wav, "audio/wav")))

    response = client.post("/predict/batch", files=files)

    assert response.status_code == 200
    statuses = {item["file"]: item["status"] for item in response.json()["results"]}
    assert statuses == {name: status for name, (_, status) in HOSTILE.items()} | {"steve.wav": 200}


def test_the_per_clip_limit_holds_inside_a_batch(
    make_client: ClientFactory, steve_wav: bytes
) -> None:
    client = make_client(max_upload_bytes=100_000)
    big = bytes(200_000)
    files = [
        ("files", ("big.wav", big, "audio/wav")),
        ("files", ("ok.wav", steve_wav, "audio/wav")),
    ]

    items = client.post("/predict/batch", files=files).json()["results"]

    assert items[0] == {
        "file": "big.wav",
        "ok": False,
        "status": 413,
        "detail": "file of 200000 bytes is over the limit of 100000 bytes",
    }
    assert items[1]["status"] == 200


def test_a_stream_wav_is_accepted(client: TestClient) -> None:
    response = client.post("/predict", content=hostile.wav_stream(), headers=WAV)

    assert response.status_code == 200


def test_a_clip_over_its_compute_budget_is_503() -> None:
    queue = ComputeQueue()

    async def main() -> None:
        await queue.run(lambda: time.sleep(0.3), budget_s=0.05)

    with pytest.raises(OverloadedError) as caught:
        asyncio.run(main())
    queue.close()

    assert str(caught.value) == "the server is busy: the clip was not done within 0.05 s"
    assert status_for(caught.value) == 503


def test_the_503_for_a_spent_budget_says_when_to_retry(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client(clip_budget_s=0.05)
    monkeypatch.setattr("service.routes.predict.answer_clip", lambda *a, **k: time.sleep(0.5))
    flac = encode(harmonics(seconds=1.0), fmt="FLAC")  # not short: the compute thread's

    response = client.post("/predict", content=flac, headers=WAV)

    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json() == {"detail": "the server is busy: the clip was not done within 0.05 s"}


def test_a_stalled_body_is_given_up_on_with_408(
    steve_wav: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("service.limits.BODY_IDLE_S", 0.1)

    async def stalling() -> AsyncIterator[bytes]:
        yield steve_wav[:1000]
        await asyncio.sleep(1.0)
        yield steve_wav[1000:]

    async def main() -> httpx.Response:
        async with async_client(create_app(Settings(model_dir=MODEL_DIR))) as client:
            return await client.post("/predict", content=stalling(), headers=WAV)

    response = asyncio.run(main())

    assert (response.status_code, response.json()) == (
        408,
        {"detail": "the request body stalled: nothing arrived for 0.1 s after 1000 bytes"},
    )


def test_a_bug_is_a_500_that_closes_the_connection(
    make_client: ClientFactory, steve_wav: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def bug(*args: object, **kwargs: object) -> None:
        raise IndexError("a bug, not the client's doing")

    monkeypatch.setattr("service.routes.predict.answer_clip", bug)
    client = TestClient(create_app(Settings(model_dir=MODEL_DIR)), base_url=LOOPBACK_URL,
                        raise_server_exceptions=False)  # fmt: skip

    with client:
        response = client.post("/predict", content=steve_wav, headers=WAV)

    assert (response.status_code, response.json()) == (500, {"detail": "internal server error"})
    assert response.headers["connection"] == "close"
