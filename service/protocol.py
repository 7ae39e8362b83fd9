"""uvicorn's HTTP/1.1 protocol, with each small response sent in one write.

uvicorn writes a response's head as soon as the app starts it, and its body when it comes: two
system calls and, with Nagle's algorithm off (as uvloop sets it), two TCP segments, which wake
the client twice. For an answer of a few hundred bytes that is most of the kernel's share of a
request (``python -m bench.serve`` prints the server's CPU time per request). So what a
connection writes in one turn of the event loop goes out together at the end of that turn, or at
once when it reaches ``FLUSH_BYTES``, so that a large or streamed body is neither held in memory
nor kept from the transport's flow control. A WebSocket takes the connection's own transport.

uvicorn also copies each request body twice: into a ``bytearray`` as it arrives, and out of it
into ``bytes`` when the app reads it; for a clip of 32 kB each copy costs as much as a tenth of
the serving around the work. A request's body is kept as the chunks the parser gave
(:class:`BodyChunks`), so a body that came in one piece reaches the app uncopied.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["FLUSH_BYTES", "BodyChunks", "OneWriteHttpProtocol", "OneWriteTransport"]

FLUSH_BYTES = 64 * 1024  # written at once from this many bytes held


class OneWriteTransport:
    """Stands for ``transport``: writes made in one turn of ``loop`` go out in one write."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._held_bytes = 0

    def write(self, data: bytes) -> None:
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(data)
        self._held_bytes += len(data)
        if self._held_bytes >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write what is held, unless the connection is closing (its peer has gone)."""
        if not self._held:
            return
        data = self._held[0] if len(self._held) == 1 else b"".join(self._held)
        self._held, self._held_bytes = [], 0
        if not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class BodyChunks:
    """Stands for the ``bytearray`` a uvicorn request cycle gathers its body in: ``+=`` keeps
    the chunk (the parser's own ``bytes``, never changed), ``len`` counts what came (uvicorn's
    flow control), ``bytes()`` joins them; one chunk is handed on as it is."""

    __slots__ = ("_chunks", "_size")

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._size = 0

    def __iadd__(self, chunk: bytes) -> BodyChunks:
        self._chunks.append(chunk)
        self._size += len(chunk)
        return self

    def __len__(self) -> int:
        return self._size

    def __bytes__(self) -> bytes:
        return b"".join(self._chunks)  # one chunk: that very object, uncopied


class OneWriteHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through a :class:`OneWriteTransport`, gathering
    each request's first body in :class:`BodyChunks`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = cast(asyncio.Transport, OneWriteTransport(transport, self.loop))

    def on_headers_complete(self) -> None:
        before = self.cycle
        super().on_headers_complete()
        if self.cycle is not before:  # a new request (not an upgrade)
            self.cycle.body = cast(bytearray, BodyChunks())  # uvicorn resets it after a read

    def handle_websocket_upgrade(self) -> None:
        held = self.transport
        if isinstance(held, OneWriteTransport):
            held.flush()
            self.transport = held.transport
        super().handle_websocket_upgrade()
