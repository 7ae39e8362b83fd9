"""Reading a batch's files: views into one buffer the body streams into, in its parts' order."""

from __future__ import annotations

import asyncio

import httpx
from starlette.requests import Request
from starlette.types import Message

from service.uploads import read_batch

CHUNK = 7  # bytes per message: boundaries and headers fall across messages


def request_of(body: bytes, content_type: str) -> Request:
    """A request whose body arrives in messages of ``CHUNK`` bytes, as a server passes it on."""
    messages = [
        {"type": "http.request", "body": body[i : i + CHUNK], "more_body": i + CHUNK < len(body)}
        for i in range(0, len(body), CHUNK)
    ]

    async def receive() -> Message:
        return messages.pop(0)

    scope = {
        "type": "http",
        "method": "POST",
        "headers": [(b"content-type", content_type.encode())],
    }
    return Request(scope, receive)


def test_a_batch_is_read_into_one_buffer_its_files_views_into_it() -> None:
    clips = [b"RIFF" + bytes(range(256)) * 3, b"\r\n--not-the-boundary\r\n", b"x"]
    files = [("files", (f"{i}.wav", clip, "audio/wav")) for i, clip in enumerate(clips)]
    sent = httpx.Request("POST", "http://x/", files=[("note", (None, b"text")), *files])

    found = asyncio.run(read_batch(request_of(sent.read(), sent.headers["content-type"]), 3))

    assert [(name, bytes(data)) for name, data in found] == [
        (f"{i}.wav", clip) for i, clip in enumerate(clips)
    ]
    buffers = {id(data.obj) for _, data in found}
    assert len(buffers) == 1 and isinstance(found[0][1].obj, bytearray)
