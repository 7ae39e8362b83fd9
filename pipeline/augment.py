"""Degraded copies of training clips, so the network does not lean on what codecs and noise change.

Training on each clip and on one degraded copy of it makes the model hold up on MP3 and noisy
recordings: ``python -m bench.robustness`` measures how much held-out accuracy survives them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["degrade"]

CUTOFF_RANGE = (0.79, 1.0)  # share of the top band edge where the roll-off starts
SLOPE_DB_PER_100HZ = (1.0, 4.0)  # steepness of the roll-off above the cutoff
SNR_DB = (15.0, 35.0)  # white noise, against the clip's mean power


def degrade(
    y: np.ndarray, sample_rate: int, rng: np.random.Generator, *, fmax: float
) -> np.ndarray:
    """``y`` (1-D float32) through a duller, noisier channel: a random high-frequency roll-off,
    like a low-bitrate codec's, then white noise at a random SNR. Returns float32, same length."""
    spectrum = np.fft.rfft(y)
    freqs = np.fft.rfftfreq(len(y), 1 / sample_rate)
    cutoff = rng.uniform(*CUTOFF_RANGE) * fmax
    slope = rng.uniform(*SLOPE_DB_PER_100HZ)
    gain_db = -np.maximum(freqs - cutoff, 0) / 100 * slope
    dull = np.fft.irfft(spectrum * 10 ** (gain_db / 20), n=len(y))
    noise_power = np.mean(dull**2) / 10 ** (rng.uniform(*SNR_DB) / 10)
    noisy = dull + rng.standard_normal(len(y)) * np.sqrt(noise_power)
    return noisy.astype(np.float32)
