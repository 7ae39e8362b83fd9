"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BatchItem",
    "BatchResponse",
    "ErrorResponse",
    "Explanation",
    "ModelInfo",
    "ModelRef",
    "PredictResponse",
    "ReloadRequest",
    "Status",
]


class ErrorResponse(BaseModel):
    detail: str = Field(
        description="what was wrong, and with which value",
        examples=["clip is silent: peak level -72.4 dBFS is below -60 dBFS"],
    )


class ModelRef(BaseModel):
    name: str = Field(examples=["default"])
    version: str = Field(description="first 12 hex digits of model.keras's sha256",
                         examples=["3f2a9c0d1b7e"])  # fmt: skip


class Explanation(BaseModel):
    """What the network saw and did, for drawing it."""

    histogram: list[float] = Field(description="the clip's 60-bin histogram, dB")
    inputs: list[float] = Field(description="the standardised network inputs")
    hidden: list[float] = Field(description="hidden sigmoid activations, 0-1")
    band_centres_hz: list[float] = Field(description="centre frequency of each band, Hz")


class PredictResponse(BaseModel):
    speaker: str = Field(description='the speaker, or "unknown" below the threshold',
                         examples=["Steve"])  # fmt: skip
    confidence: float = Field(description="the top score", examples=[0.97])
    scores: dict[str, float] = Field(examples=[{"David": 0.03, "Steve": 0.97}])
    unknown: bool = Field(description="true when the top score is below the threshold")
    threshold: float = Field(description="the unknown-speaker threshold in force")
    model: ModelRef
    duration_s: float = Field(description="clip length in seconds", examples=[0.82])
    timing_ms: float = Field(description="server time spent on this clip", examples=[1.4])
    explain: Explanation | None = None


class BatchItem(BaseModel):
    file: str = Field(description="the part's file name")
    ok: bool
    status: int = Field(description="the HTTP status this file alone would have had")
    result: PredictResponse | None = None
    detail: str | None = Field(None, description="what was wrong, when ok is false")


class BatchResponse(BaseModel):
    results: list[BatchItem]
    model: ModelRef


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_dir: str | None = Field(
        None, description="bundle folder to load; the one being served when omitted",
        examples=["models/default"],
    )  # fmt: skip


class Status(BaseModel):
    status: str = Field(examples=["ok"])
    model: ModelRef | None = None


class ModelInfo(BaseModel):
    name: str
    version: str
    path: str
    labels: list[str]
    threshold: float
    architecture: list[int] = Field(description="[inputs, hidden, outputs]", examples=[[60, 6, 2]])
    output_activation: str
    feature_config: dict[str, Any]
    band_centres_hz: list[float]
    metrics: dict[str, Any]
    training: dict[str, Any]
    created: str | None
    weights: dict[str, list[list[float]] | list[float]] = Field(
        description="hidden_kernel (60xH), hidden_bias (H), output_kernel (HxN), output_bias (N)"
    )
    plots: dict[str, str] = Field(description="URLs of the bundle's PNG pictures")
