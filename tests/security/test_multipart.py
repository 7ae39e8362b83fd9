"""A fuzz of the multipart reader: whatever the body, an answer below 500, bounded for CI."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.app import create_app
from service.settings import Settings
from tests.helpers import LOOPBACK_URL, MODEL_DIR
from tests.signals import encode, tone

CLIP = encode(tone(220, seconds=0.3))
BOUNDARY = b"fuzz"


def _part(name: bytes, filename: bytes, body: bytes) -> bytes:
    return (
        b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data; name=\"" + name
        + b"\"; filename=\"" + filename + b"\"\r\nContent-Type: audio/wav\r\n\r\n" + body + b"\r\n"
    )  # fmt: skip


@pytest.fixture(scope="module")
def fuzz_client() -> Iterator[TestClient]:
    settings = Settings(
        model_dir=MODEL_DIR, max_upload_bytes=20_000, batch_max_bytes=60_000, batch_max_files=4
    )
    with TestClient(create_app(settings), base_url=LOOPBACK_URL) as client:
        yield client


_fields = st.sampled_from([b"file", b"files", b"other", b"", b'fi"le', b"files\r\n"])
_names = st.binary(max_size=12) | st.sampled_from([b"a.wav", b"../../etc/passwd", b"\x00"])
_bodies = st.sampled_from([CLIP, b"", b"RIFF", CLIP[:100]]) | st.binary(max_size=64)


@settings(
    max_examples=120,
    deadline=3000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    parts=st.lists(st.tuples(_fields, _names, _bodies), max_size=6),
    tail=st.sampled_from([b"--fuzz--\r\n", b"", b"--fuzz", b"garbage", b"--fuzz--"]),
    cut=st.integers(0, 40),
    path=st.sampled_from(["/predict", "/predict/batch"]),
)
def test_any_multipart_body_gets_an_answer_below_500(
    fuzz_client: TestClient,
    parts: list[tuple[bytes, bytes, bytes]],
    tail: bytes,
    cut: int,
    path: str,
) -> None:
    body = b"".join(_part(*p) for p in parts) + tail
    body = body[: len(body) - cut] if cut < len(body) else body

    response = fuzz_client.post(
        path, content=body, headers={"content-type": "multipart/form-data; boundary=fuzz"}
    )

    assert response.status_code < 500, response.text


@pytest.mark.parametrize("filename", [b"a.wav", None], ids=["files", "fields"])
def test_a_thousand_and_one_parts_are_413_naming_the_setting(filename: bytes | None) -> None:
    settings = Settings(model_dir=MODEL_DIR, batch_max_files=4)  # the body limit is far above
    if filename is None:  # a part without a file name is a field
        part = b'--fuzz\r\nContent-Disposition: form-data; name="files"\r\n\r\nx\r\n'
    else:
        part = _part(b"files", filename, b"x")

    with TestClient(create_app(settings), base_url=LOOPBACK_URL) as client:
        response = client.post(
            "/predict/batch",
            content=part * 1001 + b"--fuzz--\r\n",
            headers={"content-type": "multipart/form-data; boundary=fuzz"},
        )

    assert (response.status_code, response.json()) == (413, {
        "detail": "multipart body has more than 1000 parts: a batch takes at most 4 files "
                  "(VOICEID_BATCH_MAX_FILES)"})  # fmt: skip
