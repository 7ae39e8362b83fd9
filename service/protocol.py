"""uvicorn's HTTP/1.1 protocol, with each small response sent in one write.

uvicorn writes a response's head as soon as the app starts it, and its body when it comes: two
system calls and, with Nagle's algorithm off (as uvloop sets it), two TCP segments, which wake
the client twice. For an answer of a few hundred bytes that is most of the kernel's share of a
request (``python -m bench.serve`` prints the server's CPU time per request). So what a
connection writes in one turn of the event loop goes out together at the end of that turn, or at
once when it reaches ``FLUSH_BYTES``, so that a large or streamed body is neither held in memory
nor kept from the transport's flow control. A WebSocket takes the connection's own transport.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["FLUSH_BYTES", "OneWriteHttpProtocol", "OneWriteTransport"]

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


class OneWriteHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through a :class:`OneWriteTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = cast(asyncio.Transport, OneWriteTransport(transport, self.loop))

    def handle_websocket_upgrade(self) -> None:
        held = self.transport
        if isinstance(held, OneWriteTransport):
            held.flush()
            self.transport = held.transport
        super().handle_websocket_upgrade()
