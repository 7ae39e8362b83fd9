"""The 60-6-N network as plain arrays: the fast forward pass used for prediction.

Keras trains the model (``pipeline.model``); prediction needs only four small arrays, and a
numpy forward pass costs microseconds where ``model.predict`` costs tens of milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["Network", "OutputActivation", "sigmoid", "softmax"]

OutputActivation = Literal["softmax", "sigmoid"]


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # overflow-free form of 1 / (1 + exp(-x))


def softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class Network:
    """Weights of ``Input(D) -> Dense(H, sigmoid) -> Dense(N, output)``.

    hidden_kernel: (D, H); hidden_bias: (H,); output_kernel: (H, N); output_bias: (N,).
    Inputs are standardised features: ``(x - mean) / scale``.
    """

    hidden_kernel: np.ndarray
    hidden_bias: np.ndarray
    output_kernel: np.ndarray
    output_bias: np.ndarray
    output_activation: OutputActivation
    mean: np.ndarray
    scale: np.ndarray

    @property
    def sizes(self) -> tuple[int, int, int]:
        d, h = self.hidden_kernel.shape
        return d, h, self.output_kernel.shape[1]

    def standardise(self, features: np.ndarray) -> np.ndarray:
        return (features - self.mean) / self.scale

    def forward(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hidden activations (B, H) and output scores (B, N) for raw features (B, D)."""
        x = self.standardise(np.asarray(features, dtype=np.float64))
        hidden = sigmoid(x @ self.hidden_kernel + self.hidden_bias)
        logits = hidden @ self.output_kernel + self.output_bias
        scores = softmax(logits) if self.output_activation == "softmax" else sigmoid(logits)
        return hidden, scores
