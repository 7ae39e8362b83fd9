"""The /listen WebSocket: who is speaking now, once per hop (protocol: service.listen)."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from service.listen import SUBPROTOCOL, run_stream

router = APIRouter(tags=["listen"])


@router.websocket("/listen")
async def listen(websocket: WebSocket) -> None:
    state = websocket.app.state
    offered = websocket.scope.get("subprotocols", [])
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    await run_stream(websocket, state.settings, state.store, state.compute, state.streams)
