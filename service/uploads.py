"""Reading clips out of requests: a multipart part, or a raw ``audio/*`` body."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from service.errors import UnsupportedMediaError, UploadTooLargeError
from service.multipart import TooManyPartsError, boundary_of, file_part, file_parts
from service.settings import Settings

__all__ = [
    "CLIP_BODY",
    "FILES_BODY",
    "RAW_TYPES",
    "clip_boundary",
    "clip_in",
    "media_type",
    "read_batch",
    "read_clip",
    "takes_clip",
]

RAW_TYPES = ("audio/", "application/octet-stream")
_BINARY = {"type": "string", "format": "binary"}


def _request_body(field: str, value: dict[str, Any], **raw: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI request body: multipart with ``field`` holding ``value``, or ``raw`` bodies."""
    multipart = {"type": "object", "properties": {field: value}, "required": [field]}
    content = {"multipart/form-data": {"schema": multipart}} | raw
    return {"requestBody": {"required": True, "content": content}}


# The OpenAPI bodies of the routes read_clip and read_batch serve: one "file" (or the clip as the
# body), and repeated "files".
CLIP_BODY = _request_body("file", _BINARY, **{"audio/wav": {"schema": _BINARY}})
FILES_BODY = _request_body("files", {"type": "array", "items": _BINARY})
MULTIPART = "multipart/form-data"
# Parts of any kind a batch body may have (more when the batch takes more files): a body under
# its byte limit could otherwise hold hundreds of thousands of empty parts.
BATCH_MAX_PARTS = 1000


def media_type(content_type: str) -> str:
    """The media type of a ``Content-Type`` value, lower-cased, without its parameters."""
    return content_type.split(";")[0].strip().lower()


def takes_clip(content_type: str) -> bool:
    """Whether :func:`read_clip` reads a clip from a body of ``content_type``."""
    media = media_type(content_type)
    return media == MULTIPART or media.startswith(RAW_TYPES)


async def read_clip(request: Request) -> tuple[str, bytes]:
    """The clip's name and bytes from multipart field ``file`` or a raw audio body."""
    boundary = clip_boundary(request.headers.get("content-type", ""))
    return clip_in(await request.body(), boundary)


def clip_boundary(content_type: str) -> bytes | None:
    """The multipart boundary of a clip's body of ``content_type``, None for a raw audio body;
    raises for a content type :func:`read_clip` does not read, before any body is read."""
    media = media_type(content_type)
    if media == MULTIPART:
        return boundary_of(content_type)
    if media.startswith(RAW_TYPES):
        return None
    raise UnsupportedMediaError(
        f"unsupported content type {media or '(none)'!r}: send multipart/form-data with a "
        "'file' field, or the clip itself with an audio/* content type"
    )


def clip_in(body: bytes, boundary: bytes | None) -> tuple[str, bytes]:
    """The clip's name and bytes in a whole ``body`` with ``boundary`` (:func:`clip_boundary`)."""
    if boundary is None:
        return "body", body
    filename, data = file_part(body, boundary, "file")
    return filename or "upload", data


async def read_batch(request: Request, max_files: int) -> list[tuple[str, memoryview]]:
    """Names and contents of the parts of multipart field ``files`` (at most ``max_files``):
    views into the one buffer the body is read into, so the batch is held once."""
    content_type = request.headers.get("content-type", "")
    media = media_type(content_type)
    if media != MULTIPART:
        raise UnsupportedMediaError(
            f"unsupported content type {media or '(none)'!r}: send multipart/form-data with "
            "one 'files' field per clip"
        )
    boundary = boundary_of(content_type)  # read as /predict reads its one file
    cap = max(max_files + 1, BATCH_MAX_PARTS)
    try:
        parts = file_parts(await _body_buffer(request), boundary, "files", max_parts=cap)
    except TooManyPartsError as exc:
        raise UploadTooLargeError(
            f"multipart body has more than {cap} parts: a batch takes at most {max_files} files "
            f"({Settings.env_name('batch_max_files')})"
        ) from exc
    if len(parts) > max_files:
        raise UploadTooLargeError(f"batch of {len(parts)} files is over the limit of {max_files}")
    return [(filename or "upload", data) for filename, data in parts]


async def _body_buffer(request: Request) -> bytearray:
    """The whole body of ``request``, grown in place in one buffer as it arrives:
    ``request.body()`` would hold its chunks and their join at once, twice the body."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
    return body
