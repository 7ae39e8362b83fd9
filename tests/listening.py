"""Talking to /listen in tests: PCM of a waveform, and how a stream ended."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

__all__ = ["closed_with", "pcm", "start"]


def pcm(y: np.ndarray) -> bytes:
    """Float samples in [-1, 1] as mono 16-bit little-endian PCM."""
    return (np.clip(y, -1, 32767 / 32768) * 32768).astype("<i2").tobytes()


def start(ws: WebSocketTestSession, **message: Any) -> dict[str, Any]:
    """Send the first message (16 kHz unless told), and return the server's "ready"."""
    ws.send_text(json.dumps({"sample_rate": 16000} | message))
    ready: dict[str, Any] = ws.receive_json()
    return ready


def closed_with(ws: WebSocketTestSession) -> tuple[int, str]:
    """The code and reason the server closed the stream with (answers before it are read)."""
    while True:
        try:
            ws.receive_text()
        except WebSocketDisconnect as closed:
            return closed.code, closed.reason
