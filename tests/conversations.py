"""Conversations of the shipped model's synthetic voices, with known turns, for the timeline."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pipeline.demo.synth import STRANGER, VOICES, synthesize_hello

__all__ = ["GAP_S", "SR", "conversation"]

SR = 16_000
GAP_S = 0.8  # silence between turns


def conversation(
    turns: list[str], *, takes: int = 3, seed: int = 0, sample_rate: int = SR
) -> tuple[npt.NDArray[np.float32], list[tuple[float, float, str]]]:
    """``takes`` "Hello"s of each voice in ``turns`` (names of ``VOICES``, or "Stranger" for
    ``STRANGER``, a voice the shipped model does not know), ``GAP_S`` of
    silence between turns, faint noise throughout; the waveform and its (start, end, voice)
    turns in seconds."""
    rng = np.random.default_rng(seed)
    parts, truth, at = [], [], 0
    gap = np.zeros(round(GAP_S * sample_rate), np.float32)
    for name in turns:
        voice = STRANGER if name == "Stranger" else VOICES[name]
        turn = np.concatenate([synthesize_hello(voice, rng, sample_rate)
                               for _ in range(takes)])  # fmt: skip
        truth.append((at / sample_rate, (at + len(turn)) / sample_rate, name))
        parts += [turn, gap]
        at += len(turn) + len(gap)
    y = np.concatenate(parts)
    y += 1e-4 * rng.standard_normal(len(y)).astype(np.float32)
    return y.astype(np.float32), truth
