"""The multipart reader: the files of a well-formed body, as bytes or as views into a batch's
buffer, and every refusal's words."""

from __future__ import annotations

import httpx
import pytest

from service.errors import MalformedBodyError, MissingFieldError
from service.multipart import MAX_PARTS, TooManyPartsError, boundary_of, file_part, file_parts


def encoded(files: list[tuple[str, tuple[str | None, bytes]]]) -> tuple[bytes, bytes]:
    """The body and boundary httpx (what the tests' clients use) sends for ``files``."""
    request = httpx.Request("POST", "http://x/", files=files)
    return request.read(), boundary_of(request.headers["content-type"])


def test_the_file_of_its_field_comes_back_byte_for_byte() -> None:
    clip = bytes(range(256)) * 4 + b"\r\n--not-the-boundary\r\n"
    body, boundary = encoded([("other", (None, b"text")), ("file", ("a b.wav", clip))])

    assert file_part(body, boundary, "file") == ("a b.wav", clip)


def test_a_preamble_and_quoted_parameters_are_read() -> None:
    body = (b"preamble\r\n--b\r\ncontent-disposition: form-data; filename=\"x\\\"y.wav\"; "
            b"name=\"file\"\r\n\r\nRIFF\r\n--b--")  # fmt: skip

    assert file_part(body, boundary_of('multipart/form-data; boundary="b"'), "file") == (
        'x"y.wav', b"RIFF")  # fmt: skip


def test_the_files_of_a_bytearray_body_are_views_into_it_not_copies() -> None:
    clips = [bytes(range(256)) * 4 + b"\r\n--not-the-boundary\r\n", b"RIFF", b""]
    files = [("files", (f"{i}.wav", clip)) for i, clip in enumerate(clips)]
    encoded_body, boundary = encoded([("other", (None, b"text")), *files])
    body = bytearray(encoded_body)

    found = file_parts(body, boundary, "files", max_parts=MAX_PARTS)

    assert [(name, bytes(data)) for name, data in found] == [
        (f"{i}.wav", clip) for i, clip in enumerate(clips)
    ]
    assert all(isinstance(data, memoryview) and data.obj is body for _, data in found)
    assert file_parts(encoded_body, boundary, "files", max_parts=MAX_PARTS) == [
        (name, bytes(data)) for name, data in found
    ]


MALFORMED = [
    (b"garbage", "multipart body does not start with its boundary"),
     (b"x--b\r\n", "multipart body does not start with its boundary"),
     (b"--bjunk\r\n\r\n\r\n--b--", "multipart boundary is not followed by a line break"),
     (b"--b\r\nContent-Disposition: form-data", "multipart body ends inside a part's headers"),
     (b"--b\r\n\r\nRIFF", "multipart body ends before its closing boundary"),
     (b"--b\r\n\r\n\r\n" * (MAX_PARTS + 1) + b"--b--",
      f"multipart body has over {MAX_PARTS} parts"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "message"),
    [*MALFORMED,
     (b'--b\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n1\r\n'
      b'--b\r\nContent-Disposition: form-data; name="file"; filename="b"\r\n\r\n2\r\n--b--',
      "multipart body holds 2 files in 'file'; send one")],
)  # fmt: skip
def test_a_body_that_is_not_well_formed_is_refused_saying_why(body: bytes, message: str) -> None:
    with pytest.raises(MalformedBodyError) as caught:
        file_part(body, b"b", "file")

    assert str(caught.value) == message


@pytest.mark.parametrize(("body", "message"), MALFORMED)
def test_a_bytearray_body_is_refused_in_the_same_words(body: bytes, message: str) -> None:
    with pytest.raises(MalformedBodyError) as caught:
        file_parts(bytearray(body), b"b", "file", max_parts=MAX_PARTS)

    assert str(caught.value) == message
    assert isinstance(caught.value, TooManyPartsError) == message.endswith(" parts")


@pytest.mark.parametrize(
    "files", [[("clip", ("a.wav", b"RIFF"))], []], ids=["another field", "no parts"]
)
def test_a_body_without_a_file_in_its_field_is_missing_it(
    files: list[tuple[str, tuple[str | None, bytes]]],
) -> None:
    body, boundary = encoded(files) if files else (b"--b--\r\n", b"b")

    with pytest.raises(MissingFieldError, match="multipart body has no 'file' field holding a"):
        file_part(body, boundary, "file")
    with pytest.raises(MissingFieldError, match="multipart body has no 'file' field holding a"):
        file_parts(bytearray(body), boundary, "file", max_parts=MAX_PARTS)


@pytest.mark.parametrize(
    "disposition", [b'name="file"', b"name=\"file\"; filename*=UTF-8''%C3%A9.wav"],
    ids=["a text field", "an RFC 5987 name only"],
)  # fmt: skip
def test_a_part_in_the_field_without_a_filename_is_named_as_text(disposition: bytes) -> None:
    body = b"--b\r\nContent-Disposition: form-data; " + disposition + b"\r\n\r\nRIFF\r\n--b--"

    with pytest.raises(MissingFieldError) as caught:
        file_part(body, b"b", "file")

    assert str(caught.value) == (
        "multipart body has no 'file' field holding a file: its 'file' part has no filename "
        "parameter, so it is text; send the clip as a file (curl -F file=@clip.wav)"
    )


@pytest.mark.parametrize("content_type", ["multipart/form-data", "multipart/form-data; boundary="])
def test_a_content_type_without_a_boundary_is_refused(content_type: str) -> None:
    with pytest.raises(MalformedBodyError) as caught:
        boundary_of(content_type)

    assert str(caught.value) == (
        f"content type {content_type!r} has no boundary: multipart/form-data needs one"
    )
