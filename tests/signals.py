"""Test inputs with known answers: generated signals and the bytes of files holding them."""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
import soundfile as sf

__all__ = ["PNG_BYTES", "SR", "Samples", "encode", "harmonics", "peak_hz", "tone"]

SR = 16_000  # Hz: the pipeline's analysis rate, and the shipped model's
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + bytes(200)  # not audio, but a format sniff_format names

Samples = npt.NDArray[np.float32]


def tone(
    freq_hz: float = 440.0,
    *,
    seconds: float = 1.0,
    sample_rate: int = SR,
    amplitude: float = 0.5,
) -> Samples:
    """A cosine of ``freq_hz``, (round(seconds * sample_rate),) float32; its first sample, the
    peak, is exactly ``amplitude``, so levels in dBFS are known."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return (amplitude * np.cos(2 * np.pi * freq_hz * t)).astype(np.float32)


def harmonics(
    f0_hz: float = 150.0, *, seconds: float = 1.0, sample_rate: int = SR, fade_s: float = 0.02
) -> Samples:
    """A voice-like harmonic complex (1/k amplitudes up to 3.8 kHz), peak 0.5, with cosine fades.

    The fades matter: a rectangular onset splatters energy into every band.
    """
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    ks = np.arange(1, int(3800 // f0_hz) + 1)
    y = (np.sin(2 * np.pi * f0_hz * np.outer(t, ks)) / ks).sum(axis=1)
    n = round(fade_s * sample_rate)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)
    y[:n] *= ramp
    y[-n:] *= ramp[::-1]
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


def encode(
    samples: npt.ArrayLike, sample_rate: int = SR, *, fmt: str = "WAV", subtype: str | None = None
) -> bytes:
    """The bytes of a ``fmt`` file (any libsndfile format) holding ``samples``.

    WAV defaults to 16-bit PCM; ``subtype="FLOAT"`` keeps NaN, infinity and exact levels.
    """
    buffer = io.BytesIO()
    sf.write(buffer, np.asarray(samples), sample_rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def peak_hz(samples: Samples, sample_rate: int) -> float:
    """Frequency (Hz) of the largest bin of the spectrum, at 1 Hz resolution for 1 s clips."""
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.argmax(spectrum) * sample_rate / len(samples))
