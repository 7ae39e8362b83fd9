"""Each small answer in one write: the transport that holds a turn's writes, and the protocol."""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

import pytest
from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.server import ServerState

from service.protocol import FLUSH_BYTES, OneWriteHttpProtocol, OneWriteTransport

ADDRESSES = {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}


class Recording(asyncio.Transport):
    """A transport that records what is written to it, and when it is closed."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[bytes | str] = []
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.events.append(bytes(data))

    def close(self) -> None:
        if not self.closing:
            self.events.append("closed")
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ADDRESSES.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.events.append("protocol changed")


def held(loop: asyncio.AbstractEventLoop) -> tuple[OneWriteTransport, Recording]:
    recording = Recording()
    return OneWriteTransport(recording, loop), recording


async def one_turn() -> None:
    await asyncio.sleep(0)


def test_writes_of_one_turn_go_out_together_at_its_end() -> None:
    async def main() -> tuple[list[bytes | str], list[bytes | str]]:
        transport, recording = held(asyncio.get_running_loop())
        transport.write(b"head")
        transport.write(b"body")
        during = list(recording.events)
        await one_turn()
        return during, recording.events

    during, after = asyncio.run(main())

    assert during == []
    assert after == [b"headbody"]


def test_a_large_write_goes_out_at_once() -> None:
    async def main() -> list[bytes | str]:
        transport, recording = held(asyncio.get_running_loop())
        transport.write(b"h")
        transport.write(b"x" * FLUSH_BYTES)
        assert recording.events == [b"h" + b"x" * FLUSH_BYTES]
        await one_turn()  # the turn's end finds nothing more to write
        return recording.events

    assert len(asyncio.run(main())) == 1


def test_closing_writes_what_is_held_first() -> None:
    async def main() -> list[bytes | str]:
        transport, recording = held(asyncio.get_running_loop())
        transport.write(b"answer")
        transport.close()
        await one_turn()
        return recording.events

    assert asyncio.run(main()) == [b"answer", "closed"]


def test_nothing_is_written_to_a_connection_already_closing() -> None:
    async def main() -> list[bytes | str]:
        transport, recording = held(asyncio.get_running_loop())
        transport.write(b"answer")
        recording.closing = True  # the peer went away
        await one_turn()
        return recording.events

    assert asyncio.run(main()) == []


async def _answer(scope: Scope, receive: Receive, send: Send) -> None:
    body = json.dumps({"path": scope["path"]}).encode()
    await receive()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.mark.parametrize("keep_alive", [True, False])
def test_the_protocol_sends_an_answer_in_one_write(keep_alive: bool) -> None:
    connection = b"" if keep_alive else b"Connection: close\r\n"
    request = b"POST /predict HTTP/1.1\r\nHost: x\r\n%sContent-Length: 2\r\n\r\nhi" % connection

    async def main() -> list[bytes | str]:
        config = Config(app=_answer, http=OneWriteHttpProtocol, lifespan="off", access_log=False)
        config.load()
        protocol = OneWriteHttpProtocol(config=config, server_state=ServerState(), app_state={})
        recording = Recording()
        protocol.connection_made(recording)
        protocol.data_received(request)
        for _ in range(100):  # the app runs as a task: a few turns
            await one_turn()
        protocol.connection_lost(None)
        return recording.events

    events = asyncio.run(main())

    answer = events[0]
    assert isinstance(answer, bytes)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b'\r\n\r\n{"path": "/predict"}')
    assert events[1:] == ["closed"]


async def _echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with the body it read, and how many messages it came in."""
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message["body"])
        more = message["more_body"]
    body = b"%d:%s" % (len(chunks), b"".join(chunks))
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"%d" % len(body))]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


@pytest.mark.parametrize(
    ("pieces", "read_first"),
    [((b"abcdef",), False), ((b"ab", b"cd", b"ef"), False), ((b"ab", b"cd", b"ef"), True)],
)
def test_a_body_reaches_the_app_whole_however_it_arrives(
    pieces: tuple[bytes, ...], read_first: bool
) -> None:
    """Kept as the parser's chunks (BodyChunks): those that came before a read are handed on
    together, those after it in later messages, in order; each request of a connection has its
    own body."""
    head = b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n"

    async def main() -> list[bytes]:
        config = Config(app=_echo, http=OneWriteHttpProtocol, lifespan="off", access_log=False)
        config.load()
        protocol = OneWriteHttpProtocol(config=config, server_state=ServerState(), app_state={})
        recording = Recording()
        protocol.connection_made(recording)
        for _ in range(2):
            protocol.data_received(head + (b"" if read_first else pieces[0]))
            for piece in pieces[1:] if not read_first else pieces:
                if read_first:
                    await one_turn()  # the app waits for the body
                protocol.data_received(piece)
            for _ in range(100):
                await one_turn()
        protocol.connection_lost(None)
        return [event.split(b"\r\n\r\n")[1] for event in recording.events
                if isinstance(event, bytes)]  # fmt: skip

    answers = asyncio.run(main())

    messages = b"%d" % len(pieces) if read_first else b"1"
    assert answers == [messages + b":abcdef"] * 2


class WebSocketStandIn(asyncio.Protocol):
    """Takes the place of uvicorn's WebSocket protocol, keeping the transport it is given."""

    given: ClassVar[list[asyncio.BaseTransport]] = []

    def __init__(self, **_: Any) -> None:
        pass

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.given.append(transport)

    def data_received(self, data: bytes) -> None:
        pass


def test_a_websocket_takes_the_connection_s_own_transport() -> None:
    request = (b"GET /listen HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
               b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")  # fmt: skip

    async def main() -> Recording:
        config = Config(app=_answer, http=OneWriteHttpProtocol, ws=WebSocketStandIn,
                        lifespan="off", access_log=False)  # fmt: skip
        config.load()
        protocol = OneWriteHttpProtocol(config=config, server_state=ServerState(), app_state={})
        recording = Recording()
        protocol.connection_made(recording)
        protocol.data_received(request)
        return recording

    recording = asyncio.run(main())

    assert WebSocketStandIn.given == [recording]
