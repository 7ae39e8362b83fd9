"""The files of a multipart/form-data body already read into memory (RFC 7578).

Every route that takes clips does so under its body limit, so the body is read whole and cut at
its boundaries with ``bytes.find``, instead of going through a streaming parser that spools each
part to a temporary file, which costs more CPU than the clip's features
(``python -m bench.serve``). Anything that is not a well-formed body, with a closing boundary
and at most the parts its route takes (``MAX_PARTS`` for one clip), is refused with what was
wrong, the same way on every route.

A body in ``bytes`` (one clip's) gives its files as ``bytes``; a body in a ``bytearray`` (a batch
read into one buffer: ``service.uploads.read_batch``) gives them as views into it, so that a
body of many files is held once, not once more in its parts (``python -m bench.footprint``).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import overload

from python_multipart.multipart import parse_options_header

from service.errors import MalformedBodyError, MissingFieldError

__all__ = ["MAX_PARTS", "TooManyPartsError", "boundary_of", "file_part", "file_parts"]

MAX_PARTS = 16  # parts of any kind in the body of a one-clip upload
CRLF = b"\r\n"
HEADERS_END = b"\r\n\r\n"
# A client sends the same content type and part headers with every upload, and parsing them
# costs more than finding the part (python -m bench.serve): values up to this long have their
# parse kept, the last CACHED_VALUES of them, so a client cannot grow the cache.
CACHED_VALUE_BYTES = 512
CACHED_VALUES = 64


class TooManyPartsError(MalformedBodyError):
    """A body with more parts than its route reads (a route that takes many files says so as
    a 413)."""


def boundary_of(content_type: str) -> bytes:
    """The boundary parameter of a ``multipart/form-data`` content type."""
    boundary = _options(content_type).get(b"boundary")
    if not boundary:
        raise MalformedBodyError(
            f"content type {content_type!r} has no boundary: multipart/form-data needs one"
        )
    return boundary


def file_part(body: bytes, boundary: bytes, field: str) -> tuple[str, bytes]:
    """The file name and bytes of the one part holding a file in ``field``, in a body of at
    most ``MAX_PARTS`` parts; raises as :func:`file_parts` does, and
    :class:`MalformedBodyError` when ``field`` holds more than one file."""
    found = file_parts(body, boundary, field, max_parts=MAX_PARTS)
    if len(found) > 1:
        raise MalformedBodyError(f"multipart body holds {len(found)} files in {field!r}; send one")
    return found[0]


@overload
def file_parts(
    body: bytes, boundary: bytes, field: str, *, max_parts: int
) -> list[tuple[str, bytes]]: ...
@overload
def file_parts(
    body: bytearray, boundary: bytes, field: str, *, max_parts: int
) -> list[tuple[str, memoryview]]: ...
def file_parts(
    body: bytes | bytearray, boundary: bytes, field: str, *, max_parts: int
) -> list[tuple[str, bytes]] | list[tuple[str, memoryview]]:
    """The file name and content of every part holding a file in ``field``, in order: ``bytes``
    cut from a ``bytes`` body, views into a ``bytearray`` one. Raises
    :class:`MalformedBodyError` for a body that is not well formed (:class:`TooManyPartsError`
    for one of over ``max_parts`` parts) and :class:`MissingFieldError` when no such part is
    there."""
    found: list[tuple[str, bytes | memoryview]] = []
    as_text = False  # a part in the field without a filename: a text field, to name if alone
    for headers, content in _parts(body, b"--" + boundary, max_parts):
        name, filename = _disposition(headers)
        if name == field:
            if filename is None:
                as_text = True
            else:
                found.append((filename, content))
    if not found:
        raise MissingFieldError(_missing_message(field, as_text=as_text))
    return found  # type: ignore[return-value]  # bytes or views, as the overloads say


def _missing_message(field: str, *, as_text: bool) -> str:
    missing = f"multipart body has no {field!r} field holding a file"
    if not as_text:
        return missing
    return (f"{missing}: its {field!r} part has no filename parameter, so it is text; send the "
            f"clip as a file (curl -F {field}=@clip.wav)")  # fmt: skip


def _parts(
    body: bytes | bytearray, delimiter: bytes, max_parts: int
) -> list[tuple[bytes, bytes | memoryview]]:
    """Headers and content of each part, from the first delimiter to the closing one; the
    content of a ``bytearray`` body is a view into it, not a copy."""
    cut = memoryview(body) if isinstance(body, bytearray) else body
    pos = body.find(delimiter)
    if pos < 0 or (pos > 0 and body[pos - 2 : pos] != CRLF):
        raise MalformedBodyError("multipart body does not start with its boundary")
    parts: list[tuple[bytes, bytes | memoryview]] = []
    while True:
        pos += len(delimiter)
        if body[pos : pos + 2] == b"--":
            return parts
        if len(parts) == max_parts:
            raise TooManyPartsError(f"multipart body has over {max_parts} parts")
        line_end = body.find(CRLF, pos)
        if line_end < 0 or body[pos:line_end].strip(b" \t"):
            raise MalformedBodyError("multipart boundary is not followed by a line break")
        headers_end = body.find(HEADERS_END, line_end)
        if headers_end < 0:
            raise MalformedBodyError("multipart body ends inside a part's headers")
        next_pos = body.find(CRLF + delimiter, headers_end + 4)
        if next_pos < 0:
            raise MalformedBodyError("multipart body ends before its closing boundary")
        headers = bytes(body[line_end + 2 : headers_end])  # a key of _disposition's cache
        parts.append((headers, cut[headers_end + 4 : next_pos]))
        pos = next_pos + 2


def _options(value: str) -> Mapping[bytes, bytes]:
    """The parameters of a header value (``form-data; name="file"``), not to be changed."""
    if len(value) > CACHED_VALUE_BYTES:
        return parse_options_header(value)[1]
    return _cached_options(value)


@lru_cache(maxsize=CACHED_VALUES)
def _cached_options(value: str) -> Mapping[bytes, bytes]:
    return parse_options_header(value)[1]


def _disposition(headers: bytes) -> tuple[str | None, str | None]:
    """The field name and file name (None when absent) of a part's Content-Disposition."""
    if len(headers) > CACHED_VALUE_BYTES:
        return _read_disposition(headers)
    return _cached_disposition(headers)


def _read_disposition(headers: bytes) -> tuple[str | None, str | None]:
    for line in headers.split(CRLF):
        key, sep, value = line.partition(b":")
        if sep and key.strip().lower() == b"content-disposition":
            options = parse_options_header(value.decode("latin-1"))[1]
            name, filename = options.get(b"name"), options.get(b"filename")
            return _text(name), _text(filename)
    return None, None


_cached_disposition = lru_cache(maxsize=CACHED_VALUES)(_read_disposition)


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", errors="replace")
