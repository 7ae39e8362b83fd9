"""Upload limits: a 413 before the body is read when Content-Length is over, and while it streams
when it is not declared."""

from __future__ import annotations

import asyncio
import gzip
import math
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.limits import DEFAULT_BODY_BYTES
from service.settings import Settings
from tests.helpers import MODEL_DIR, ClientFactory, async_client

LIMIT = 100_000  # bytes, the /predict limit of these tests
CHUNK = 10_000  # bytes per streamed chunk


class CountingBody:
    """An async request body: ``data`` in chunks of ``CHUNK`` bytes, counting those pulled."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.data), CHUNK):
            self.pulled += 1
            yield self.data[start : start + CHUNK]


def post_streaming(
    path: str, body: CountingBody, headers: dict[str, str], **settings: Any
) -> httpx.Response:
    app = create_app(Settings(model_dir=MODEL_DIR, **settings))

    async def send() -> httpx.Response:
        async with async_client(app) as client:
            return await client.post(path, content=body, headers=headers)

    return asyncio.run(send())


def test_declared_length_over_the_limit_is_413_and_the_body_only_drained() -> None:
    body = CountingBody(bytes(11 * CHUNK))
    headers = {"content-type": "audio/wav", "content-length": str(11 * CHUNK)}

    response = post_streaming("/predict", body, headers, max_upload_bytes=LIMIT)

    assert response.status_code == 413
    assert response.json() == {"detail": "upload of 110000 bytes is over the limit of 100000 bytes"}
    assert body.pulled == 11  # read and thrown away (a lingering close), never parsed


def test_chunked_body_over_the_limit_is_413_as_soon_as_it_passes_it() -> None:
    body = CountingBody(bytes(1000 * CHUNK))  # 10 MB, sent without a Content-Length

    response = post_streaming(
        "/predict", body, {"content-type": "audio/wav"}, max_upload_bytes=LIMIT
    )

    assert response.status_code == 413
    assert response.json() == {
        "detail": "upload is over the limit of 100000 bytes (stopped reading at 110000 bytes)"
    }
    assert body.pulled == 1000  # the rest drained (within LINGER_BYTES), so the client can read


def test_chunked_multipart_batch_over_its_limit_is_413_while_streaming() -> None:
    part = b'--b\r\nContent-Disposition: form-data; name="files"; filename="a.wav"\r\n\r\n'
    body = CountingBody(part + bytes(1000 * CHUNK))
    headers = {"content-type": "multipart/form-data; boundary=b"}

    response = post_streaming("/predict/batch", body, headers, batch_max_bytes=LIMIT)

    assert response.status_code == 413
    assert response.json() == {
        "detail": "upload is over the limit of 100000 bytes (stopped reading at 110000 bytes)"
    }
    assert body.pulled == 1001


def test_chunked_clip_under_the_limit_is_answered(steve_wav: bytes) -> None:
    body = CountingBody(steve_wav)

    response = post_streaming("/predict", body, {"content-type": "audio/wav"})

    assert response.status_code == 200
    assert body.pulled == math.ceil(len(steve_wav) / CHUNK)


def test_chunked_multipart_batch_under_its_limit_is_answered_file_by_file(
    steve_wav: bytes,
) -> None:
    files = [("files", (f"{i}.wav", steve_wav, "audio/wav")) for i in range(3)]
    sent = httpx.Request("POST", "http://x/", files=files)
    body = CountingBody(sent.read())  # its parts' boundaries fall inside chunks

    response = post_streaming(
        "/predict/batch", body, {"content-type": sent.headers["content-type"]}
    )

    assert response.status_code == 200
    assert [(r["file"], r["status"]) for r in response.json()["results"]] == [
        ("0.wav", 200), ("1.wav", 200), ("2.wav", 200)]  # fmt: skip
    assert body.pulled == math.ceil(len(body.data) / CHUNK)


def test_declared_batch_over_its_limit_is_413_before_it_is_read() -> None:
    body = CountingBody(bytes(11 * CHUNK))
    headers = {"content-type": "multipart/form-data; boundary=b", "content-length": "110000"}

    response = post_streaming("/predict/batch", body, headers, batch_max_bytes=LIMIT)

    assert response.status_code == 413
    assert response.json() == {"detail": "upload of 110000 bytes is over the limit of 100000 bytes"}


@pytest.mark.parametrize("how", ["multipart", "raw"])
def test_upload_over_the_limit_is_413(make_client: ClientFactory, how: str) -> None:
    client = make_client(max_upload_bytes=LIMIT)
    data = bytes(LIMIT + 1)

    if how == "raw":
        response = client.post("/predict", content=data, headers={"content-type": "audio/wav"})
    else:
        response = client.post("/predict", files={"file": ("big.wav", data, "audio/wav")})

    sent = int(response.request.headers["content-length"])
    assert response.status_code == 413
    assert response.json() == {
        "detail": f"upload of {sent} bytes is over the limit of {LIMIT} bytes"
    }


def test_upload_at_the_limit_is_read(make_client: ClientFactory) -> None:
    client = make_client(max_upload_bytes=LIMIT)

    response = client.post("/predict", content=bytes(LIMIT), headers={"content-type": "audio/wav"})

    assert response.status_code == 415  # read in full, then found not to be audio


def test_other_paths_have_a_small_body_limit(make_client: ClientFactory) -> None:
    client = make_client(max_upload_bytes=LIMIT)
    padded_null = b" " * (DEFAULT_BODY_BYTES - 4) + b"null"  # JSON null: reload the served bundle

    at_limit = client.post(
        "/admin/reload", content=padded_null, headers={"content-type": "application/json"}
    )
    over = client.post(
        "/admin/reload", content=b" " + padded_null, headers={"content-type": "application/json"}
    )

    assert at_limit.status_code == 200
    assert (over.status_code, over.json()) == (
        413,
        {"detail": f"upload of {DEFAULT_BODY_BYTES + 1} bytes is over the limit of 65536 bytes"},
    )


COMPRESSED: dict[str, dict[str, Any]] = {
    "/predict": {"content": gzip.compress(b"RIFF"), "headers": {"content-type": "audio/wav"}},
    "/predict multipart": {"files": {"file": ("a.wav", gzip.compress(b"RIFF"))}},
    "/predict/batch": {"files": {"files": ("a.wav", gzip.compress(b"RIFF"))}},
    "/timeline": {"content": gzip.compress(b"RIFF"), "headers": {"content-type": "audio/wav"}},
    "/admin/reload": {"json": None},
}


@pytest.mark.parametrize("route", list(COMPRESSED))
@pytest.mark.parametrize("coding", ["gzip", "br", "GZIP", "identity, gzip"])
def test_a_compressed_body_is_415_naming_its_coding(
    client: TestClient, route: str, coding: str
) -> None:
    request = dict(COMPRESSED[route])
    headers = request.pop("headers", {}) | {"content-encoding": coding}

    response = client.post(route.split()[0], headers=headers, **request)

    assert response.status_code == 415
    assert response.json() == {
        "detail": f"Content-Encoding {coding!r} is not supported: send the body uncompressed"
    }
    assert response.headers["accept-encoding"] == "identity"


def test_an_identity_coding_is_no_coding(client: TestClient, steve_wav: bytes) -> None:
    headers = {"content-type": "audio/wav", "content-encoding": "identity"}

    response = client.post("/predict", content=steve_wav, headers=headers)

    assert response.status_code == 200
