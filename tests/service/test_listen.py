"""service.listen: how a stream ends when its client has gone first."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from starlette.datastructures import Headers
from starlette.websockets import WebSocket, WebSocketDisconnect

from service.listen import Streams, run_stream


class GoneClient:
    """A WebSocket whose client sent ``first`` and dropped the connection: closing it raises
    WebSocketDisconnect, as Starlette's does once uvicorn has seen the connection go."""

    headers = Headers()

    def __init__(self, first: str) -> None:
        self.first = first

    async def receive(self) -> dict[str, Any]:
        return {"type": "websocket.receive", "text": self.first}

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        raise WebSocketDisconnect(1006)


@pytest.mark.parametrize("limit", [1, 0], ids=["a bad first message", "too many streams"])
def test_a_stream_whose_client_has_gone_ends_without_error(client: TestClient, limit: int) -> None:
    state = client.app.state  # type: ignore[attr-defined]
    streams = Streams(limit)
    websocket = cast(WebSocket, GoneClient("not JSON"))

    asyncio.run(run_stream(websocket, state.settings, state.store, state.compute, streams))

    assert streams.open == 0
