"""Inputs with known answers for the service tests: the shipped model, tones and WAV bytes."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import numpy as np
import numpy.typing as npt
import soundfile as sf
from fastapi import FastAPI
from fastapi.testclient import TestClient

__all__ = ["MODEL_DIR", "SAMPLE_RATE", "ClientFactory", "async_client", "tone", "wav_bytes"]

MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "default"
SAMPLE_RATE = 16_000  # Hz, the shipped model's rate

ClientFactory = Callable[..., TestClient]  # the make_client fixture: settings in, started client


def tone(
    seconds: float,
    *,
    freq_hz: float = 440.0,
    amplitude: float = 0.5,
    sample_rate: int = SAMPLE_RATE,
) -> npt.NDArray[np.float32]:
    """A sine of ``seconds`` length whose first peak sample is exactly ``amplitude``."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return (amplitude * np.cos(2 * np.pi * freq_hz * t)).astype(np.float32)


def wav_bytes(
    samples: npt.NDArray[np.floating], *, sample_rate: int = SAMPLE_RATE, subtype: str = "PCM_16"
) -> bytes:
    """``samples`` as a WAV file (``subtype="FLOAT"`` keeps NaN, infinity and exact levels)."""
    buffer = io.BytesIO()
    sf.write(buffer, samples, sample_rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


@asynccontextmanager
async def async_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client calling ``app`` in-process, its lifespan running; request bodies stream."""
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        yield client
